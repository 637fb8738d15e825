// The shapes the supportchat server sends and accepts (docs/protocol.md). Only the
// fields this UI reads are listed; the server may send more.

export type TicketStatus = "open" | "in_progress" | "waiting_for_user" | "resolved" | "closed";
export type Priority = "low" | "medium" | "high" | "urgent";

export interface Attachment {
  fileName: string;
  fileUrl: string;
  fileType?: string;
}

export interface ServerMessage {
  _id: string;
  sender: string;
  senderName?: string;
  senderModel?: string;
  message: string;
  isAdminReply?: boolean;
  timestamp: string;
  attachments?: Attachment[];
  seq: number;
  clientMessageId?: string;
}

export interface Person {
  _id: string;
  fullName?: string | null;
  email?: string | null;
}

export interface Ticket {
  _id: string;
  ticketNumber: string;
  subject?: string;
  status: TicketStatus;
  priority: Priority;
  category: string;
  createdAt: string;
  lastUpdated?: string;
  userId: Person | string | null;
  assignedTo: Person | string | null;
  assignedAt?: string | null;
  resolvedAt?: string | null;
  resolvedBy?: Person | string | null;
  resolutionSummary?: string | null;
  messages?: ServerMessage[];
}

export interface Pagination {
  currentPage: number;
  totalPages: number;
  totalChats: number;
  hasNextPage: boolean;
  hasPrevPage: boolean;
  limit: number;
}

// ---- REST answers (the `data` of the envelope) ----

export interface StartChatData {
  ticketId: string;
  ticketNumber: string;
  status: TicketStatus;
  priority: Priority;
  category: string;
  createdAt: string;
  messages: ServerMessage[];
  isExisting: boolean;
}

export interface HistoryData {
  chats: Ticket[];
  pagination: Pagination;
}

export interface ActiveChatsData {
  activeChats: Ticket[];
  count: number;
}

export interface TicketData {
  ticket: Ticket;
}

export interface MessagesPageData {
  messages: ServerMessage[];
  hasMore: boolean;
}

export interface AdminQueueData {
  chats: Ticket[];
  count: number;
  pagination: Pagination;
}

export interface DemoStatusData {
  enabled: boolean;
}

export interface DemoTokenData {
  token: string;
  userId: string;
  name: string;
  role: "user" | "agent";
}

// ---- Socket.IO acknowledgement payloads ----

export interface MessageSentData {
  messageId: string;
  ticketId: string;
  timestamp: string;
  status: string;
  seq: number;
  clientMessageId?: string;
  duplicate?: boolean;
}

export interface RoomJoinData {
  ticketId: string;
  ticketNumber: string;
  status: TicketStatus;
}

export interface AgentJoinData {
  ticketId: string;
  ticketNumber: string;
  assignedTo: string | null;
  assignedAgent?: Person | null;
  status: TicketStatus;
  userId: string;
  userName?: string;
  userEmail?: string;
  messages: ServerMessage[];
}

export interface CloseChatData {
  ticketId: string;
  ticketNumber: string;
  status: TicketStatus;
  resolvedAt: string | null;
  resolvedBy: Person | string | null;
  resolutionSummary: string | null;
  alreadyClosed: boolean;
}

// ---- Socket.IO server → client events ----

export interface NewMessageEvent extends ServerMessage {
  messageId: string;
  ticketId: string;
  ticketNumber?: string;
}

export interface AgentJoinedEvent {
  ticketId: string;
  ticketNumber?: string;
  agentName?: string;
  agentId: string;
  joinedAt: string;
}

export interface ChatClosedEvent {
  ticketId: string;
  ticketNumber?: string;
  closedBy?: string;
  closedById?: string;
  closedAt: string;
  resolutionSummary?: string | null;
  status?: TicketStatus;
}

export interface AgentTypingEvent {
  ticketId: string;
  agentName?: string;
  agentId?: string;
  isTyping: boolean;
}

export interface UserTypingEvent {
  ticketId: string;
  userName?: string;
  userId?: string;
  isTyping: boolean;
}

export interface NewChatTicketEvent {
  ticketId: string;
  ticketNumber: string;
  subject?: string;
  status: TicketStatus;
  userId: string;
  userName?: string;
  userEmail?: string;
  message: string;
  priority: Priority;
  category: string;
  createdAt: string;
}

export interface UserMessageEvent {
  ticketId: string;
  ticketNumber?: string;
  userId: string;
  userName?: string;
  userEmail?: string;
  messageId: string;
  message: string;
  attachments?: Attachment[];
  timestamp: string;
  seq: number;
  status: TicketStatus;
}

export interface ChatAssignedEvent {
  ticketId: string;
  ticketNumber?: string;
  assignedTo: string;
  agentName?: string;
  assignedAt: string;
}

export interface AdminStatusEvent {
  adminId: string;
  // The agent's name (this server adds it; the API document's payload has none).
  adminName?: string;
  isOnline: boolean;
  activeChats: number;
}

export interface SocketErrorEvent {
  type: string;
  message: string;
  code?: string;
  ticketId?: string | null;
  retryAfter?: number;
  event?: string;
}
