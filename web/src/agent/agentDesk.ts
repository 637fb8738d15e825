import { createApiClient, describeError, type ApiClient } from "../shared/api";
import { ChatConnection } from "../shared/connection";
import { isActiveStatus } from "../shared/constants";
import {
  CLOSED_FAILURE,
  confirmSend,
  failUnsent,
  fromServer,
  mergeMessages,
  mergeServerMessages,
  newestMessageId,
  pendingMessage,
  removeMessage,
  updateOwnMessage,
  type ChatMessage,
} from "../shared/messages";
import { addNotice, agentJoinedNotice, chatClosedNotice, noticesFromTicket, type Notice } from "../shared/notices";
import { Outbox, type OutboxReport } from "../shared/outbox";
import { personId, personName } from "../shared/people";
import { Store } from "../shared/store";
import { readClaims, type TokenSource } from "../shared/token";
import { REMOTE_TYPING_TIMEOUT_MS, TypingSignal } from "../shared/typing";
import type {
  AdminQueueData,
  AdminStatusEvent,
  AgentJoinData,
  AgentJoinedEvent,
  ChatAssignedEvent,
  ChatClosedEvent,
  CloseChatData,
  MessagesPageData,
  NewChatTicketEvent,
  NewMessageEvent,
  Ticket,
  TicketData,
  UserMessageEvent,
  UserTypingEvent,
} from "../shared/types";
import { Alerts, notificationState, type NotificationState } from "./alerts";
import { entryFromTicket, matchesStatusFilter, type QueueEntry, type ScopeFilter, type StatusFilter } from "./queue";

// Everything the agent dashboard does, outside React: the live queue, conversations,
// joining, replying with optimistic display and retries, closing, typing both ways,
// presence, alerts, and catching up after a reconnect (protocol.md §6, step 3).

export interface Conversation {
  ticketId: string;
  loading: boolean;
  error: string | null;
  messages: ChatMessage[];
  notices: Notice[];
  // This agent receives the chat's messages and typing live (protocol.md §5.1).
  following: boolean;
  joining: boolean;
  userTyping: string | null;
}

export interface AgentInfo {
  id: string;
  name: string | null;
  isOnline: boolean | null;
  activeChats: number | null;
}

export interface DeskState {
  me: { id: string | null; name: string };
  filter: StatusFilter;
  scope: ScopeFilter;
  queue: Record<string, QueueEntry>;
  queueLoading: boolean;
  queueError: string | null;
  queueLimit: number;
  queueTotal: number;
  selectedId: string | null;
  conversations: Record<string, Conversation>;
  agents: Record<string, AgentInfo>;
  alertsEnabled: boolean;
  notifications: NotificationState;
  notice: string | null; // a failed action, shown as a dismissible message
}

const QUEUE_PAGE = 100;
const QUEUE_MAX = 500;
// Enough recent messages per chat to see who spoke last and since when a customer waits.
const QUEUE_MESSAGES = 10;
// Agents' replies in chats this agent does not follow reach nobody here; a periodic
// reload keeps waiting times and previews honest.
const QUEUE_REFRESH_MS = 30_000;

export interface AgentDeskOptions {
  serverUrl: string;
  tokens: TokenSource;
}

export class AgentDesk {
  readonly store: Store<DeskState>;
  readonly connection: ChatConnection;
  readonly alerts = new Alerts();
  private readonly api: ApiClient;
  private readonly outbox: Outbox;
  private readonly typingSignals = new Map<string, TypingSignal>();
  private readonly typingTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private refreshTimer: ReturnType<typeof setInterval> | null = null;
  private queueRequest = 0;
  private readonly cleanups: (() => void)[] = [];

  constructor(options: AgentDeskOptions) {
    const claims = readClaims(options.tokens.current());
    const me = { id: claims?.userId ?? null, name: claims?.name ?? "Agent" };
    this.store = new Store<DeskState>({
      me,
      filter: "active",
      scope: "all",
      queue: {},
      queueLoading: true,
      queueError: null,
      queueLimit: QUEUE_PAGE,
      queueTotal: 0,
      selectedId: null,
      conversations: {},
      agents: me.id ? { [me.id]: { id: me.id, name: me.name, isOnline: null, activeChats: null } } : {},
      alertsEnabled: this.alerts.enabled,
      notifications: notificationState(),
      notice: null,
    });
    this.api = createApiClient(options.serverUrl, options.tokens);
    this.connection = new ChatConnection({ serverUrl: options.serverUrl, role: "admin", tokens: options.tokens });
    this.outbox = new Outbox(this.connection, "admin_send_message", (report) => this.onOutboxReport(report));
  }

  start(): void {
    const c = this.connection;
    this.cleanups.push(
      c.onConnect(() => void this.onConnected()),
      c.onDisconnect(() => this.outbox.setReady(false)),
      c.on<NewChatTicketEvent>("new_chat_ticket", (event) => this.onNewChatTicket(event)),
      c.on<UserMessageEvent>("user_message", (event) => this.onUserMessage(event)),
      c.on<NewMessageEvent>("new_message", (event) => this.onNewMessage(event)),
      c.on<ChatAssignedEvent>("chat_assigned", (event) => this.onChatAssigned(event)),
      c.on<ChatClosedEvent>("chat_closed", (event) => this.onChatClosed(event)),
      c.on<AdminStatusEvent>("admin_status_update", (event) => this.onAdminStatus(event)),
      c.on<UserTypingEvent>("user_typing", (event) => this.onUserTyping(event)),
      c.on<AgentJoinedEvent>("agent_joined", (event) => this.onAgentJoined(event)),
    );
    document.addEventListener("visibilitychange", this.onVisibilityChange);
    c.start();
    void this.loadQueue();
    this.refreshTimer = setInterval(() => {
      if (!this.connection.connected || document.visibilityState !== "visible") return;
      void this.loadQueue(true);
      // The open conversation, if this agent does not follow it, gets no live replies
      // from other agents: fetch what is new.
      const { selectedId, conversations, queue } = this.store.get();
      const open = selectedId ? conversations[selectedId] : undefined;
      const entry = selectedId ? queue[selectedId] : undefined;
      if (open && !open.following && !open.loading && entry && isActiveStatus(entry.status)) {
        void this.catchUpOverRest(open.ticketId);
      }
    }, QUEUE_REFRESH_MS);
  }

  dispose(): void {
    document.removeEventListener("visibilitychange", this.onVisibilityChange);
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    for (const timer of this.typingTimers.values()) clearTimeout(timer);
    for (const signal of this.typingSignals.values()) signal.reset();
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.outbox.dispose();
    this.connection.close();
  }

  // ---- the queue ----

  setFilter(filter: StatusFilter): void {
    this.store.patch({ filter, queueLimit: QUEUE_PAGE });
    void this.loadQueue();
  }

  setScope(scope: ScopeFilter): void {
    this.store.patch({ scope });
  }

  showMore(): void {
    const { queueLimit } = this.store.get();
    this.store.patch({ queueLimit: Math.min(QUEUE_MAX, queueLimit + QUEUE_PAGE) });
    void this.loadQueue();
  }

  async loadQueue(quiet = false): Promise<void> {
    const request = ++this.queueRequest;
    const { filter, queueLimit } = this.store.get();
    if (!quiet) this.store.patch({ queueLoading: true, queueError: null });
    try {
      const data = await this.api.get<AdminQueueData>("/api/chat/admin/active", {
        status: filter,
        page: 1,
        limit: queueLimit,
        messages: filter === "resolved" ? 1 : QUEUE_MESSAGES,
      });
      if (request !== this.queueRequest) return; // a newer request (other filter) wins
      this.store.set((state) => {
        const queue: Record<string, QueueEntry> = {};
        for (const ticket of data.chats) queue[ticket._id] = entryFromTicket(ticket, state.queue[ticket._id]);
        // The open conversation stays listed even if it left the filter (it was closed).
        const selected = state.selectedId ? state.queue[state.selectedId] : undefined;
        if (selected && !queue[selected.id]) queue[selected.id] = selected;
        return {
          ...state,
          queue,
          queueLoading: false,
          queueError: null,
          queueTotal: data.pagination?.totalChats ?? data.chats.length,
          agents: this.agentsFromTickets(state.agents, data.chats),
        };
      });
    } catch (error) {
      if (request !== this.queueRequest) return;
      this.store.patch({ queueLoading: false, queueError: describeError(error) });
    }
  }

  private agentsFromTickets(agents: Record<string, AgentInfo>, tickets: readonly Ticket[]): Record<string, AgentInfo> {
    let result = agents;
    for (const ticket of tickets) {
      const id = personId(ticket.assignedTo);
      if (!id) continue;
      const name = personName(ticket.assignedTo, "");
      if (name && result[id]?.name !== name) {
        result = { ...result, [id]: { id, name, isOnline: result[id]?.isOnline ?? null, activeChats: result[id]?.activeChats ?? null } };
      }
    }
    return result;
  }

  private upsertEntry(id: string, change: (entry: QueueEntry) => QueueEntry): void {
    this.store.set((state) => {
      const entry = state.queue[id];
      if (!entry) return state;
      const updated = change(entry);
      const keep = matchesStatusFilter(updated.status, state.filter) || state.selectedId === id;
      const queue = { ...state.queue };
      if (keep) queue[id] = updated;
      else delete queue[id];
      return { ...state, queue };
    });
  }

  // A chat we do not list yet (its status just started to match the filter, or the
  // event beat the queue load): fetch it whole.
  private async addTicket(ticketId: string, unread: number): Promise<void> {
    try {
      const data = await this.api.get<TicketData>(`/api/chat/${encodeURIComponent(ticketId)}`);
      this.store.set((state) => {
        if (!matchesStatusFilter(data.ticket.status, state.filter) && state.selectedId !== ticketId) return state;
        const entry = entryFromTicket({ ...data.ticket, messages: data.ticket.messages?.slice(-QUEUE_MESSAGES) }, state.queue[ticketId]);
        return { ...state, queue: { ...state.queue, [ticketId]: { ...entry, unread: Math.max(entry.unread, unread) } } };
      });
    } catch {
      // The next queue reload lists it.
    }
  }

  // ---- selecting and loading a conversation ----

  select(ticketId: string | null): void {
    this.store.set((state) => {
      const entry = ticketId ? state.queue[ticketId] : undefined;
      return {
        ...state,
        selectedId: ticketId,
        queue: entry && entry.unread > 0 ? { ...state.queue, [entry.id]: { ...entry, unread: 0 } } : state.queue,
      };
    });
    if (!ticketId) return;
    const conversation = this.store.get().conversations[ticketId];
    if (!conversation || (conversation.error && !conversation.loading)) {
      void this.loadConversation(ticketId);
    } else if (!conversation.following && !conversation.loading) {
      // Viewed before without following: other agents' replies since then never came.
      void this.catchUpOverRest(ticketId);
    }
  }

  private readonly onVisibilityChange = (): void => {
    const { selectedId, queue } = this.store.get();
    const entry = selectedId ? queue[selectedId] : undefined;
    if (document.visibilityState === "visible" && entry && entry.unread > 0) {
      this.store.set((state) => ({ ...state, queue: { ...state.queue, [entry.id]: { ...entry, unread: 0 } } }));
    }
  };

  async loadConversation(ticketId: string): Promise<void> {
    this.setConversation(ticketId, (current) => ({ ...current, loading: true, error: null }));
    try {
      const data = await this.api.get<TicketData>(`/api/chat/${encodeURIComponent(ticketId)}`);
      const ticket = data.ticket;
      const me = this.store.get().me.id;
      this.setConversation(ticketId, (current) => ({
        ...current,
        loading: false,
        messages: mergeServerMessages(current.messages, ticket.messages ?? []),
        notices: noticesFromTicket(ticket).reduce(addNotice, current.notices),
        following: current.following || (me !== null && personId(ticket.assignedTo) === me),
      }));
      this.store.set((state) => ({
        ...state,
        queue: { ...state.queue, [ticketId]: { ...entryFromTicket(ticket, state.queue[ticketId]), unread: 0 } },
      }));
    } catch (error) {
      this.setConversation(ticketId, (current) => ({ ...current, loading: false, error: describeError(error) }));
    }
  }

  private setConversation(ticketId: string, change: (current: Conversation) => Conversation): void {
    this.store.set((state) => {
      const current = state.conversations[ticketId] ?? {
        ticketId,
        loading: false,
        error: null,
        messages: [],
        notices: [],
        following: false,
        joining: false,
        userTyping: null,
      };
      const next = change(current);
      return next === current ? state : { ...state, conversations: { ...state.conversations, [ticketId]: next } };
    });
  }

  // ---- joining, replying, closing ----

  async join(ticketId: string): Promise<void> {
    const conversation = this.store.get().conversations[ticketId];
    const lastMessageId = conversation ? newestMessageId(conversation.messages) : null;
    this.setConversation(ticketId, (current) => ({ ...current, joining: true }));
    const result = await this.connection.emitWithAck<AgentJoinData>("join_chat", {
      ticketId,
      ...(lastMessageId ? { lastMessageId } : {}),
    });
    if (!result.ok) {
      this.setConversation(ticketId, (current) => ({ ...current, joining: false }));
      this.store.patch({ notice: `Could not join the chat: ${result.message}` });
      if (result.code === "CHAT_CLOSED") void this.loadConversation(ticketId);
      return;
    }
    const data = result.data;
    this.setConversation(ticketId, (current) => ({
      ...current,
      joining: false,
      following: true,
      messages: mergeServerMessages(current.messages, data.messages ?? []),
    }));
    this.upsertEntry(ticketId, (entry) => ({
      ...entry,
      status: data.status,
      assignee: data.assignedTo
        ? { id: data.assignedTo, name: personName(data.assignedAgent ?? null, entry.assignee?.name ?? data.assignedTo) }
        : entry.assignee,
    }));
  }

  send(ticketId: string, text: string): void {
    const { me, queue } = this.store.get();
    const entry = queue[ticketId];
    if (entry && !isActiveStatus(entry.status)) return;
    const message = pendingMessage(text, "agent", me.id, me.name);
    this.setConversation(ticketId, (current) => ({ ...current, messages: mergeMessages(current.messages, [message]) }));
    this.typingSignal(ticketId).stop();
    this.outbox.add({ ticketId, clientMessageId: message.clientMessageId!, text });
  }

  retry(ticketId: string, key: string): void {
    const message = this.store.get().conversations[ticketId]?.messages.find((held) => held.key === key);
    if (!message?.clientMessageId || message.status !== "failed") return;
    this.setOwnStatus(ticketId, message.clientMessageId, { status: "sending", failure: null });
    this.outbox.add({ ticketId, clientMessageId: message.clientMessageId, text: message.text });
  }

  dismiss(ticketId: string, key: string): void {
    this.outbox.remove(key);
    this.setConversation(ticketId, (current) => ({ ...current, messages: removeMessage(current.messages, key) }));
  }

  // Resolves with an error text for the dialog, or null when the chat is closed.
  async close(ticketId: string, resolutionSummary: string): Promise<string | null> {
    const summary = resolutionSummary.trim();
    const result = await this.connection.emitWithAck<CloseChatData>("admin_close_chat", {
      ticketId,
      ...(summary ? { resolutionSummary: summary } : {}),
    });
    if (!result.ok) {
      return result.reason === "offline" ? "You are offline. Try again when the connection is back." : result.message;
    }
    const data = result.data;
    this.markClosed(ticketId, data.resolvedAt ?? new Date().toISOString(), personName(data.resolvedBy, this.store.get().me.name), data.resolutionSummary);
    return null;
  }

  noteTyping(ticketId: string): void {
    const entry = this.store.get().queue[ticketId];
    if (entry && isActiveStatus(entry.status)) this.typingSignal(ticketId).keystroke();
  }

  stopTyping(ticketId: string): void {
    this.typingSignals.get(ticketId)?.stop();
  }

  private typingSignal(ticketId: string): TypingSignal {
    let signal = this.typingSignals.get(ticketId);
    if (!signal) {
      signal = new TypingSignal((isTyping) => this.connection.emitVolatile("admin_typing", { ticketId, isTyping }));
      this.typingSignals.set(ticketId, signal);
    }
    return signal;
  }

  private onOutboxReport(report: OutboxReport): void {
    const { ticketId, clientMessageId } = report.item;
    if (report.kind === "failed") {
      this.setOwnStatus(ticketId, clientMessageId, { status: "failed", failure: report.failure });
      return;
    }
    // Replying makes this agent follow the chat (and take it, if nobody had).
    this.setConversation(ticketId, (current) => ({
      ...current,
      following: true,
      messages: confirmSend(current.messages, clientMessageId, report.data),
    }));
    this.upsertEntry(ticketId, (entry) => ({
      ...entry,
      lastMessage: { text: report.item.text, at: report.data.timestamp, sender: "agent" },
      lastActivity: report.data.timestamp,
      waitingSince: null,
    }));
  }

  private setOwnStatus(ticketId: string, clientMessageId: string, change: Pick<ChatMessage, "status" | "failure">): void {
    this.setConversation(ticketId, (current) => {
      const messages = updateOwnMessage(current.messages, clientMessageId, change);
      return messages === current.messages ? current : { ...current, messages };
    });
  }

  private markClosed(ticketId: string, at: string, closedBy: string | null, summary: string | null): void {
    this.typingSignals.get(ticketId)?.reset();
    this.outbox.failTicket(ticketId, CLOSED_FAILURE);
    this.setConversation(ticketId, (current) => ({
      ...current,
      userTyping: null,
      notices: addNotice(current.notices, chatClosedNotice(at, closedBy, summary)),
      messages: failUnsent(current.messages, CLOSED_FAILURE),
    }));
    this.upsertEntry(ticketId, (entry) => ({ ...entry, status: "resolved", waitingSince: null, userTyping: false }));
  }

  // ---- reconnection ----

  private async onConnected(): Promise<void> {
    const { me } = this.store.get();
    if (me.id) this.updateAgent(me.id, { isOnline: true });
    void this.loadQueue(true);
    // Catch up every conversation we hold: followed active chats by re-joining with the
    // newest message we have (the replay arrives as new_message), others over REST.
    const conversations = Object.values(this.store.get().conversations);
    await Promise.all(
      conversations.map(async (conversation) => {
        const entry = this.store.get().queue[conversation.ticketId];
        const active = entry ? isActiveStatus(entry.status) : false;
        if (conversation.following && active) {
          const lastMessageId = newestMessageId(conversation.messages);
          const result = await this.connection.emitWithAck<AgentJoinData>("join_chat", {
            ticketId: conversation.ticketId,
            ...(lastMessageId ? { lastMessageId } : {}),
          });
          if (result.ok) {
            this.setConversation(conversation.ticketId, (current) => ({
              ...current,
              messages: mergeServerMessages(current.messages, result.data.messages ?? []),
            }));
            return;
          }
        }
        await this.catchUpOverRest(conversation.ticketId);
      }),
    );
    this.outbox.setReady(true);
  }

  private async catchUpOverRest(ticketId: string): Promise<void> {
    try {
      for (let page = 0; page < 20; page += 1) {
        const after = newestMessageId(this.store.get().conversations[ticketId]?.messages ?? []);
        if (!after) {
          await this.loadConversation(ticketId);
          return;
        }
        const data = await this.api.get<MessagesPageData>(`/api/chat/${encodeURIComponent(ticketId)}/messages`, { after, limit: 200 });
        this.setConversation(ticketId, (current) => ({ ...current, messages: mergeServerMessages(current.messages, data.messages) }));
        if (!data.hasMore) break;
      }
      // The status (closed while we were away?) and the notices come with the ticket.
      const data = await this.api.get<TicketData>(`/api/chat/${encodeURIComponent(ticketId)}`);
      if (!isActiveStatus(data.ticket.status)) {
        this.setConversation(ticketId, (current) => ({
          ...current,
          notices: noticesFromTicket(data.ticket).reduce(addNotice, current.notices),
        }));
        this.upsertEntry(ticketId, (entry) => ({ ...entry, status: data.ticket.status, waitingSince: null }));
      }
    } catch {
      // Left as it is; the next reconnection tries again.
    }
  }

  // ---- live events ----

  private onNewChatTicket(event: NewChatTicketEvent): void {
    const entry: QueueEntry = {
      id: event.ticketId,
      number: event.ticketNumber,
      status: event.status,
      priority: event.priority,
      category: event.category,
      createdAt: event.createdAt,
      lastActivity: event.createdAt,
      user: { id: event.userId, name: event.userName || "Customer", email: event.userEmail ?? null },
      assignee: null,
      lastMessage: { text: event.message, at: event.createdAt, sender: "user" },
      waitingSince: event.createdAt,
      unread: 1,
      userTyping: false,
    };
    this.store.set((state) =>
      matchesStatusFilter(entry.status, state.filter) && !state.queue[entry.id]
        ? { ...state, queue: { ...state.queue, [entry.id]: entry }, queueTotal: state.queueTotal + 1 }
        : state,
    );
    this.alerts.newChat(
      `New chat from ${entry.user.name}`,
      event.message.length > 140 ? `${event.message.slice(0, 140)}…` : event.message,
      event.ticketId,
      () => this.select(event.ticketId),
    );
  }

  private onUserMessage(event: UserMessageEvent): void {
    const state = this.store.get();
    const unreadIncrement = state.selectedId === event.ticketId && document.visibilityState === "visible" ? 0 : 1;
    if (state.queue[event.ticketId]) {
      this.upsertEntry(event.ticketId, (entry) => ({
        ...entry,
        status: event.status,
        lastActivity: event.timestamp,
        lastMessage: { text: event.message, at: event.timestamp, sender: "user" },
        waitingSince: entry.waitingSince ?? event.timestamp,
        unread: entry.unread + unreadIncrement,
        userTyping: false,
      }));
    } else if (matchesStatusFilter(event.status, state.filter)) {
      void this.addTicket(event.ticketId, unreadIncrement);
    }
    // Every agent gets user messages, followers or not: keep an open conversation whole.
    if (state.conversations[event.ticketId]) {
      const message = fromServer({
        _id: event.messageId,
        sender: event.userId,
        senderName: event.userName,
        senderModel: "DTUser",
        message: event.message,
        isAdminReply: false,
        timestamp: event.timestamp,
        attachments: event.attachments ?? [],
        seq: event.seq,
      });
      this.setConversation(event.ticketId, (current) => ({ ...current, userTyping: null, messages: mergeMessages(current.messages, [message]) }));
    }
  }

  private onNewMessage(event: NewMessageEvent): void {
    const message = fromServer(event);
    if (this.store.get().conversations[event.ticketId]) {
      this.setConversation(event.ticketId, (current) => ({
        ...current,
        userTyping: message.sender === "user" ? null : current.userTyping,
        messages: mergeMessages(current.messages, [message]),
      }));
    }
    if (message.sender === "agent" && message.senderId) this.updateAgent(message.senderId, { name: message.senderName || null });
    this.upsertEntry(event.ticketId, (entry) => ({
      ...entry,
      lastActivity: event.timestamp > entry.lastActivity ? event.timestamp : entry.lastActivity,
      lastMessage: { text: event.message, at: event.timestamp, sender: message.sender },
      waitingSince: message.sender === "agent" ? null : entry.waitingSince ?? event.timestamp,
    }));
  }

  private onChatAssigned(event: ChatAssignedEvent): void {
    if (event.agentName) this.updateAgent(event.assignedTo, { name: event.agentName });
    const me = this.store.get().me.id;
    if (event.assignedTo === me) this.setConversationIfLoaded(event.ticketId, (current) => ({ ...current, following: true }));
    this.upsertEntry(event.ticketId, (entry) => ({
      ...entry,
      status: entry.status === "open" ? "in_progress" : entry.status,
      assignee: { id: event.assignedTo, name: event.agentName || entry.assignee?.name || event.assignedTo },
    }));
    if (!this.store.get().queue[event.ticketId] && matchesStatusFilter("in_progress", this.store.get().filter)) {
      void this.addTicket(event.ticketId, 0);
    }
  }

  private onChatClosed(event: ChatClosedEvent): void {
    if (this.store.get().conversations[event.ticketId]) {
      this.markClosed(event.ticketId, event.closedAt, event.closedBy ?? null, event.resolutionSummary ?? null);
    } else {
      this.upsertEntry(event.ticketId, (entry) => ({ ...entry, status: event.status ?? "resolved", waitingSince: null, userTyping: false }));
    }
  }

  private onAdminStatus(event: AdminStatusEvent): void {
    // On connect the server sends one of these per agent online, so the list starts full.
    this.updateAgent(event.adminId, {
      isOnline: event.isOnline,
      activeChats: event.activeChats,
      ...(event.adminName ? { name: event.adminName } : {}),
    });
  }

  private onAgentJoined(event: AgentJoinedEvent): void {
    if (event.agentName) this.updateAgent(event.agentId, { name: event.agentName });
    const me = this.store.get().me.id;
    this.setConversationIfLoaded(event.ticketId, (current) => ({
      ...current,
      following: current.following || event.agentId === me,
      notices: addNotice(current.notices, agentJoinedNotice(event.agentId, event.agentName || "An agent", event.joinedAt)),
    }));
  }

  private onUserTyping(event: UserTypingEvent): void {
    const name = event.isTyping ? event.userName || "Customer" : null;
    const previous = this.typingTimers.get(event.ticketId);
    if (previous) clearTimeout(previous);
    if (name) {
      this.typingTimers.set(
        event.ticketId,
        setTimeout(() => this.onUserTyping({ ...event, isTyping: false }), REMOTE_TYPING_TIMEOUT_MS),
      );
    } else {
      this.typingTimers.delete(event.ticketId);
    }
    this.setConversationIfLoaded(event.ticketId, (current) => ({ ...current, userTyping: name }));
    this.upsertEntry(event.ticketId, (entry) => (entry.userTyping === (name !== null) ? entry : { ...entry, userTyping: name !== null }));
  }

  private setConversationIfLoaded(ticketId: string, change: (current: Conversation) => Conversation): void {
    if (this.store.get().conversations[ticketId]) this.setConversation(ticketId, change);
  }

  private updateAgent(id: string, change: Partial<Omit<AgentInfo, "id">>): void {
    this.store.set((state) => {
      const current = state.agents[id] ?? { id, name: null, isOnline: null, activeChats: null };
      const next: AgentInfo = {
        ...current,
        ...change,
        name: change.name ?? current.name,
      };
      if (next.name === current.name && next.isOnline === current.isOnline && next.activeChats === current.activeChats && state.agents[id]) {
        return state;
      }
      return { ...state, agents: { ...state.agents, [id]: next } };
    });
  }

  // ---- alerts ----

  async enableAlerts(): Promise<void> {
    const permission = await this.alerts.enable();
    this.store.patch({ alertsEnabled: true, notifications: permission });
  }

  disableAlerts(): void {
    this.alerts.disable();
    this.store.patch({ alertsEnabled: false });
  }

  dismissNotice(): void {
    this.store.patch({ notice: null });
  }
}
