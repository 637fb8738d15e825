import type { Notice } from "../notices";
import { formatClock } from "../time";

export function NoticeView({ notice }: { notice: Notice }) {
  if (notice.kind === "agent_joined") {
    return (
      <div className="sc-notice" data-testid="agent-joined-notice">
        <span>
          <strong>{notice.agentName}</strong> joined the chat
        </span>
        <time dateTime={notice.at}>{formatClock(notice.at)}</time>
      </div>
    );
  }
  return (
    <div className="sc-notice sc-notice--closed" data-testid="chat-closed-notice">
      <span>
        Chat closed{notice.closedBy ? <> by <strong>{notice.closedBy}</strong></> : null}
      </span>
      <time dateTime={notice.at}>{formatClock(notice.at)}</time>
      {notice.summary && (
        <p className="sc-notice-summary" data-testid="resolution-summary">
          <span className="sc-notice-summary-label">Resolution:</span> {notice.summary}
        </p>
      )}
    </div>
  );
}
