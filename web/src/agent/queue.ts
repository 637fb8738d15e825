import { isActiveStatus } from "../shared/constants";
import { senderKindOf, type SenderKind } from "../shared/messages";
import { personEmail, personId, personName } from "../shared/people";
import type { Priority, ServerMessage, Ticket, TicketStatus } from "../shared/types";

// The dashboard's list of chats: one entry per ticket, built from REST tickets and kept
// current by the queue-wide events every agent socket receives (protocol.md §5.1).

export type StatusFilter = "active" | "open" | "in_progress" | "waiting_for_user" | "resolved";
export type ScopeFilter = "all" | "mine" | "unassigned";

export const STATUS_FILTERS: readonly { value: StatusFilter; label: string }[] = [
  { value: "active", label: "All active" },
  { value: "open", label: "Open (new)" },
  { value: "in_progress", label: "In progress" },
  { value: "waiting_for_user", label: "Waiting for user" },
  { value: "resolved", label: "Resolved" },
];

export interface QueueEntry {
  id: string;
  number: string;
  status: TicketStatus;
  priority: Priority;
  category: string;
  createdAt: string;
  lastActivity: string;
  user: { id: string | null; name: string; email: string | null };
  assignee: { id: string; name: string } | null;
  lastMessage: { text: string; at: string; sender: SenderKind } | null;
  // Since when the customer has been waiting for an answer: their oldest message after
  // the last agent reply (or the chat's start). Null when an agent spoke last.
  waitingSince: string | null;
  unread: number;
  userTyping: boolean;
}

export function matchesStatusFilter(status: TicketStatus, filter: StatusFilter): boolean {
  if (filter === "active") return isActiveStatus(status);
  if (filter === "resolved") return status === "resolved" || status === "closed";
  return status === filter;
}

export function matchesScope(entry: QueueEntry, scope: ScopeFilter, myId: string | null): boolean {
  if (scope === "mine") return entry.assignee !== null && entry.assignee.id === myId;
  if (scope === "unassigned") return entry.assignee === null;
  return true;
}

function waitingSinceOf(messages: readonly ServerMessage[], ticket: Ticket): string | null {
  if (!isActiveStatus(ticket.status)) return null;
  let since: string | null = null;
  for (let index = messages.length - 1; index >= 0; index -= 1) {
    const message = messages[index]!;
    if (senderKindOf(message) !== "user") break;
    since = message.timestamp;
  }
  if (messages.length === 0) return ticket.createdAt;
  return since;
}

export function entryFromTicket(ticket: Ticket, previous?: QueueEntry): QueueEntry {
  const messages = ticket.messages ?? [];
  const last = messages[messages.length - 1];
  const assigneeId = personId(ticket.assignedTo);
  return {
    id: ticket._id,
    number: ticket.ticketNumber,
    status: ticket.status,
    priority: ticket.priority,
    category: ticket.category,
    createdAt: ticket.createdAt,
    lastActivity: ticket.lastUpdated ?? last?.timestamp ?? ticket.createdAt,
    user: {
      id: personId(ticket.userId),
      name: personName(ticket.userId, previous?.user.name ?? "Customer"),
      email: personEmail(ticket.userId),
    },
    assignee: assigneeId ? { id: assigneeId, name: personName(ticket.assignedTo, previous?.assignee?.name ?? assigneeId) } : null,
    lastMessage: last ? { text: last.message, at: last.timestamp, sender: senderKindOf(last) } : previous?.lastMessage ?? null,
    waitingSince: waitingSinceOf(messages, ticket),
    unread: previous?.unread ?? 0,
    userTyping: previous?.userTyping ?? false,
  };
}

const PRIORITY_RANK: Record<Priority, number> = { urgent: 0, high: 1, medium: 2, low: 3 };

// Most recent activity first, as the server lists them.
export function sortEntries(entries: readonly QueueEntry[]): QueueEntry[] {
  return [...entries].sort(
    (a, b) => b.lastActivity.localeCompare(a.lastActivity) || PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority],
  );
}
