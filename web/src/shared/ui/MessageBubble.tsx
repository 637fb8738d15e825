import type { ChatMessage, SenderKind } from "../messages";
import { formatClock, formatDateTime } from "../time";
import { useNow } from "../useNow";
import { initials } from "../people";
import { AttachmentLink, LinkifiedText } from "./LinkifiedText";
import { AlertIcon, CheckIcon, ClockIcon, RetryIcon } from "./icons";

interface MessageBubbleProps {
  message: ChatMessage;
  // Whose messages sit on the right: the customer's in the customer UI, the agents' in
  // the dashboard.
  ownSender: SenderKind;
  // The viewer's id: in the dashboard, other agents' replies sit on the agents' side too
  // and are named; the viewer's own are not.
  myId?: string | null;
  startsGroup: boolean;
  // The time and delivery line shows under the last message of a group (and under any
  // message that is not delivered yet); the others carry the time as a tooltip.
  endsGroup: boolean;
  onRetry?: (key: string) => void;
  onDismiss?: (key: string) => void;
}

function speakerName(message: ChatMessage, own: boolean, ownSender: SenderKind): string {
  if (own && ownSender === "user") return "You";
  if (message.sender === "agent") return message.senderName || "Support";
  if (message.sender === "user") return message.senderName || "Customer";
  return "System";
}

export function MessageBubble({ message, ownSender, myId = null, startsGroup, endsGroup, onRetry, onDismiss }: MessageBubbleProps) {
  const own = message.sender === ownSender;
  const side = message.sender === "system" ? "center" : own ? "own" : "other";
  const name = speakerName(message, own, ownSender);
  const showAvatar = !own && message.sender !== "system";
  const byColleague = own && ownSender === "agent" && myId !== null && message.senderId !== null && message.senderId !== myId;
  const showName = startsGroup && (!own || byColleague);

  return (
    <div
      className={`sc-msg sc-msg--${side} sc-msg--${message.status}${startsGroup ? " sc-msg--first" : ""}`}
      data-testid="message"
      data-status={message.status}
      data-sender={message.sender}
      data-message-id={message.id ?? undefined}
      data-client-message-id={message.clientMessageId ?? undefined}
      data-seq={message.seq ?? undefined}
    >
      {showAvatar && (
        <div className="sc-msg-avatar" aria-hidden="true">
          {startsGroup ? initials(name) : null}
        </div>
      )}
      <div className="sc-msg-body">
        {showName && <div className="sc-msg-name">{name}</div>}
        <div className="sc-bubble" title={formatDateTime(message.timestamp)}>
          {!showName && <span className="sc-visually-hidden">{name}: </span>}
          <span className="sc-bubble-text">
            <LinkifiedText text={message.text} />
          </span>
          {message.attachments.length > 0 && (
            <ul className="sc-attachments" aria-label="Attachments">
              {message.attachments.map((attachment, index) => (
                <li key={index}>
                  <AttachmentLink attachment={attachment} />
                </li>
              ))}
            </ul>
          )}
        </div>
        {(endsGroup || message.status !== "sent") && (
          <div className="sc-msg-meta">
            <time dateTime={message.timestamp} title={formatDateTime(message.timestamp)}>
              {formatClock(message.timestamp)}
            </time>
            {own && <DeliveryLabel message={message} />}
          </div>
        )}
        {message.status === "failed" && message.failure && (
          <FailureNote message={message} onRetry={onRetry} onDismiss={onDismiss} />
        )}
      </div>
    </div>
  );
}

function DeliveryLabel({ message }: { message: ChatMessage }) {
  switch (message.status) {
    case "sending":
      return (
        <span className="sc-delivery sc-delivery--sending">
          <ClockIcon size={12} /> Sending…
        </span>
      );
    case "sent":
      return (
        <span className="sc-delivery sc-delivery--sent">
          <CheckIcon size={12} /> Sent
        </span>
      );
    case "failed":
      return (
        <span className="sc-delivery sc-delivery--failed">
          <AlertIcon size={12} /> Failed
        </span>
      );
  }
}

function FailureNote({
  message,
  onRetry,
  onDismiss,
}: {
  message: ChatMessage;
  onRetry?: (key: string) => void;
  onDismiss?: (key: string) => void;
}) {
  const failure = message.failure!;
  const waitUntil = failure.retryAt ?? 0;
  const now = useNow(1000, waitUntil > Date.now());
  const secondsLeft = Math.ceil((waitUntil - now) / 1000);
  const waiting = secondsLeft > 0;

  return (
    <div className="sc-failure" role="alert">
      <span>{failure.text}</span>
      {!failure.permanent && onRetry && (
        <button
          type="button"
          className="sc-link-button"
          data-testid="retry-button"
          disabled={waiting}
          onClick={() => onRetry(message.key)}
        >
          <RetryIcon size={13} /> {waiting ? `Retry in ${secondsLeft}s` : "Retry"}
        </button>
      )}
      {onDismiss && (
        <button
          type="button"
          className="sc-link-button sc-link-button--muted"
          data-testid="dismiss-button"
          onClick={() => onDismiss(message.key)}
        >
          Remove
        </button>
      )}
    </div>
  );
}
