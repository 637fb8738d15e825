import type { AckResult, ChatConnection } from "./connection";
import { CLOSED_FAILURE, type SendFailure } from "./messages";
import type { MessageSentData } from "./types";

// Sends our messages over the socket, one at a time and in order, and decides what a
// failure means (protocol.md §6 "After a reconnect", steps 5 and 6):
// - the connection is down: the message waits (still "sending") and goes out once the
//   connection is back and the chat has been re-joined;
// - the server is restarting or its database is away: wait and try again by itself;
// - rate limited, no answer, or any other fault: "failed", with a Retry button;
// - the chat is closed or the text invalid: "failed" for good.
// Every attempt carries the message's one clientMessageId, so the server stores it at
// most once however often it is sent.

export interface OutboxItem {
  ticketId: string;
  clientMessageId: string;
  text: string;
}

export type OutboxReport =
  | { kind: "sent"; item: OutboxItem; data: MessageSentData }
  | { kind: "failed"; item: OutboxItem; failure: SendFailure };

const BACKOFF_MS = [1_000, 2_000, 4_000, 8_000, 15_000];

export class Outbox {
  private queue: OutboxItem[] = [];
  private readonly attempts = new Map<string, number>();
  private pumping = false;
  private ready = false;
  private pauseTimer: ReturnType<typeof setTimeout> | null = null;
  private disposed = false;

  constructor(
    private readonly connection: ChatConnection,
    private readonly event: "send_message" | "admin_send_message",
    private readonly report: (report: OutboxReport) => void,
  ) {}

  add(item: OutboxItem): void {
    if (this.queue.some((held) => held.clientMessageId === item.clientMessageId)) return;
    this.queue.push(item);
    void this.pump();
  }

  // Not ready between a (re)connection and the end of the re-join, so the replay of
  // missed messages lands before our own sends (which would otherwise take later seqs).
  setReady(ready: boolean): void {
    this.ready = ready;
    if (ready) void this.pump();
  }

  remove(clientMessageId: string): void {
    this.queue = this.queue.filter((item) => item.clientMessageId !== clientMessageId);
    this.attempts.delete(clientMessageId);
  }

  // The chat closed: what is still waiting can never be delivered.
  failTicket(ticketId: string, failure: SendFailure): void {
    const dropped = this.queue.filter((item) => item.ticketId === ticketId);
    this.queue = this.queue.filter((item) => item.ticketId !== ticketId);
    for (const item of dropped) this.report({ kind: "failed", item, failure });
  }

  dispose(): void {
    this.disposed = true;
    if (this.pauseTimer) clearTimeout(this.pauseTimer);
    this.queue = [];
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.disposed && this.ready && this.connection.connected && this.pauseTimer === null) {
        const item = this.queue[0];
        if (!item) break;
        const result = await this.connection.emitWithAck<MessageSentData>(this.event, {
          ticketId: item.ticketId,
          message: item.text,
          clientMessageId: item.clientMessageId,
        });
        if (this.queue[0] !== item) continue; // removed while in flight
        if (!this.handle(item, result)) break;
      }
    } finally {
      this.pumping = false;
    }
  }

  // Returns whether to go on with the next message.
  private handle(item: OutboxItem, result: AckResult<MessageSentData>): boolean {
    if (result.ok) {
      this.queue.shift();
      this.attempts.delete(item.clientMessageId);
      this.report({ kind: "sent", item, data: result.data });
      return true;
    }
    if (result.reason === "offline") return false; // stays first; goes out after the re-join

    const code = result.code;
    if (code === "SHUTTING_DOWN" || code === "SERVICE_UNAVAILABLE") {
      const attempt = (this.attempts.get(item.clientMessageId) ?? 0) + 1;
      this.attempts.set(item.clientMessageId, attempt);
      const delay = BACKOFF_MS[attempt - 1];
      if (delay !== undefined) {
        this.pauseTimer = setTimeout(() => {
          this.pauseTimer = null;
          void this.pump();
        }, delay);
        return false;
      }
    }

    this.queue.shift();
    this.attempts.delete(item.clientMessageId);
    this.report({ kind: "failed", item, failure: failureOf(result) });
    return true;
  }
}

function failureOf(result: Exclude<AckResult<MessageSentData>, { ok: true }>): SendFailure {
  switch (result.code) {
    case "RATE_LIMITED": {
      const seconds = result.retryAfterSeconds ?? 5;
      return {
        text: "Too many messages at once. Wait a moment, then retry.",
        code: result.code,
        permanent: false,
        retryAt: Date.now() + seconds * 1000,
      };
    }
    case "CHAT_CLOSED":
      return CLOSED_FAILURE;
    case "VALIDATION_ERROR":
      return { text: `Not delivered: ${result.message}`, code: result.code, permanent: true, retryAt: null };
    case "TICKET_NOT_FOUND":
      return { text: "Not delivered: this chat no longer exists.", code: result.code, permanent: true, retryAt: null };
    default:
      return {
        text: result.reason === "timeout" ? "Not confirmed by the server." : "Not delivered.",
        code: result.code,
        permanent: false,
        retryAt: null,
      };
  }
}
