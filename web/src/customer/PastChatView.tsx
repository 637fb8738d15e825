import { categoryLabel, isActiveStatus, statusLabel } from "../shared/constants";
import { formatDateTime } from "../shared/time";
import { MessageList } from "../shared/ui/MessageList";
import type { PastChat } from "./customerChat";

// A chat from the history, read-only.
export function PastChatView({ past }: { past: PastChat }) {
  const { ticket } = past;
  return (
    <div className="sc-chat sc-chat--past" data-testid="past-chat" data-ticket-id={ticket._id}>
      <div className="sc-past-summary">
        <strong>{ticket.ticketNumber}</strong>
        <span>{categoryLabel(ticket.category)}</span>
        <span className={`sc-status sc-status--${ticket.status}`}>{statusLabel(ticket.status)}</span>
        <span className="sc-past-date">Started {formatDateTime(ticket.createdAt)}</span>
      </div>
      <MessageList messages={past.messages} notices={past.notices} ownSender="user" label={`Conversation ${ticket.ticketNumber}`} />
      <p className="sc-readonly-note">
        {isActiveStatus(ticket.status) ? "This conversation is still open." : "This conversation is closed and read-only."}
      </p>
    </div>
  );
}
