// Which text becomes a link. Only absolute http: and https: URLs do; `javascript:`,
// `data:` and every other scheme stay plain text (the server stores text verbatim, so a
// message can hold anything).

export type TextPart = { kind: "text"; text: string } | { kind: "link"; text: string; href: string };

const URL_CANDIDATE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING_PUNCTUATION = /[.,;:!?'"*_~]+$/;

export function safeHttpUrl(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
}

// "see (https://example.com/a_(b))." keeps the balanced ")" of the URL and drops the
// sentence's own ")" and ".".
function trimUrl(candidate: string): string {
  let url = candidate;
  for (;;) {
    const trimmed = url.replace(TRAILING_PUNCTUATION, "");
    if (trimmed.endsWith(")")) {
      const opens = (trimmed.match(/\(/g) ?? []).length;
      const closes = (trimmed.match(/\)/g) ?? []).length;
      if (closes > opens) {
        url = trimmed.slice(0, -1);
        continue;
      }
    }
    return trimmed;
  }
}

export function splitLinks(text: string): TextPart[] {
  const parts: TextPart[] = [];
  let position = 0;
  for (const match of text.matchAll(URL_CANDIDATE)) {
    const start = match.index ?? 0;
    const candidate = trimUrl(match[0]);
    const href = safeHttpUrl(candidate);
    if (!href) continue;
    if (start > position) parts.push({ kind: "text", text: text.slice(position, start) });
    parts.push({ kind: "link", text: candidate, href });
    position = start + candidate.length;
  }
  if (position < text.length) parts.push({ kind: "text", text: text.slice(position) });
  return parts;
}
