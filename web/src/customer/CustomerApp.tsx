import { useStore } from "../shared/store";
import { ConnectionBadge } from "../shared/ui/ConnectionBadge";
import { BackIcon, ChatIcon, CloseIcon, HistoryIcon } from "../shared/ui/icons";
import { initials } from "../shared/people";
import { categoryLabel } from "../shared/constants";
import type { CustomerChat } from "./customerChat";
import { canAutoFocusText } from "../shared/focus";
import { StartChatForm } from "./StartChatForm";
import { ChatView } from "./ChatView";
import { HistoryView } from "./HistoryView";
import { PastChatView } from "./PastChatView";

interface CustomerAppProps {
  chat: CustomerChat;
  title: string;
  variant: "page" | "widget";
  // Widget only: closes the panel.
  onClose?: () => void;
  // Widget only: whether the panel is showing (fields take focus when it opens).
  shown?: boolean;
}

// The customer's chat: header, then the start form, the live chat, the history or a
// past chat. Rendered full-page at /chat and inside the widget's panel.
export function CustomerApp({ chat, title, variant, onClose, shown = true }: CustomerAppProps) {
  const state = useStore(chat.store);
  const connection = useStore(chat.connection.status);
  const open = state.chat;
  // Inside a host page the widget must not add a second "main" landmark.
  const Body = variant === "page" ? "main" : "div";
  const firstName = state.me.name && state.me.name !== "You" ? state.me.name.split(/\s+/)[0] ?? null : null;

  const subtitle = open?.agentName
    ? `You're chatting with ${open.agentName}`
    : open?.number
      ? `${open.number} · ${categoryLabel(open.category)}`
      : "We usually reply within a few minutes";

  const back =
    state.view === "history"
      ? { label: "Back to the chat", action: () => chat.showChat() }
      : state.view === "past"
        ? { label: "Back to your conversations", action: () => chat.showHistory() }
        : null;

  return (
    <div className={`sc-customer sc-customer--${variant}`}>
      <header className="sc-header">
        {back ? (
          <button type="button" className="sc-icon-button sc-icon-button--on-accent" aria-label={back.label} title={back.label} data-testid="back-button" onClick={back.action}>
            <BackIcon />
          </button>
        ) : (
          <div className="sc-header-avatar" aria-hidden="true">
            {open?.agentName ? initials(open.agentName) : <ChatIcon size={20} />}
          </div>
        )}
        <div className="sc-header-text">
          {variant === "page" ? <h1 className="sc-header-title">{title}</h1> : <h2 className="sc-header-title">{title}</h2>}
          <p className="sc-header-subtitle">{subtitle}</p>
        </div>
        <ConnectionBadge state={connection.state} compact={variant === "widget"} />
        {state.view === "chat" && state.phase === "ready" && (
          <button
            type="button"
            className="sc-icon-button sc-icon-button--on-accent"
            aria-label="Past conversations"
            title="Past conversations"
            data-testid="history-button"
            onClick={() => chat.showHistory()}
          >
            <HistoryIcon />
          </button>
        )}
        {onClose && (
          <button
            type="button"
            className="sc-icon-button sc-icon-button--on-accent"
            aria-label="Close chat window"
            title="Close (Esc)"
            data-testid="widget-close"
            onClick={onClose}
          >
            <CloseIcon />
          </button>
        )}
      </header>

      {connection.problem && (
        <div className={`sc-banner${connection.problemCode ? " sc-banner--error" : ""}`} role="alert" data-testid="connection-problem">
          {connection.problem}
        </div>
      )}

      <Body className="sc-customer-body">
        {state.phase === "loading" && <p className="sc-loading">Loading your conversation…</p>}
        {state.phase === "failed" && (
          <div className="sc-load-failed" role="alert">
            <p>We could not load your conversation: {state.loadError}</p>
            {state.loadRetryable && (
              <button type="button" className="sc-button sc-button--primary" onClick={() => void chat.loadOpenChat()}>
                Try again
              </button>
            )}
          </div>
        )}
        {state.phase === "ready" && state.view === "history" && <HistoryView chat={chat} state={state} />}
        {state.phase === "ready" && state.view === "past" && state.past && <PastChatView past={state.past} />}
        {state.phase === "ready" && state.view === "chat" &&
          (open ? (
            <ChatView chat={chat} state={state} autoFocus={shown && canAutoFocusText()} />
          ) : (
            <StartChatForm
              firstName={firstName}
              error={state.startError}
              restored={state.startDraft}
              autoFocus={shown && variant === "widget" && canAutoFocusText()}
              onStart={(draft) => chat.startChat(draft)}
            />
          ))}
      </Body>
    </div>
  );
}
