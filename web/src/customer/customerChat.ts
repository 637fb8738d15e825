import { ApiError, createApiClient, describeError, type ApiClient } from "../shared/api";
import { ChatConnection } from "../shared/connection";
import { isActiveStatus } from "../shared/constants";
import {
  CLOSED_FAILURE,
  confirmSend,
  failUnsent,
  fromServer,
  mergeMessages,
  mergeServerMessages,
  newClientMessageId,
  newestMessageId,
  pendingMessage,
  removeMessage,
  updateOwnMessage,
  type ChatMessage,
} from "../shared/messages";
import { addNotice, agentJoinedNotice, chatClosedNotice, noticesFromTicket, type Notice } from "../shared/notices";
import { Outbox, type OutboxReport } from "../shared/outbox";
import { personName } from "../shared/people";
import { Store } from "../shared/store";
import { readClaims, type TokenSource } from "../shared/token";
import { REMOTE_TYPING_TIMEOUT_MS, TypingSignal } from "../shared/typing";
import type {
  ActiveChatsData,
  AgentJoinedEvent,
  AgentTypingEvent,
  ChatClosedEvent,
  HistoryData,
  NewMessageEvent,
  Priority,
  RoomJoinData,
  StartChatData,
  Ticket,
  TicketData,
  TicketStatus,
} from "../shared/types";

// Everything the customer UI does, outside React: loading the open chat, starting one,
// sending with optimistic display and retries, live events, catching up after a
// reconnect, and the history of past chats. The page (/chat) and the widget share it.

export interface StartDraft {
  message: string;
  category: string;
  priority: Priority;
}

export interface OpenChat {
  id: string | null; // null until POST /api/chat/start has answered
  number: string | null;
  status: TicketStatus;
  category: string;
  priority: Priority;
  createdAt: string;
  agentName: string | null;
}

export interface PastChat {
  ticket: Ticket;
  messages: ChatMessage[];
  notices: Notice[];
}

export interface HistoryState {
  items: Ticket[];
  page: number;
  hasMore: boolean;
  loading: boolean;
  error: string | null;
}

export type CustomerView = "chat" | "history" | "past";

export interface CustomerState {
  phase: "loading" | "ready" | "failed";
  loadError: string | null;
  // False when trying again cannot help (the token was refused).
  loadRetryable: boolean;
  me: { id: string | null; name: string };
  view: CustomerView;
  chat: OpenChat | null; // null: show the form to start a chat
  messages: ChatMessage[];
  notices: Notice[];
  agentTyping: string | null;
  startError: string | null;
  startDraft: StartDraft | null; // restored into the form after a refused start
  history: HistoryState;
  past: PastChat | null;
  unseen: number; // agent messages that arrived while the widget was closed
}

const HISTORY_PAGE_SIZE = 10;

export interface CustomerChatOptions {
  serverUrl: string;
  tokens: TokenSource;
}

export class CustomerChat {
  readonly store: Store<CustomerState>;
  readonly connection: ChatConnection;
  private readonly api: ApiClient;
  private readonly outbox: Outbox;
  private readonly typing: TypingSignal;
  private agentTypingTimer: ReturnType<typeof setTimeout> | null = null;
  private pendingStart: (StartDraft & { clientMessageId: string }) | null = null;
  private startInFlight = false;
  private visible = true;
  private readonly cleanups: (() => void)[] = [];

  constructor(options: CustomerChatOptions) {
    const claims = readClaims(options.tokens.current());
    this.store = new Store<CustomerState>({
      phase: "loading",
      loadError: null,
      loadRetryable: true,
      me: { id: claims?.userId ?? null, name: claims?.name ?? "You" },
      view: "chat",
      chat: null,
      messages: [],
      notices: [],
      agentTyping: null,
      startError: null,
      startDraft: null,
      history: { items: [], page: 0, hasMore: false, loading: false, error: null },
      past: null,
      unseen: 0,
    });
    this.api = createApiClient(options.serverUrl, options.tokens);
    this.connection = new ChatConnection({ serverUrl: options.serverUrl, role: "user", tokens: options.tokens });
    this.outbox = new Outbox(this.connection, "send_message", (report) => this.onOutboxReport(report));
    this.typing = new TypingSignal((isTyping) => {
      const chatId = this.store.get().chat?.id;
      if (chatId) this.connection.emitVolatile("user_typing", { ticketId: chatId, isTyping });
    });
  }

  start(): void {
    const c = this.connection;
    this.cleanups.push(
      c.onConnect(() => void this.onConnected()),
      c.onDisconnect(() => this.outbox.setReady(false)),
      c.on<NewMessageEvent>("new_message", (event) => this.onNewMessage(event)),
      c.on<AgentJoinedEvent>("agent_joined", (event) => this.onAgentJoined(event)),
      c.on<ChatClosedEvent>("chat_closed", (event) => this.onChatClosed(event)),
      c.on<AgentTypingEvent>("agent_typing", (event) => this.onAgentTyping(event)),
    );
    c.start();
    void this.loadOpenChat();
  }

  dispose(): void {
    this.typing.reset();
    if (this.agentTypingTimer) clearTimeout(this.agentTypingTimer);
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.outbox.dispose();
    this.connection.close();
  }

  // ---- loading ----

  async loadOpenChat(): Promise<void> {
    this.store.patch({ phase: "loading", loadError: null });
    try {
      const data = await this.api.get<ActiveChatsData>("/api/chat/active");
      const ticket = data.activeChats?.[0];
      if (ticket) this.adoptTicket(ticket);
      this.store.patch({ phase: "ready" });
      await this.syncOpenChat();
    } catch (error) {
      const refused = error instanceof ApiError && (error.status === 401 || error.status === 403);
      this.store.patch({ phase: "failed", loadError: describeError(error), loadRetryable: !refused });
    }
  }

  private adoptTicket(ticket: Ticket): void {
    this.store.set((state) => ({
      ...state,
      chat: {
        id: ticket._id,
        number: ticket.ticketNumber,
        status: ticket.status,
        category: ticket.category,
        priority: ticket.priority,
        createdAt: ticket.createdAt,
        agentName: ticket.assignedTo ? personName(ticket.assignedTo, "Support") : null,
      },
      messages: mergeServerMessages(state.chat?.id === ticket._id ? state.messages : [], ticket.messages ?? []),
      // Same chat: keep notices only events told us (a second agent who joined).
      notices: noticesFromTicket(ticket).reduce(addNotice, state.chat?.id === ticket._id ? state.notices : []),
    }));
  }

  // After a (re)connection, or once the chat is known: re-join with the newest message we
  // hold, so the server replays what we missed (as `new_message`, before the ack), learn
  // the chat's status, then let the outbox send what waited.
  private async syncOpenChat(): Promise<void> {
    if (!this.connection.connected) return;
    const chat = this.store.get().chat;
    if (!chat?.id) {
      this.outbox.setReady(true);
      return;
    }
    const lastMessageId = newestMessageId(this.store.get().messages);
    const result = await this.connection.emitWithAck<RoomJoinData>("join_chat_room", {
      ticketId: chat.id,
      ...(lastMessageId ? { lastMessageId } : {}),
    });
    if (result.ok) {
      const wasActive = isActiveStatus(this.store.get().chat?.status ?? "open");
      this.updateChat({ status: result.data.status });
      // It closed while we were away: the ticket has the resolution to show.
      if (wasActive && !isActiveStatus(result.data.status)) await this.reloadChat(chat.id);
    } else if (result.reason === "offline") {
      return; // the next connection syncs again
    } else if (result.code === "TICKET_NOT_FOUND") {
      this.store.patch({ chat: null, messages: [], notices: [] });
    } else {
      await this.reloadChat(chat.id);
    }
    this.outbox.setReady(true);
  }

  private async reloadChat(ticketId: string): Promise<void> {
    try {
      const data = await this.api.get<TicketData>(`/api/chat/${encodeURIComponent(ticketId)}`);
      if (this.store.get().chat?.id === ticketId) this.adoptTicket(data.ticket);
      if (!isActiveStatus(data.ticket.status)) this.onClosedLocally(ticketId);
    } catch {
      // Shown as it is; the next reconnection tries again.
    }
  }

  private async onConnected(): Promise<void> {
    // The first load failed (server down at the time): the server is back, try again.
    if (this.store.get().phase === "failed" && this.store.get().loadRetryable) {
      await this.loadOpenChat();
      return;
    }
    if (this.pendingStart && !this.startInFlight) void this.postStart();
    await this.syncOpenChat();
  }

  // ---- starting a chat ----

  startChat(draft: StartDraft): void {
    const clientMessageId = newClientMessageId();
    this.pendingStart = { ...draft, clientMessageId };
    const { me } = this.store.get();
    this.store.patch({
      view: "chat",
      startError: null,
      startDraft: null,
      chat: {
        id: null,
        number: null,
        status: "open",
        category: draft.category,
        priority: draft.priority,
        createdAt: new Date().toISOString(),
        agentName: null,
      },
      messages: [pendingMessage(draft.message, "user", me.id, me.name, clientMessageId)],
      notices: [],
      agentTyping: null,
    });
    void this.postStart();
  }

  private async postStart(): Promise<void> {
    const start = this.pendingStart;
    if (!start || this.startInFlight) return;
    this.startInFlight = true;
    this.setOwnStatus(start.clientMessageId, { status: "sending", failure: null });
    try {
      const data = await this.api.post<StartChatData>("/api/chat/start", {
        message: start.message,
        category: start.category,
        priority: start.priority,
        clientMessageId: start.clientMessageId,
      });
      this.pendingStart = null;
      this.store.set((state) => ({
        ...state,
        chat: {
          id: data.ticketId,
          number: data.ticketNumber,
          status: data.status,
          category: data.category,
          priority: data.priority,
          createdAt: data.createdAt,
          agentName: state.chat?.agentName ?? null,
        },
        messages: mergeServerMessages(state.messages, data.messages ?? []),
      }));
      // An existing chat (another tab started it): fetch its agent and notices.
      if (data.isExisting) await this.reloadChat(data.ticketId);
      await this.syncOpenChat();
    } catch (error) {
      this.onStartFailed(start, error);
    } finally {
      this.startInFlight = false;
    }
  }

  private onStartFailed(start: StartDraft & { clientMessageId: string }, error: unknown): void {
    if (error instanceof ApiError && !error.isTransient) {
      // The server refused the content (validation): back to the form, text kept.
      this.pendingStart = null;
      this.store.patch({
        chat: null,
        messages: [],
        startError: error.message,
        startDraft: { message: start.message, category: start.category, priority: start.priority },
      });
      return;
    }
    if (error instanceof ApiError && error.status === 0 && !this.connection.connected) {
      return; // offline: stays "sending", posted again when the connection is back
    }
    const retryAfter = error instanceof ApiError ? error.retryAfterSeconds : null;
    this.setOwnStatus(start.clientMessageId, {
      status: "failed",
      failure: {
        text: error instanceof ApiError && error.status === 429 ? "Too many requests. Wait a moment, then retry." : "Could not start the chat.",
        code: error instanceof ApiError ? error.code : null,
        permanent: false,
        retryAt: retryAfter ? Date.now() + retryAfter * 1000 : null,
      },
    });
  }

  startNewChat(): void {
    this.typing.reset();
    this.store.patch({ chat: null, messages: [], notices: [], agentTyping: null, view: "chat", startError: null });
  }

  // ---- sending ----

  send(text: string): void {
    const { chat, me } = this.store.get();
    if (!chat?.id || !isActiveStatus(chat.status)) return;
    const message = pendingMessage(text, "user", me.id, me.name);
    this.store.set((state) => ({ ...state, messages: mergeMessages(state.messages, [message]) }));
    this.typing.stop();
    this.outbox.add({ ticketId: chat.id, clientMessageId: message.clientMessageId!, text });
  }

  retry(key: string): void {
    if (this.pendingStart?.clientMessageId === key) {
      void this.postStart();
      return;
    }
    const { chat, messages } = this.store.get();
    const message = messages.find((held) => held.key === key);
    if (!chat?.id || !message?.clientMessageId || message.status !== "failed") return;
    this.setOwnStatus(message.clientMessageId, { status: "sending", failure: null });
    this.outbox.add({ ticketId: chat.id, clientMessageId: message.clientMessageId, text: message.text });
  }

  dismiss(key: string): void {
    this.outbox.remove(key);
    this.store.set((state) => ({ ...state, messages: removeMessage(state.messages, key) }));
  }

  noteTyping(): void {
    const chat = this.store.get().chat;
    if (chat?.id && isActiveStatus(chat.status)) this.typing.keystroke();
  }

  stopTyping(): void {
    this.typing.stop();
  }

  private onOutboxReport(report: OutboxReport): void {
    if (report.kind === "sent") {
      this.store.set((state) => ({
        ...state,
        messages: confirmSend(state.messages, report.item.clientMessageId, report.data),
      }));
    } else {
      this.setOwnStatus(report.item.clientMessageId, { status: "failed", failure: report.failure });
    }
  }

  private setOwnStatus(clientMessageId: string, change: Pick<ChatMessage, "status" | "failure">): void {
    this.store.set((state) => {
      const messages = updateOwnMessage(state.messages, clientMessageId, change);
      return messages === state.messages ? state : { ...state, messages };
    });
  }

  // ---- live events ----

  private onNewMessage(event: NewMessageEvent): void {
    const { chat } = this.store.get();
    if (chat?.id === event.ticketId) {
      const message = fromServer(event);
      this.store.set((state) => ({
        ...state,
        messages: mergeMessages(state.messages, [message]),
        agentTyping: message.sender === "agent" ? null : state.agentTyping,
        unseen: message.sender === "agent" && !this.visible ? state.unseen + 1 : state.unseen,
      }));
      return;
    }
    // A chat started in another tab of ours, while this one has none open.
    if ((!chat || (chat.id !== null && !isActiveStatus(chat.status))) && !this.pendingStart) {
      void this.reloadAndAdopt(event.ticketId);
    }
  }

  private async reloadAndAdopt(ticketId: string): Promise<void> {
    try {
      const data = await this.api.get<TicketData>(`/api/chat/${encodeURIComponent(ticketId)}`);
      const current = this.store.get().chat;
      const free = !current || (current.id !== null && !isActiveStatus(current.status));
      if (free && !this.pendingStart && isActiveStatus(data.ticket.status)) {
        this.adoptTicket(data.ticket);
        await this.syncOpenChat();
      }
    } catch {
      // Not ours to show after all.
    }
  }

  private onAgentJoined(event: AgentJoinedEvent): void {
    if (this.store.get().chat?.id !== event.ticketId) return;
    const name = event.agentName || "A support agent";
    this.store.set((state) => ({
      ...state,
      chat: state.chat ? { ...state.chat, agentName: name } : state.chat,
      notices: addNotice(state.notices, agentJoinedNotice(event.agentId, name, event.joinedAt)),
    }));
  }

  private onChatClosed(event: ChatClosedEvent): void {
    if (this.store.get().chat?.id !== event.ticketId) return;
    this.store.set((state) => ({
      ...state,
      chat: state.chat ? { ...state.chat, status: event.status ?? "resolved" } : state.chat,
      notices: addNotice(state.notices, chatClosedNotice(event.closedAt, event.closedBy ?? null, event.resolutionSummary ?? null)),
    }));
    this.onClosedLocally(event.ticketId);
  }

  private onClosedLocally(ticketId: string): void {
    this.typing.reset();
    this.setAgentTyping(null);
    this.outbox.failTicket(ticketId, CLOSED_FAILURE);
    this.store.set((state) => ({
      ...state,
      messages: failUnsent(state.messages, CLOSED_FAILURE),
    }));
  }

  private onAgentTyping(event: AgentTypingEvent): void {
    if (this.store.get().chat?.id !== event.ticketId) return;
    this.setAgentTyping(event.isTyping ? event.agentName || "Support" : null);
  }

  private setAgentTyping(name: string | null): void {
    if (this.agentTypingTimer) clearTimeout(this.agentTypingTimer);
    this.agentTypingTimer = name ? setTimeout(() => this.setAgentTyping(null), REMOTE_TYPING_TIMEOUT_MS) : null;
    this.store.patch({ agentTyping: name });
  }

  private updateChat(change: Partial<OpenChat>): void {
    this.store.set((state) => (state.chat ? { ...state, chat: { ...state.chat, ...change } } : state));
  }

  // ---- views: history and past chats ----

  setVisible(visible: boolean): void {
    this.visible = visible;
    if (visible) this.store.patch({ unseen: 0 });
  }

  showChat(): void {
    this.store.patch({ view: "chat", past: null });
  }

  showHistory(): void {
    this.store.patch({ view: "history", past: null });
    void this.loadHistory(1);
  }

  loadMoreHistory(): void {
    const { history } = this.store.get();
    if (history.hasMore && !history.loading) void this.loadHistory(history.page + 1);
  }

  private async loadHistory(page: number): Promise<void> {
    this.store.set((state) => ({ ...state, history: { ...state.history, loading: true, error: null } }));
    try {
      const data = await this.api.get<HistoryData>("/api/chat/history", { page, limit: HISTORY_PAGE_SIZE });
      this.store.set((state) => {
        const earlier = page === 1 ? [] : state.history.items;
        const known = new Set(earlier.map((ticket) => ticket._id));
        return {
          ...state,
          history: {
            items: [...earlier, ...data.chats.filter((ticket) => !known.has(ticket._id))],
            page,
            hasMore: data.pagination.hasNextPage,
            loading: false,
            error: null,
          },
        };
      });
    } catch (error) {
      this.store.set((state) => ({ ...state, history: { ...state.history, loading: false, error: describeError(error) } }));
    }
  }

  openPastChat(ticketId: string): void {
    const { chat, history } = this.store.get();
    if (chat?.id === ticketId) {
      this.showChat();
      return;
    }
    const ticket = history.items.find((item) => item._id === ticketId);
    if (!ticket) return;
    this.store.patch({
      view: "past",
      past: { ticket, messages: mergeServerMessages([], ticket.messages ?? []), notices: noticesFromTicket(ticket) },
    });
  }
}
