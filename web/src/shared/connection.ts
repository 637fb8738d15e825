import { io, type Socket } from "socket.io-client";
import { Store } from "./store";
import type { TokenSource } from "./token";
import type { SocketErrorEvent } from "./types";

// One Socket.IO connection to the supportchat server, with the state the UI shows and
// acknowledgements turned into results. socket.io-client does the transport work and
// the automatic reconnection; this class adds what the protocol asks of a client on top
// (protocol.md §2.3–2.4 and §6 "After a reconnect").

export type ConnectionState = "connecting" | "connected" | "reconnecting" | "offline";

export interface ConnectionStatus {
  state: ConnectionState;
  // Set when the connection is down and will not come back by itself (expired token,
  // refused handshake): a sentence for the person, and the server's reason code.
  problem: string | null;
  problemCode: string | null;
}

export type AckFailureReason = "refused" | "timeout" | "offline";

export type AckResult<T> =
  | { ok: true; data: T }
  | {
      ok: false;
      reason: AckFailureReason;
      message: string;
      code: string | null;
      retryAfterSeconds: number | null;
    };

export interface ConnectionOptions {
  serverUrl: string; // "" means the page's own origin
  role: "user" | "admin";
  tokens: TokenSource;
}

const DEFAULT_ACK_TIMEOUT_MS = 10_000;
// After the server itself closed the connection (not a network failure) socket.io-client
// does not reconnect; wait a little before trying again so a restarting server is not
// hammered.
const SERVER_DISCONNECT_RETRY_MS = 2_000;

interface AuthErrorData {
  type?: string;
  reason?: string;
  message?: string;
}

export class ChatConnection {
  readonly status = new Store<ConnectionStatus>({ state: "connecting", problem: null, problemCode: null });
  private readonly socket: Socket;
  private readonly tokens: TokenSource;
  private connectedBefore = false;
  private tokenExpiredWhileConnected = false;
  private browserOffline = typeof navigator !== "undefined" && navigator.onLine === false;
  private socketState: ConnectionState = "connecting";
  private problem: { text: string | null; code: string | null } = { text: null, code: null };
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  private readonly connectListeners = new Set<(isReconnect: boolean) => void>();
  private readonly disconnectListeners = new Set<() => void>();

  constructor(options: ConnectionOptions) {
    this.tokens = options.tokens;
    const socketOptions = {
      path: "/socket.io",
      // A function, so every (re)connection sends the current token (protocol.md §2.4).
      auth: (send: (data: object) => void) =>
        send({ token: this.tokens.current(), userType: options.role }),
      autoConnect: false,
      reconnectionDelay: 1_000,
      reconnectionDelayMax: 8_000,
      withCredentials: false,
    };
    this.socket = options.serverUrl ? io(options.serverUrl, socketOptions) : io(socketOptions);

    this.socket.on("connect", () => {
      const isReconnect = this.connectedBefore;
      this.connectedBefore = true;
      this.tokenExpiredWhileConnected = false;
      this.setSocketState("connected", null, null);
      for (const listener of this.connectListeners) listener(isReconnect);
    });

    this.socket.on("disconnect", (reason) => {
      for (const listener of this.disconnectListeners) listener();
      if (this.closed || reason === "io client disconnect") {
        this.setSocketState("offline", null, null);
        return;
      }
      if (reason === "io server disconnect") {
        if (this.tokenExpiredWhileConnected) {
          void this.recoverFromExpiredToken();
        } else {
          this.setSocketState("reconnecting", null, null);
          this.scheduleManualReconnect();
        }
        return;
      }
      // Transport closed, ping timeout...: socket.io-client reconnects by itself.
      this.setSocketState("reconnecting", null, null);
    });

    this.socket.on("connect_error", (error: Error & { data?: AuthErrorData }) => {
      const data = error.data;
      if (data?.type === "authentication_failed") {
        if (data.reason === "TOKEN_EXPIRED") {
          void this.recoverFromExpiredToken();
        } else {
          this.setSocketState("offline", authProblemText(data.reason, data.message ?? error.message), data.reason ?? null);
        }
        return;
      }
      // Network-level failure: the manager keeps retrying with backoff.
      this.setSocketState(this.connectedBefore ? "reconnecting" : "connecting", null, null);
    });

    // The server says `error` when the token runs out on a connected socket, then drops it.
    this.socket.on("error", (event: SocketErrorEvent) => {
      if (event?.type === "token_expired") this.tokenExpiredWhileConnected = true;
    });

    if (typeof window !== "undefined") {
      window.addEventListener("online", this.handleBrowserOnline);
      window.addEventListener("offline", this.handleBrowserOffline);
    }
  }

  start(): void {
    this.closed = false;
    this.socket.connect();
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  onConnect(listener: (isReconnect: boolean) => void): () => void {
    this.connectListeners.add(listener);
    return () => this.connectListeners.delete(listener);
  }

  onDisconnect(listener: () => void): () => void {
    this.disconnectListeners.add(listener);
    return () => this.disconnectListeners.delete(listener);
  }

  on<T>(event: string, handler: (payload: T) => void): () => void {
    const wrapped = (payload: T) => handler(payload);
    this.socket.on(event, wrapped);
    return () => {
      this.socket.off(event, wrapped);
    };
  }

  // Sends an event and waits for its acknowledgement. Never rejects: a refusal, a
  // missing answer and a connection that is down all come back as `ok: false`, with
  // `reason` telling which (the outbox decides from it whether to queue or to fail).
  emitWithAck<T>(event: string, payload: unknown, timeoutMs = DEFAULT_ACK_TIMEOUT_MS): Promise<AckResult<T>> {
    if (!this.socket.connected) {
      return Promise.resolve({
        ok: false,
        reason: "offline",
        message: "Not connected",
        code: null,
        retryAfterSeconds: null,
      });
    }
    return new Promise((resolve) => {
      this.socket.timeout(timeoutMs).emit(event, payload, (error: Error | null, ack: unknown) => {
        if (error) {
          // socket.io-client also ends pending acknowledgements with an error when the
          // connection drops; the message may still have been stored (resend it with
          // its clientMessageId).
          resolve({
            ok: false,
            reason: this.socket.connected ? "timeout" : "offline",
            message: this.socket.connected ? "The server did not answer in time" : "The connection dropped",
            code: null,
            retryAfterSeconds: null,
          });
          return;
        }
        resolve(parseAck<T>(ack));
      });
    });
  }

  // For typing indicators: dropped when not connected instead of being buffered and
  // replayed late.
  emitVolatile(event: string, payload: unknown): void {
    if (this.socket.connected) this.socket.volatile.emit(event, payload);
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.connectListeners.clear();
    this.disconnectListeners.clear();
    if (typeof window !== "undefined") {
      window.removeEventListener("online", this.handleBrowserOnline);
      window.removeEventListener("offline", this.handleBrowserOffline);
    }
    this.socket.removeAllListeners();
    this.socket.disconnect();
  }

  private async recoverFromExpiredToken(): Promise<void> {
    const before = this.tokens.current();
    const fresh = this.tokens.refresh ? await this.tokens.refresh().catch(() => null) : null;
    if (fresh && fresh !== before && !this.closed) {
      this.setSocketState("reconnecting", null, null);
      this.socket.connect();
      return;
    }
    this.setSocketState("offline", authProblemText("TOKEN_EXPIRED", null), "TOKEN_EXPIRED");
  }

  private scheduleManualReconnect(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.closed && !this.socket.connected) this.socket.connect();
    }, SERVER_DISCONNECT_RETRY_MS);
  }

  private readonly handleBrowserOnline = (): void => {
    this.browserOffline = false;
    this.publish();
    if (!this.socket.connected && !this.socket.active && !this.closed && !this.status.get().problemCode) {
      this.socket.connect();
    }
  };

  private readonly handleBrowserOffline = (): void => {
    this.browserOffline = true;
    this.publish();
  };

  private setSocketState(state: ConnectionState, problem: string | null, problemCode: string | null): void {
    this.socketState = state;
    this.problem = { text: problem, code: problemCode };
    this.publish();
  }

  private publish(): void {
    // The browser knows about a lost network long before a ping timeout would.
    const state: ConnectionState =
      this.browserOffline && this.socketState !== "offline" ? "offline" : this.socketState;
    const problem = this.problem.text ?? (this.browserOffline ? "You are offline. Messages will be sent when the connection is back." : null);
    this.status.set((current) =>
      current.state === state && current.problem === problem && current.problemCode === this.problem.code
        ? current
        : { state, problem, problemCode: this.problem.code },
    );
  }
}

function parseAck<T>(ack: unknown): AckResult<T> {
  if (typeof ack === "object" && ack !== null) {
    const record = ack as { success?: unknown; data?: unknown; message?: unknown; code?: unknown; retryAfter?: unknown };
    if (record.success === true) return { ok: true, data: record.data as T };
    return {
      ok: false,
      reason: "refused",
      message: typeof record.message === "string" ? record.message : "The server refused the request",
      code: typeof record.code === "string" ? record.code : null,
      retryAfterSeconds: typeof record.retryAfter === "number" ? record.retryAfter : null,
    };
  }
  return { ok: false, reason: "refused", message: "Unexpected answer from the server", code: null, retryAfterSeconds: null };
}

function authProblemText(reason: string | undefined | null, fallback: string | null): string {
  switch (reason) {
    case "TOKEN_EXPIRED":
      return "Your session has expired. Open this page again from your account to continue.";
    case "TOKEN_MISSING":
    case "TOKEN_INVALID":
      return "This link is not valid (the sign-in token was refused). Open the page again from your account.";
    case "FORBIDDEN":
      return "This account is not an agent account, so it cannot use the agent dashboard.";
    default:
      return fallback ?? "The server refused the connection.";
  }
}
