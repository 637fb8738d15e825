import { initials } from "../shared/people";
import type { AgentInfo } from "./agentDesk";

interface OnlineAgentsProps {
  agents: readonly AgentInfo[];
  myId: string | null;
  myLoad: number;
}

// Agents online and how many active chats each has: the server sends an
// `admin_status_update` for every agent online when this page's socket connects, then
// one for each change.
export function OnlineAgents({ agents, myId, myLoad }: OnlineAgentsProps) {
  const online = agents.filter((agent) => agent.isOnline === true || agent.id === myId);
  online.sort((a, b) => (a.id === myId ? -1 : b.id === myId ? 1 : (a.name ?? a.id).localeCompare(b.name ?? b.id)));
  return (
    <section className="ad-agents" data-testid="online-agents" aria-labelledby="ad-agents-title">
      <h2 id="ad-agents-title" className="ad-section-title">
        Agents online <span className="ad-count">{online.length}</span>
      </h2>
      <ul>
        {online.map((agent) => {
          const load = agent.activeChats ?? (agent.id === myId ? myLoad : null);
          const name = agent.id === myId ? `${agent.name ?? "You"} (you)` : agent.name ?? agent.id;
          return (
            <li key={agent.id} className="ad-agent" data-testid="online-agent" data-agent-id={agent.id}>
              <span className="ad-agent-avatar" aria-hidden="true">
                {initials(agent.name ?? agent.id)}
                <span className="ad-agent-dot" />
              </span>
              <span className="ad-agent-name">{name}</span>
              {load !== null && (
                <span className="ad-agent-load" data-testid="agent-load" title="Active chats assigned">
                  {load} {load === 1 ? "chat" : "chats"}
                </span>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
