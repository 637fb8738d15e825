import { categoryLabel, isActiveStatus, priorityLabel, statusLabel } from "../shared/constants";
import { elapsedSince, formatDuration, formatShortDate } from "../shared/time";
import { useNow } from "../shared/useNow";
import type { QueueEntry } from "./queue";

interface TicketListProps {
  entries: readonly QueueEntry[];
  selectedId: string | null;
  myId: string | null;
  onSelect: (ticketId: string) => void;
}

export function TicketList({ entries, selectedId, myId, onSelect }: TicketListProps) {
  // One clock for the whole list: every waiting time ticks together.
  const now = useNow(1000, entries.some((entry) => entry.waitingSince !== null));
  return (
    <ul className="ad-tickets" data-testid="ticket-list" aria-label="Chats">
      {entries.map((entry) => (
        <li key={entry.id}>
          <TicketRow entry={entry} now={now} selected={entry.id === selectedId} mine={entry.assignee?.id === myId} onSelect={onSelect} />
        </li>
      ))}
    </ul>
  );
}

interface TicketRowProps {
  entry: QueueEntry;
  now: number;
  selected: boolean;
  mine: boolean;
  onSelect: (ticketId: string) => void;
}

function TicketRow({ entry, now, selected, mine, onSelect }: TicketRowProps) {
  const active = isActiveStatus(entry.status);
  const waiting = entry.waitingSince ? formatDuration(elapsedSince(entry.waitingSince, now)) : null;
  const preview = entry.userTyping
    ? "typing…"
    : entry.lastMessage
      ? `${entry.lastMessage.sender === "agent" ? "Agent: " : ""}${entry.lastMessage.text}`
      : "";

  return (
    <button
      type="button"
      className={`ad-ticket${selected ? " ad-ticket--selected" : ""}${entry.unread > 0 ? " ad-ticket--unread" : ""}`}
      data-testid="ticket-row"
      data-ticket-id={entry.id}
      data-status={entry.status}
      data-priority={entry.priority}
      aria-current={selected ? "true" : undefined}
      onClick={() => onSelect(entry.id)}
    >
      <span className="ad-ticket-line">
        <span className={`ad-priority-dot ad-priority-dot--${entry.priority}`} aria-hidden="true" />
        <span className="ad-ticket-name">{entry.user.name}</span>
        {entry.unread > 0 && (
          <>
            <span className="sc-visually-hidden">Unread messages:</span>
            <span className="ad-unread" data-testid="unread-count">
              {entry.unread}
            </span>
          </>
        )}
        {waiting ? (
          <span className="ad-waiting" data-testid="waiting-time" title="Waiting for an answer">
            <span className="sc-visually-hidden">waiting </span>
            {waiting}
          </span>
        ) : (
          <span className="ad-ticket-time">{formatShortDate(entry.lastActivity)}</span>
        )}
      </span>
      <span className={`ad-ticket-preview${entry.userTyping ? " ad-ticket-preview--typing" : ""}`}>{preview}</span>
      <span className="ad-ticket-tags">
        <span className={`ad-tag ad-tag--priority-${entry.priority}`}>{priorityLabel(entry.priority)}</span>
        <span className="ad-tag">{categoryLabel(entry.category)}</span>
        {!active && <span className={`sc-status sc-status--${entry.status}`}>{statusLabel(entry.status)}</span>}
        <span className={`ad-assignee${entry.assignee ? "" : " ad-assignee--none"}`} data-testid="ticket-assignee">
          {entry.assignee ? (mine ? "You" : entry.assignee.name) : "Unassigned"}
        </span>
      </span>
    </button>
  );
}
