import { isActiveStatus } from "../shared/constants";
import { MessageList } from "../shared/ui/MessageList";
import { TypingIndicator } from "../shared/ui/TypingIndicator";
import { Composer } from "../shared/ui/Composer";
import type { CustomerChat, CustomerState } from "./customerChat";

interface ChatViewProps {
  chat: CustomerChat;
  state: CustomerState;
  autoFocus: boolean;
}

export function ChatView({ chat, state, autoFocus }: ChatViewProps) {
  const open = state.chat!;
  const active = isActiveStatus(open.status);

  return (
    <div className="sc-chat">
      <MessageList
        messages={state.messages}
        notices={state.notices}
        ownSender="user"
        label="Conversation with support"
        onRetry={(key) => chat.retry(key)}
        onDismiss={(key) => chat.dismiss(key)}
      />
      {active && !open.agentName && state.notices.length === 0 && (
        <p className="sc-waiting-hint" role="note">
          Thanks! An agent will be with you shortly. You can keep writing meanwhile.
        </p>
      )}
      <TypingIndicator name={active ? state.agentTyping : null} />
      {active ? (
        <Composer
          draftKey={`customer:${open.id ?? "new"}`}
          disabled={open.id === null}
          placeholder={open.id === null ? "Starting your chat…" : "Write a message…"}
          autoFocus={autoFocus}
          onSend={(text) => chat.send(text)}
          onTyping={() => chat.noteTyping()}
          onStopTyping={() => chat.stopTyping()}
        />
      ) : (
        <div className="sc-ended" data-testid="chat-ended">
          <p>This conversation has ended.</p>
          <button type="button" className="sc-button sc-button--primary" data-testid="new-chat-button" onClick={() => chat.startNewChat()}>
            Start a new chat
          </button>
        </div>
      )}
    </div>
  );
}
