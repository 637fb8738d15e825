import { useEffect, useState } from "react";
import { isDemoEnabled } from "../demo";

interface TokenProblemProps {
  reason: "missing" | "expired";
  page: "customer" | "agent";
}

// Shown by /chat and /agent when they have no usable token. Tokens come from the host
// product (a link ending in #token=...); the only way to get one here is the demo mode's
// start page, and only when the server has demo mode on.
export function TokenProblem({ reason, page }: TokenProblemProps) {
  const [demo, setDemo] = useState(false);
  useEffect(() => {
    void isDemoEnabled().then(setDemo);
  }, []);

  const what = page === "agent" ? "the agent dashboard" : "the support chat";
  return (
    <main className="sc-token-problem" data-testid="token-problem" data-reason={reason}>
      <div className="sc-token-card">
        <h1>{reason === "expired" ? "This link has expired" : "Sign-in needed"}</h1>
        <p>
          {reason === "expired"
            ? `Your access to ${what} has run out.`
            : `To open ${what}, follow the link from your account in the product that uses this support service.`}{" "}
          Go back to that product and open {what} again to get a fresh link.
        </p>
        {demo && (
          <p>
            This server runs in demo mode: <a href="/">get a demo link on the start page</a>.
          </p>
        )}
      </div>
    </main>
  );
}
