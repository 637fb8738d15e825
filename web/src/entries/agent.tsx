import { createRoot } from "react-dom/client";
import { AgentDesk } from "../agent/agentDesk";
import { AgentApp } from "../agent/AgentApp";
import { isExpired, readClaims, takeTokenFromPage } from "../shared/token";
import { TokenProblem } from "../shared/ui/TokenProblem";
import "../shared/page.css";
import "../shared/ui/chat-ui.css";
import "../agent/agent.css";

// /agent: the agents' dashboard. The token (with an admin role) arrives as /agent#token=JWT.
const token = takeTokenFromPage("agent");
const root = createRoot(document.getElementById("root")!);

if (!token) {
  root.render(<TokenProblem reason="missing" page="agent" />);
} else if (isExpired(readClaims(token))) {
  root.render(<TokenProblem reason="expired" page="agent" />);
} else {
  const desk = new AgentDesk({ serverUrl: "", tokens: { current: () => token } });
  desk.start();
  root.render(<AgentApp desk={desk} />);
}
