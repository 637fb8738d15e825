import { categoryLabel, isActiveStatus, statusLabel } from "../shared/constants";
import { formatShortDate } from "../shared/time";
import type { CustomerChat, CustomerState } from "./customerChat";

export function HistoryView({ chat, state }: { chat: CustomerChat; state: CustomerState }) {
  const { history } = state;
  return (
    <section className="sc-history" aria-labelledby="sc-history-title">
      <h2 id="sc-history-title" className="sc-section-title">
        Your conversations
      </h2>
      {history.error && (
        <p className="sc-form-error" role="alert">
          {history.error}
        </p>
      )}
      {history.items.length === 0 && !history.loading && !history.error && (
        <p className="sc-empty">No conversations yet.</p>
      )}
      <ul className="sc-history-list" data-testid="history-list">
        {history.items.map((ticket) => {
          const last = ticket.messages?.[ticket.messages.length - 1];
          const active = isActiveStatus(ticket.status);
          return (
            <li key={ticket._id}>
              <button
                type="button"
                className="sc-history-item"
                data-testid="history-item"
                data-ticket-id={ticket._id}
                data-status={ticket.status}
                onClick={() => chat.openPastChat(ticket._id)}
              >
                <span className="sc-history-top">
                  <span className="sc-history-number">{ticket.ticketNumber}</span>
                  <span className={`sc-status sc-status--${ticket.status}`}>{active ? "Open" : statusLabel(ticket.status)}</span>
                  <span className="sc-history-date">{formatShortDate(ticket.lastUpdated ?? ticket.createdAt)}</span>
                </span>
                <span className="sc-history-category">{categoryLabel(ticket.category)}</span>
                {last && <span className="sc-history-preview">{last.message}</span>}
              </button>
            </li>
          );
        })}
      </ul>
      {history.loading && <p className="sc-loading-line">Loading…</p>}
      {history.hasMore && !history.loading && (
        <button type="button" className="sc-button sc-button--ghost sc-button--block" data-testid="history-more" onClick={() => chat.loadMoreHistory()}>
          Show older conversations
        </button>
      )}
    </section>
  );
}
