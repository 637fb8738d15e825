import type { Ticket } from "./types";
import { personName } from "./people";

// Things that happened in a chat that are not messages: an agent joined, the chat was
// closed. They come as events, and are rebuilt from the ticket's fields when a chat is
// loaded, so a reload shows them too.

export interface AgentJoinedNotice {
  kind: "agent_joined";
  key: string;
  at: string;
  agentName: string;
}

export interface ChatClosedNotice {
  kind: "chat_closed";
  key: string;
  at: string;
  closedBy: string | null;
  summary: string | null;
}

export type Notice = AgentJoinedNotice | ChatClosedNotice;

export function agentJoinedNotice(agentId: string, agentName: string, at: string): AgentJoinedNotice {
  return { kind: "agent_joined", key: `joined:${agentId}`, at, agentName };
}

export function chatClosedNotice(at: string, closedBy: string | null, summary: string | null): ChatClosedNotice {
  return { kind: "chat_closed", key: "closed", at, closedBy, summary };
}

export function noticesFromTicket(ticket: Ticket): Notice[] {
  const notices: Notice[] = [];
  const assignee = ticket.assignedTo;
  if (assignee && ticket.assignedAt) {
    const id = typeof assignee === "string" ? assignee : assignee._id;
    notices.push(agentJoinedNotice(id, personName(assignee, "An agent"), ticket.assignedAt));
  }
  if ((ticket.status === "resolved" || ticket.status === "closed") && ticket.resolvedAt) {
    notices.push(
      chatClosedNotice(
        ticket.resolvedAt,
        ticket.resolvedBy ? personName(ticket.resolvedBy, "An agent") : null,
        ticket.resolutionSummary ?? null,
      ),
    );
  }
  return notices;
}

// Adds a notice, replacing one with the same key (the same agent joining again, or a
// closed chat described by both an event and the ticket).
export function addNotice(current: readonly Notice[], notice: Notice): Notice[] {
  const existing = current.find((held) => held.key === notice.key);
  if (existing && existing.at <= notice.at && notice.kind === "agent_joined") return current as Notice[];
  return [...current.filter((held) => held.key !== notice.key), notice];
}
