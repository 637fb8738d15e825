import type { Attachment, MessageSentData, ServerMessage } from "./types";

// The client's copy of one conversation: messages from the server and our own sends
// that are not confirmed yet, kept de-duplicated and in `seq` order (protocol.md §6).

export type DeliveryStatus = "sending" | "sent" | "failed";
export type SenderKind = "user" | "agent" | "system";

export interface SendFailure {
  text: string;
  code: string | null;
  // A retry is pointless (the chat is closed, the text is invalid): no Retry button.
  permanent: boolean;
  // Epoch milliseconds before which a retry would be refused again (rate limit).
  retryAt: number | null;
}

export interface ChatMessage {
  // Stable React key: our clientMessageId for our own sends, else the server id. It does
  // not change when the server confirms a send, so the bubble is not re-mounted.
  key: string;
  id: string | null;
  clientMessageId: string | null;
  seq: number | null;
  text: string;
  sender: SenderKind;
  senderId: string | null;
  senderName: string;
  timestamp: string;
  attachments: Attachment[];
  status: DeliveryStatus;
  failure: SendFailure | null;
}

export function senderKindOf(message: Pick<ServerMessage, "senderModel" | "isAdminReply">): SenderKind {
  if (message.senderModel === "Admin" || message.isAdminReply === true) return "agent";
  if (message.senderModel === "DTUser" || message.senderModel === undefined || message.isAdminReply === false) {
    return "user";
  }
  return "system";
}

export function fromServer(message: ServerMessage): ChatMessage {
  return {
    key: message.clientMessageId ?? message._id,
    id: message._id,
    clientMessageId: message.clientMessageId ?? null,
    seq: message.seq,
    text: message.message,
    sender: senderKindOf(message),
    senderId: message.sender,
    senderName: message.senderName ?? "",
    timestamp: message.timestamp,
    attachments: message.attachments ?? [],
    status: "sent",
    failure: null,
  };
}

export function newClientMessageId(): string {
  if (typeof crypto !== "undefined" && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // randomUUID needs a secure context (https or localhost); fall back to random bytes.
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

export function pendingMessage(
  text: string,
  sender: SenderKind,
  senderId: string | null,
  senderName: string,
  clientMessageId = newClientMessageId(),
): ChatMessage {
  return {
    key: clientMessageId,
    id: null,
    clientMessageId,
    seq: null,
    text,
    sender,
    senderId,
    senderName,
    timestamp: new Date().toISOString(),
    attachments: [],
    status: "sending",
    failure: null,
  };
}

function sameMessage(a: ChatMessage, b: ChatMessage): boolean {
  if (a.id !== null && a.id === b.id) return true;
  return a.clientMessageId !== null && a.clientMessageId === b.clientMessageId;
}

// Confirmed messages by `seq`; unconfirmed ones after them, in the order they were
// written (Array.prototype.sort is stable).
function bySeq(a: ChatMessage, b: ChatMessage): number {
  if (a.seq !== null && b.seq !== null) return a.seq - b.seq;
  if (a.seq !== null) return -1;
  if (b.seq !== null) return 1;
  return 0;
}

// Adds or updates messages. A message already held (same `_id`, or same clientMessageId
// as one of our sends) is replaced in place, so a replay after a reconnect, another tab's
// copy or a late event never shows a message twice.
export function mergeMessages(current: readonly ChatMessage[], incoming: readonly ChatMessage[]): ChatMessage[] {
  if (incoming.length === 0) return current as ChatMessage[];
  const result = [...current];
  for (const message of incoming) {
    const index = result.findIndex((held) => sameMessage(held, message));
    if (index === -1) {
      result.push(message);
      continue;
    }
    const held = result[index]!;
    result[index] = {
      ...message,
      key: held.key,
      clientMessageId: message.clientMessageId ?? held.clientMessageId,
      // An own message keeps the name we gave it until the server's copy names it.
      senderName: message.senderName || held.senderName,
    };
    // A message confirmed through one path (ack) and also known through another
    // (replay) must not stay twice: drop any further copy.
    for (let other = result.length - 1; other > index; other -= 1) {
      if (sameMessage(result[other]!, result[index]!)) result.splice(other, 1);
    }
  }
  return result.sort(bySeq);
}

export function mergeServerMessages(current: readonly ChatMessage[], incoming: readonly ServerMessage[]): ChatMessage[] {
  return mergeMessages(current, incoming.map(fromServer));
}

export function confirmSend(current: readonly ChatMessage[], clientMessageId: string, ack: MessageSentData): ChatMessage[] {
  const held = current.find((message) => message.clientMessageId === clientMessageId);
  if (!held) return current as ChatMessage[];
  return mergeMessages(current, [
    {
      ...held,
      id: ack.messageId,
      seq: ack.seq,
      timestamp: ack.timestamp ?? held.timestamp,
      status: "sent",
      failure: null,
    },
  ]);
}

export function updateOwnMessage(
  current: readonly ChatMessage[],
  clientMessageId: string,
  change: Partial<Pick<ChatMessage, "status" | "failure">>,
): ChatMessage[] {
  let changed = false;
  const result = current.map((message) => {
    if (message.clientMessageId !== clientMessageId || message.status === "sent") return message;
    changed = true;
    return { ...message, ...change };
  });
  return changed ? result : (current as ChatMessage[]);
}

// What a send still on its way gets once its chat is closed: the server refuses it, so
// it is shown failed at once, without a Retry.
export const CLOSED_FAILURE: SendFailure = {
  text: "Not delivered: this chat was closed.",
  code: "CHAT_CLOSED",
  permanent: true,
  retryAt: null,
};

export function failUnsent(current: readonly ChatMessage[], failure: SendFailure): ChatMessage[] {
  return current.map((message) => (message.status === "sending" ? { ...message, status: "failed", failure } : message));
}

export function removeMessage(current: readonly ChatMessage[], key: string): ChatMessage[] {
  return current.filter((message) => message.key !== key);
}

// The `_id` of the newest confirmed message: what a re-join passes as `lastMessageId`.
export function newestMessageId(messages: readonly ChatMessage[]): string | null {
  let newest: ChatMessage | null = null;
  for (const message of messages) {
    if (message.id !== null && message.seq !== null && (newest === null || message.seq > (newest.seq ?? 0))) {
      newest = message;
    }
  }
  return newest?.id ?? null;
}
