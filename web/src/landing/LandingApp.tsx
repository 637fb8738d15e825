import { useEffect, useState } from "react";
import { fetchDemoToken, isDemoEnabled } from "../shared/demo";
import { describeError } from "../shared/api";
import { ChatIcon } from "../shared/ui/icons";

// The server's front page. In demo mode (a local first run) it hands out throwaway
// tokens for both sides; otherwise it explains how a product embeds the widget.
export function LandingApp() {
  const [demo, setDemo] = useState<boolean | null>(null);
  useEffect(() => {
    void isDemoEnabled().then(setDemo);
  }, []);

  return (
    <div className="lp">
      <header className="lp-header">
        <span className="lp-logo" aria-hidden="true">
          <ChatIcon size={22} />
        </span>
        <span className="lp-brand">supportchat</span>
      </header>
      <main className="lp-main">
        {demo === null && <p className="lp-loading">Loading…</p>}
        {demo === true && <DemoIntro />}
        {demo === false && <EmbedGuide />}
      </main>
    </div>
  );
}

function DemoIntro() {
  const [busy, setBusy] = useState<"user" | "agent" | null>(null);
  const [error, setError] = useState<string | null>(null);

  // The new tab is opened during the click (browsers block pop-ups opened later, after
  // an await) and pointed at the page once the token has arrived.
  const openView = async (role: "user" | "agent") => {
    setError(null);
    setBusy(role);
    const tab = window.open("", "_blank");
    try {
      const { token } = await fetchDemoToken(role);
      const url = `${role === "agent" ? "/agent" : "/chat"}#token=${encodeURIComponent(token)}`;
      if (tab) {
        tab.opener = null;
        tab.location.href = url;
      } else {
        window.location.href = url;
      }
    } catch (failure) {
      tab?.close();
      setError(`Could not get a demo token: ${describeError(failure)}`);
    } finally {
      setBusy(null);
    }
  };

  return (
    <section className="lp-card" aria-labelledby="lp-demo-title">
      <h1 id="lp-demo-title">Try supportchat</h1>
      <p className="lp-lead">
        This server runs in <strong>demo mode</strong>. Open the customer view and the agent view side by side and chat
        with yourself: start a chat as a customer, then pick it up, answer and close it as an agent.
      </p>
      <ol className="lp-steps">
        <li>Open the customer view and start a chat.</li>
        <li>Open the agent view: the chat appears in the queue. Join it and reply.</li>
        <li>Close the chat with a short summary; the customer sees it.</li>
      </ol>
      <div className="lp-actions">
        <button type="button" className="lp-button lp-button--primary" data-testid="demo-customer" disabled={busy !== null} onClick={() => void openView("user")}>
          {busy === "user" ? "Opening…" : "Open the customer view"}
        </button>
        <button type="button" className="lp-button" data-testid="demo-agent" disabled={busy !== null} onClick={() => void openView("agent")}>
          {busy === "agent" ? "Opening…" : "Open the agent view"}
        </button>
      </div>
      {error && (
        <p className="lp-error" role="alert">
          {error}
        </p>
      )}
      <p className="lp-note">Each click creates a new demo person. Demo mode is for trying things out on your own machine only.</p>
    </section>
  );
}

function EmbedGuide() {
  const origin = window.location.origin;
  const snippet = `<script src="${origin}/widget.js"></script>
<script>
  SupportChat.init({
    token: "<JWT issued by your backend>",
    title: "Support",          // optional
    accentColor: "#4338ca",    // optional
    position: "right",         // optional: "right" or "left"
  });
</script>`;

  return (
    <section className="lp-card" aria-labelledby="lp-embed-title">
      <h1 id="lp-embed-title">supportchat</h1>
      <p className="lp-lead">A live support chat server. Customers chat from your product; agents answer from the dashboard.</p>

      <h2>Add the chat to your product</h2>
      <p>Put the widget on your pages and start it with the signed-in person's token:</p>
      <pre className="lp-code" data-testid="embed-snippet">
        <code>{snippet}</code>
      </pre>
      <p>
        Then <code>SupportChat.open()</code>, <code>SupportChat.close()</code> and <code>SupportChat.destroy()</code>{" "}
        control it from your code.
      </p>

      <h2>Tokens</h2>
      <p>
        Tokens are JSON Web Tokens that <strong>your product's backend</strong> issues with the secret or key this server
        is configured with. This page cannot give you one. Agents are people whose token carries an admin role; link them
        to <code>{origin}/agent#token=…</code>. A full-page customer chat is at <code>{origin}/chat#token=…</code>.
      </p>
      <p className="lp-note">
        The widget on another site needs that site's origin in the server's <code>SUPPORTCHAT_CORS_ORIGINS</code>.
      </p>
    </section>
  );
}
