// Times for people: the server speaks ISO 8601 UTC; people read local clock times,
// "Today"/"Yesterday", and short durations.

function toDate(iso: string): Date {
  return new Date(iso);
}

export function formatClock(iso: string): string {
  const date = toDate(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

export function formatDateTime(iso: string): string {
  const date = toDate(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleString(undefined, {
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

// The local calendar day, to tell when a day separator is needed.
export function localDayKey(iso: string): string {
  const date = toDate(iso);
  return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
}

export function dayLabel(iso: string, now = new Date()): string {
  const date = toDate(iso);
  if (Number.isNaN(date.getTime())) return "";
  const startOfDay = (value: Date) => new Date(value.getFullYear(), value.getMonth(), value.getDate()).getTime();
  const days = Math.round((startOfDay(now) - startOfDay(date)) / 86_400_000);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  return date.toLocaleDateString(undefined, {
    weekday: "short",
    day: "numeric",
    month: "short",
    ...(date.getFullYear() === now.getFullYear() ? {} : { year: "numeric" }),
  });
}

export function formatShortDate(iso: string, now = new Date()): string {
  const date = toDate(iso);
  if (Number.isNaN(date.getTime())) return "";
  const label = dayLabel(iso, now);
  if (label === "Today") return formatClock(iso);
  return date.toLocaleDateString(undefined, {
    day: "numeric",
    month: "short",
    ...(date.getFullYear() === now.getFullYear() ? {} : { year: "numeric" }),
  });
}

// "45s", "3m 12s", "1h 04m", "2d 3h": compact enough for a queue row, precise enough to
// see it tick.
export function formatDuration(milliseconds: number): string {
  const seconds = Math.max(0, Math.floor(milliseconds / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(seconds % 60).padStart(2, "0")}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}h ${String(minutes % 60).padStart(2, "0")}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

export function elapsedSince(iso: string, now: number): number {
  const start = toDate(iso).getTime();
  return Number.isNaN(start) ? 0 : now - start;
}
