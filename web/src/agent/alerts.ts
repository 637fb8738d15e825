// New-chat alerts for agents: a short chime made with the Web Audio API (no sound
// files) and a desktop notification. Browsers allow both only after a user gesture, so
// they start off and the agent turns them on with a button; the choice is remembered.

const PREFERENCE_KEY = "supportchat:agent-alerts";

export type NotificationState = NotificationPermission | "unsupported";

export function notificationState(): NotificationState {
  return typeof Notification === "undefined" ? "unsupported" : Notification.permission;
}

export class Alerts {
  private audio: AudioContext | null = null;
  private enabledFlag: boolean;

  constructor() {
    this.enabledFlag = readPreference();
    if (this.enabledFlag) {
      // Remembered from an earlier visit: the audio may only start after this page's
      // first gesture, so create it then.
      const unlock = () => {
        document.removeEventListener("pointerdown", unlock);
        document.removeEventListener("keydown", unlock);
        if (this.enabledFlag) void this.ensureAudio();
      };
      document.addEventListener("pointerdown", unlock);
      document.addEventListener("keydown", unlock);
    }
  }

  get enabled(): boolean {
    return this.enabledFlag;
  }

  // Must run inside the click handler of the "enable" button.
  async enable(): Promise<NotificationState> {
    this.enabledFlag = true;
    writePreference(true);
    await this.ensureAudio();
    this.chime();
    if (typeof Notification !== "undefined" && Notification.permission === "default") {
      try {
        await Notification.requestPermission();
      } catch {
        // Old callback-style API or blocked: sound alone still works.
      }
    }
    return notificationState();
  }

  disable(): void {
    this.enabledFlag = false;
    writePreference(false);
  }

  // A new chat arrived. The sound always plays (when enabled); the desktop notification
  // only when the agent is not looking at this tab.
  newChat(title: string, body: string, tag: string, onClick: () => void): void {
    if (!this.enabledFlag) return;
    this.chime();
    if (notificationState() !== "granted" || (!document.hidden && document.hasFocus())) return;
    try {
      const notification = new Notification(title, { body, tag });
      notification.onclick = () => {
        window.focus();
        onClick();
        notification.close();
      };
    } catch {
      // Some platforms only allow notifications from a service worker.
    }
  }

  private async ensureAudio(): Promise<void> {
    const AudioContextClass = window.AudioContext ?? (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext;
    if (!AudioContextClass) return;
    this.audio ??= new AudioContextClass();
    if (this.audio.state === "suspended") {
      try {
        await this.audio.resume();
      } catch {
        // Still locked; the next gesture tries again.
      }
    }
  }

  // Two soft rising notes, about half a second in all.
  private chime(): void {
    const audio = this.audio;
    if (!audio || audio.state !== "running") return;
    const start = audio.currentTime + 0.01;
    const notes: [frequency: number, offset: number][] = [
      [659.25, 0],
      [987.77, 0.14],
    ];
    for (const [frequency, offset] of notes) {
      const oscillator = audio.createOscillator();
      const gain = audio.createGain();
      oscillator.type = "sine";
      oscillator.frequency.value = frequency;
      const at = start + offset;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.18, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.38);
      oscillator.connect(gain).connect(audio.destination);
      oscillator.start(at);
      oscillator.stop(at + 0.4);
    }
  }
}

function readPreference(): boolean {
  try {
    return window.localStorage.getItem(PREFERENCE_KEY) === "on";
  } catch {
    return false;
  }
}

function writePreference(on: boolean): void {
  try {
    window.localStorage.setItem(PREFERENCE_KEY, on ? "on" : "off");
  } catch {
    // Not remembered; alerts stay on for this visit.
  }
}
