// Our own "is typing" signal. The server relays every update and never clears an
// indicator by itself, and it drops updates over 20 per 10 seconds (docs/security.md).
// So: "typing" at most every few seconds while keys are pressed, "stopped" after a pause
// or when the message goes out.

const REPEAT_EVERY_MS = 3_000;
const IDLE_AFTER_MS = 4_000;

// How long the other side's indicator stays up without a fresh "typing": a little more
// than the sender's repeat interval, so a steady typist never flickers.
export const REMOTE_TYPING_TIMEOUT_MS = 7_000;

export class TypingSignal {
  private active = false;
  private lastSentAt = 0;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly send: (isTyping: boolean) => void) {}

  keystroke(): void {
    const now = Date.now();
    if (!this.active || now - this.lastSentAt >= REPEAT_EVERY_MS) {
      this.active = true;
      this.lastSentAt = now;
      this.send(true);
    }
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stop(), IDLE_AFTER_MS);
  }

  stop(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (!this.active) return;
    this.active = false;
    this.send(false);
  }

  // Forget the state without telling anyone (the chat closed, the page is going away).
  reset(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.active = false;
  }
}
