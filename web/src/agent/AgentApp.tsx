import { useEffect, useMemo } from "react";
import { useStore } from "../shared/store";
import { ConnectionBadge } from "../shared/ui/ConnectionBadge";
import { BellIcon, ChatIcon, CloseIcon } from "../shared/ui/icons";
import { isActiveStatus } from "../shared/constants";
import type { AgentDesk } from "./agentDesk";
import { ConversationPane } from "./ConversationPane";
import { OnlineAgents } from "./OnlineAgents";
import { TicketList } from "./TicketList";
import { STATUS_FILTERS, matchesScope, sortEntries, type ScopeFilter, type StatusFilter } from "./queue";

const SCOPES: readonly { value: ScopeFilter; label: string }[] = [
  { value: "all", label: "All" },
  { value: "mine", label: "Mine" },
  { value: "unassigned", label: "Unassigned" },
];

const BASE_TITLE = "Agent dashboard · supportchat";

export function AgentApp({ desk }: { desk: AgentDesk }) {
  const state = useStore(desk.store);
  const connection = useStore(desk.connection.status);
  const myId = state.me.id;

  const allEntries = useMemo(() => sortEntries(Object.values(state.queue)), [state.queue]);
  const entries = useMemo(() => allEntries.filter((entry) => matchesScope(entry, state.scope, myId)), [allEntries, state.scope, myId]);
  const selected = state.selectedId ? state.queue[state.selectedId] : undefined;
  const totalUnread = allEntries.reduce((sum, entry) => sum + entry.unread, 0);
  const myLoad = allEntries.filter((entry) => entry.assignee?.id === myId && isActiveStatus(entry.status)).length;

  // The tab's title counts unread messages, visible from other tabs.
  useEffect(() => {
    document.title = totalUnread > 0 ? `(${totalUnread}) ${BASE_TITLE}` : BASE_TITLE;
  }, [totalUnread]);

  // Escape leaves the conversation on small screens (back to the list).
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape" && !event.defaultPrevented && state.selectedId && window.matchMedia("(max-width: 860px)").matches) {
        const openDialog = document.querySelector("dialog[open]");
        if (!openDialog) desk.select(null);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [desk, state.selectedId]);

  return (
    <div className={`ad${selected ? " ad--conversation" : " ad--list"}`}>
      <aside className="ad-sidebar" aria-label="Chat queue">
        <header className="ad-brand">
          <span className="ad-logo" aria-hidden="true">
            <ChatIcon size={18} />
          </span>
          <div className="ad-brand-text">
            <h1>Support desk</h1>
            <p>{state.me.name}</p>
          </div>
          <ConnectionBadge state={connection.state} />
        </header>

        <div className="ad-toolbar">
          <label className="ad-filter">
            <span>Status</span>
            <select data-testid="status-filter" value={state.filter} onChange={(event) => desk.setFilter(event.target.value as StatusFilter)}>
              {STATUS_FILTERS.map((option) => (
                <option key={option.value} value={option.value}>
                  {option.label}
                </option>
              ))}
            </select>
          </label>
          <AlertsToggle desk={desk} enabled={state.alertsEnabled} notifications={state.notifications} />
        </div>
        <div className="ad-scopes" role="group" aria-label="Show">
          {SCOPES.map((scope) => (
            <button
              key={scope.value}
              type="button"
              className="ad-scope"
              aria-pressed={state.scope === scope.value}
              data-testid={`scope-${scope.value}`}
              onClick={() => desk.setScope(scope.value)}
            >
              {scope.label}
            </button>
          ))}
        </div>

        {connection.problem && (
          <div className={`sc-banner${connection.problemCode ? " sc-banner--error" : ""}`} role="alert" data-testid="connection-problem">
            {connection.problem}
          </div>
        )}
        {state.queueError && (
          <div className="sc-banner sc-banner--error" role="alert">
            Could not load the chats: {state.queueError}{" "}
            <button type="button" className="sc-link-button" onClick={() => void desk.loadQueue()}>
              Try again
            </button>
          </div>
        )}

        <div className="ad-list-scroll">
          {state.queueLoading && entries.length === 0 && <p className="sc-loading">Loading chats…</p>}
          {!state.queueLoading && entries.length === 0 && !state.queueError && (
            <p className="ad-empty-list">{state.filter === "resolved" ? "No resolved chats." : "No chats here. New chats appear as they come in."}</p>
          )}
          <TicketList entries={entries} selectedId={state.selectedId} myId={myId} onSelect={(id) => desk.select(id)} />
          {state.queueTotal > Object.keys(state.queue).length && state.queueLimit < 500 && (
            <button type="button" className="sc-button sc-button--ghost sc-button--block" onClick={() => desk.showMore()}>
              Show more
            </button>
          )}
        </div>

        <OnlineAgents agents={Object.values(state.agents)} myId={myId} myLoad={myLoad} />
      </aside>

      <main className="ad-main">
        {state.notice && (
          <div className="sc-banner sc-banner--error ad-toast" role="alert">
            <span>{state.notice}</span>
            <button type="button" className="sc-icon-button" aria-label="Dismiss" onClick={() => desk.dismissNotice()}>
              <CloseIcon size={16} />
            </button>
          </div>
        )}
        {selected ? (
          <ConversationPane
            key={selected.id}
            desk={desk}
            entry={selected}
            conversation={state.conversations[selected.id]}
            myId={myId}
            connected={connection.state === "connected"}
          />
        ) : (
          <div className="ad-placeholder">
            <ChatIcon size={40} />
            <p>Select a chat to see the conversation.</p>
          </div>
        )}
      </main>
    </div>
  );
}

function AlertsToggle({ desk, enabled, notifications }: { desk: AgentDesk; enabled: boolean; notifications: string }) {
  const detail =
    notifications === "denied"
      ? "Sound on; desktop notifications are blocked in this browser"
      : notifications === "unsupported"
        ? "Sound on; this browser has no desktop notifications"
        : "Sound and desktop notifications for new chats";
  return (
    <button
      type="button"
      className={`ad-alerts${enabled ? " ad-alerts--on" : ""}`}
      data-testid="enable-notifications"
      aria-pressed={enabled}
      title={enabled ? `${detail}. Click to turn off.` : "Play a sound and show a notification when a new chat arrives"}
      onClick={() => (enabled ? desk.disableAlerts() : void desk.enableAlerts())}
    >
      <BellIcon size={16} />
      <span>{enabled ? "Alerts on" : "Enable alerts"}</span>
    </button>
  );
}
