import type { TokenSource } from "./token";

// REST client for the supportchat API. Every answer is an envelope
// `{success, message, data}`; a failure carries a stable `code` (protocol.md §3.1).

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number, // 0 when the request never got an answer (network down)
    readonly code: string | null,
    readonly retryAfterSeconds: number | null,
  ) {
    super(message);
    this.name = "ApiError";
  }

  // Worth trying again later with the same request: no answer, overload, restart.
  get isTransient(): boolean {
    return this.status === 0 || this.status === 429 || this.status === 503 || this.status >= 500;
  }
}

interface Envelope<T> {
  success: boolean;
  message?: string;
  code?: string;
  data?: T;
}

export interface ApiClient {
  get<T>(path: string, query?: Record<string, string | number | undefined>): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
}

// `baseUrl` is "" for pages served by the supportchat server itself, or the server's
// origin for the widget embedded in another site.
export function createApiClient(baseUrl: string, tokens: TokenSource | null): ApiClient {
  async function send<T>(method: "GET" | "POST", path: string, body: unknown, retried: boolean): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (tokens) headers.Authorization = `Bearer ${tokens.current()}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";

    let response: Response;
    try {
      response = await fetch(baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        // Tokens travel in the header; cookies are never needed (and CORS allows none).
        credentials: "omit",
      });
    } catch {
      throw new ApiError("Cannot reach the server. Check your connection.", 0, null, null);
    }

    let envelope: Envelope<T> | null = null;
    try {
      envelope = (await response.json()) as Envelope<T>;
    } catch {
      envelope = null;
    }

    if (response.ok && envelope?.success !== false) {
      return (envelope?.data ?? ({} as T)) as T;
    }

    const code = envelope?.code ?? null;
    if (response.status === 401 && code === "TOKEN_EXPIRED" && tokens?.refresh && !retried) {
      const fresh = await tokens.refresh();
      if (fresh) return send<T>(method, path, body, true);
    }
    const retryAfter = Number(response.headers.get("Retry-After"));
    throw new ApiError(
      envelope?.message ?? `The server answered ${response.status}`,
      response.status,
      code,
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null,
    );
  }

  return {
    get<T>(path: string, query?: Record<string, string | number | undefined>): Promise<T> {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(query ?? {})) {
        if (value !== undefined) params.set(key, String(value));
      }
      const search = params.toString();
      return send<T>("GET", search ? `${path}?${search}` : path, undefined, false);
    },
    post<T>(path: string, body?: unknown): Promise<T> {
      return send<T>("POST", path, body ?? {}, false);
    },
  };
}

export function describeError(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return "Something went wrong";
}
