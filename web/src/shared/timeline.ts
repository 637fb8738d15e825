import type { ChatMessage } from "./messages";
import type { Notice } from "./notices";
import { dayLabel, localDayKey } from "./time";

// What a conversation shows, top to bottom: day separators, messages and notices. A
// notice sits after the last message written before it happened.

export type TimelineItem =
  | { type: "day"; key: string; label: string }
  | { type: "message"; key: string; message: ChatMessage; startsGroup: boolean; endsGroup: boolean }
  | { type: "notice"; key: string; notice: Notice };

const GROUP_GAP_MS = 5 * 60 * 1000;

export function buildTimeline(messages: readonly ChatMessage[], notices: readonly Notice[], now = new Date()): TimelineItem[] {
  const items: TimelineItem[] = [];
  const waiting = [...notices].sort((a, b) => a.at.localeCompare(b.at));
  let lastDay: string | null = null;
  let previous: ChatMessage | null = null;

  const addDayIfNew = (iso: string) => {
    const day = localDayKey(iso);
    if (day !== lastDay) {
      lastDay = day;
      items.push({ type: "day", key: `day:${day}`, label: dayLabel(iso, now) });
    }
  };
  const flushNotices = (before: string | null) => {
    while (waiting.length > 0 && (before === null || waiting[0]!.at < before)) {
      const notice = waiting.shift()!;
      addDayIfNew(notice.at);
      items.push({ type: "notice", key: notice.key, notice });
      previous = null;
    }
  };

  for (const message of messages) {
    // Unconfirmed messages were written just now: after every notice.
    flushNotices(message.seq === null ? null : message.timestamp);
    addDayIfNew(message.timestamp);
    const prior: ChatMessage | null = previous;
    const startsGroup =
      prior === null ||
      prior.sender !== message.sender ||
      prior.senderId !== message.senderId ||
      Date.parse(message.timestamp) - Date.parse(prior.timestamp) > GROUP_GAP_MS ||
      items[items.length - 1]?.type === "day";
    items.push({ type: "message", key: message.key, message, startsGroup, endsGroup: true });
    previous = message;
  }
  flushNotices(null);
  // A message ends its group unless the next item continues it.
  for (let index = 0; index < items.length - 1; index += 1) {
    const item = items[index]!;
    const next = items[index + 1]!;
    if (item.type === "message" && next.type === "message" && !next.startsGroup) item.endsGroup = false;
  }
  return items;
}
