import { useState } from "react";
import { categoryLabel, isActiveStatus, priorityLabel, statusLabel } from "../shared/constants";
import { formatDateTime } from "../shared/time";
import { Composer } from "../shared/ui/Composer";
import { MessageList } from "../shared/ui/MessageList";
import { TypingIndicator } from "../shared/ui/TypingIndicator";
import { BackIcon, CheckIcon } from "../shared/ui/icons";
import type { AgentDesk, Conversation } from "./agentDesk";
import type { QueueEntry } from "./queue";
import { CloseChatDialog } from "./CloseChatDialog";
import { canAutoFocusText } from "../shared/focus";

interface ConversationPaneProps {
  desk: AgentDesk;
  entry: QueueEntry;
  conversation: Conversation | undefined;
  myId: string | null;
  connected: boolean;
}

export function ConversationPane({ desk, entry, conversation, myId, connected }: ConversationPaneProps) {
  const [closing, setClosing] = useState(false);
  const active = isActiveStatus(entry.status);
  const following = conversation?.following ?? false;
  const assignedToMe = entry.assignee?.id === myId;

  const joinLabel = entry.assignee
    ? assignedToMe
      ? "Follow chat"
      : `Join (assigned to ${entry.assignee.name})`
    : "Join chat";

  return (
    <section className="ad-conversation" aria-labelledby="ad-conversation-title" data-testid="conversation" data-ticket-id={entry.id}>
      <header className="ad-conversation-header">
        <button type="button" className="sc-icon-button ad-back" aria-label="Back to chats" data-testid="back-button" onClick={() => desk.select(null)}>
          <BackIcon />
        </button>
        <div className="ad-conversation-who">
          <h2 id="ad-conversation-title">{entry.user.name}</h2>
          <p>
            {entry.user.email && <span>{entry.user.email}</span>}
            <span>{entry.number}</span>
            <span>Started {formatDateTime(entry.createdAt)}</span>
          </p>
        </div>
        <div className="ad-conversation-actions">
          {active && !following && (
            <button
              type="button"
              className="sc-button sc-button--primary"
              data-testid="join-button"
              disabled={!connected || conversation?.joining}
              onClick={() => void desk.join(entry.id)}
            >
              {conversation?.joining ? "Joining…" : joinLabel}
            </button>
          )}
          {active && following && (
            <span className="ad-following">
              <CheckIcon size={14} /> Following
            </span>
          )}
          {active && (
            <button type="button" className="sc-button sc-button--ghost" data-testid="close-button" disabled={!connected} onClick={() => setClosing(true)}>
              Close chat
            </button>
          )}
        </div>
      </header>

      <div className="ad-conversation-meta">
        <span className={`sc-status sc-status--${entry.status}`} data-testid="conversation-status">
          {statusLabel(entry.status)}
        </span>
        <span className={`ad-tag ad-tag--priority-${entry.priority}`}>{priorityLabel(entry.priority)} priority</span>
        <span className="ad-tag">{categoryLabel(entry.category)}</span>
        <span className="ad-meta-assignee">
          {entry.assignee ? <>Assigned to <strong>{assignedToMe ? "you" : entry.assignee.name}</strong></> : "Unassigned"}
        </span>
      </div>

      {active && !following && conversation && !conversation.loading && (
        <p className="ad-follow-hint" role="note">
          You are viewing this chat. Join it to receive its messages live{entry.assignee ? "" : " and take it"}.
        </p>
      )}

      {conversation?.error && (
        <div className="sc-banner sc-banner--error" role="alert">
          Could not load this chat: {conversation.error}{" "}
          <button type="button" className="sc-link-button" onClick={() => void desk.loadConversation(entry.id)}>
            Try again
          </button>
        </div>
      )}

      {conversation?.loading && conversation.messages.length === 0 ? (
        <p className="sc-loading">Loading the conversation…</p>
      ) : (
        <MessageList
          messages={conversation?.messages ?? []}
          notices={conversation?.notices ?? []}
          ownSender="agent"
          myId={myId}
          label={`Conversation with ${entry.user.name}`}
          onRetry={(key) => desk.retry(entry.id, key)}
          onDismiss={(key) => desk.dismiss(entry.id, key)}
        />
      )}

      <TypingIndicator name={active ? conversation?.userTyping ?? null : null} />

      {active ? (
        <Composer
          draftKey={`agent:${entry.id}`}
          placeholder={`Reply to ${entry.user.name}…`}
          autoFocus={canAutoFocusText()}
          onSend={(text) => desk.send(entry.id, text)}
          onTyping={() => desk.noteTyping(entry.id)}
          onStopTyping={() => desk.stopTyping(entry.id)}
        />
      ) : (
        <div className="sc-ended">
          <p>This chat is {statusLabel(entry.status).toLowerCase()}.</p>
        </div>
      )}

      <CloseChatDialog
        open={closing}
        ticketNumber={entry.number}
        onCancel={() => setClosing(false)}
        onConfirm={async (summary) => {
          const failure = await desk.close(entry.id, summary);
          if (!failure) setClosing(false);
          return failure;
        }}
      />
    </section>
  );
}
