import type { Person } from "./types";

// A ticket names people either by id or as {_id, fullName, email} (protocol.md §3.7).

export function personId(person: Person | string | null | undefined): string | null {
  if (!person) return null;
  return typeof person === "string" ? person : person._id;
}

export function personName(person: Person | string | null | undefined, fallback: string): string {
  if (!person) return fallback;
  if (typeof person === "string") return fallback;
  return person.fullName || person.email || fallback;
}

export function personEmail(person: Person | string | null | undefined): string | null {
  if (!person || typeof person === "string") return null;
  return person.email ?? null;
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? [parts[0]!, parts[parts.length - 1]!] : parts;
  return letters.map((part) => Array.from(part)[0]?.toUpperCase() ?? "").join("") || "?";
}
