// Tokens for the full pages (/chat, /agent). The host product links to
// `/chat#token=JWT`: a fragment never reaches any server or its logs. The page moves the
// token into sessionStorage (this tab only, survives reloads) and removes it from the
// address bar, so it is not left in the history or copied along with the URL.

export type TokenSlot = "customer" | "agent";

function storageKey(slot: TokenSlot): string {
  return `supportchat:${slot}-token`;
}

export function takeTokenFromPage(slot: TokenSlot): string | null {
  const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  const fromFragment = fragment.get("token");
  if (fromFragment) {
    try {
      window.sessionStorage.setItem(storageKey(slot), fromFragment);
    } catch {
      // Storage can be disabled (privacy modes); the token then lasts until a reload.
    }
    fragment.delete("token");
    const rest = fragment.toString();
    const cleanUrl = window.location.pathname + window.location.search + (rest ? `#${rest}` : "");
    window.history.replaceState(window.history.state, "", cleanUrl);
    return fromFragment;
  }
  try {
    return window.sessionStorage.getItem(storageKey(slot));
  } catch {
    return null;
  }
}

export interface TokenClaims {
  userId: string | null;
  name: string | null;
  email: string | null;
  role: string | null;
  expiresAt: number | null; // milliseconds since the epoch
}

// Reads the token's claims for display only (the name in the header, an early "expired"
// notice). The server verifies the signature; nothing here is trusted.
export function readClaims(token: string): TokenClaims | null {
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (char) => char.charCodeAt(0));
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof claims !== "object" || claims === null) return null;
    const record = claims as Record<string, unknown>;
    const text = (value: unknown): string | null =>
      typeof value === "string" && value !== "" ? value : typeof value === "number" ? String(value) : null;
    return {
      userId: text(record.userId) ?? text(record.sub) ?? text(record.id),
      name: text(record.fullName) ?? text(record.name),
      email: text(record.email),
      role: text(record.role),
      expiresAt: typeof record.exp === "number" ? record.exp * 1000 : null,
    };
  } catch {
    return null;
  }
}

export function isExpired(claims: TokenClaims | null, now = Date.now()): boolean {
  return claims?.expiresAt != null && claims.expiresAt <= now;
}

// Where a token comes from and how to get a fresh one. Full pages cannot refresh (the
// host product hands out tokens); the widget can, if the host passed `refreshToken`.
export interface TokenSource {
  current(): string;
  refresh?: () => Promise<string | null>;
}
