import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import type { ChatMessage, SenderKind } from "../messages";
import type { Notice } from "../notices";
import { buildTimeline } from "../timeline";
import { MessageBubble } from "./MessageBubble";
import { NoticeView } from "./NoticeView";

interface MessageListProps {
  messages: readonly ChatMessage[];
  notices: readonly Notice[];
  ownSender: SenderKind;
  myId?: string | null;
  label: string;
  onRetry?: (key: string) => void;
  onDismiss?: (key: string) => void;
}

// Closer than this to the bottom counts as "reading the latest": new messages then
// scroll into view; further up, the reader is looking at older messages and a
// "new messages" button appears instead.
const NEAR_BOTTOM_PX = 96;

export function MessageList({ messages, notices, ownSender, myId = null, label, onRetry, onDismiss }: MessageListProps) {
  const items = useMemo(() => buildTimeline(messages, notices), [messages, notices]);
  const logRef = useRef<HTMLDivElement>(null);
  const stickToBottom = useRef(true);
  const [hasUnseen, setHasUnseen] = useState(false);

  const last = items[items.length - 1];
  const lastSignature = last ? `${items.length}:${last.key}` : "empty";
  const lastIsOwnSend = last?.type === "message" && last.message.sender === ownSender && last.message.status === "sending";

  const scrollToBottom = () => {
    const log = logRef.current;
    if (!log) return;
    log.scrollTop = log.scrollHeight;
    stickToBottom.current = true;
    setHasUnseen(false);
  };

  useLayoutEffect(() => {
    if (stickToBottom.current || lastIsOwnSend) scrollToBottom();
    else setHasUnseen(true);
    // Runs for a new last item only, not on every re-render.
  }, [lastSignature]);

  // The log's height changes (typing indicator, composer growing, keyboard on phones):
  // keep the latest message in view if it was.
  useEffect(() => {
    const log = logRef.current;
    if (!log || typeof ResizeObserver === "undefined") return undefined;
    const observer = new ResizeObserver(() => {
      if (stickToBottom.current) log.scrollTop = log.scrollHeight;
    });
    observer.observe(log);
    return () => observer.disconnect();
  }, []);

  const onScroll = () => {
    const log = logRef.current;
    if (!log) return;
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;
    stickToBottom.current = nearBottom;
    if (nearBottom) setHasUnseen(false);
  };

  return (
    <div className="sc-log-frame">
      <div
        ref={logRef}
        className="sc-log"
        role="log"
        aria-live="polite"
        aria-relevant="additions"
        aria-label={label}
        data-testid="message-list"
        tabIndex={0}
        onScroll={onScroll}
      >
        {items.map((item) => {
          switch (item.type) {
            case "day":
              return (
                <div key={item.key} className="sc-day" role="separator" aria-label={item.label}>
                  <span>{item.label}</span>
                </div>
              );
            case "notice":
              return <NoticeView key={item.key} notice={item.notice} />;
            case "message":
              return (
                <MessageBubble
                  key={item.key}
                  message={item.message}
                  ownSender={ownSender}
                  myId={myId}
                  startsGroup={item.startsGroup}
                  endsGroup={item.endsGroup}
                  onRetry={onRetry}
                  onDismiss={item.message.status === "failed" && item.message.failure?.permanent ? onDismiss : undefined}
                />
              );
          }
        })}
      </div>
      {hasUnseen && (
        <button type="button" className="sc-jump" onClick={scrollToBottom}>
          New messages ↓
        </button>
      )}
    </div>
  );
}
