import type { ConnectionState } from "../connection";

const LABELS: Record<ConnectionState, string> = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

export function ConnectionBadge({ state, compact = false }: { state: ConnectionState; compact?: boolean }) {
  return (
    <span
      className={`sc-connection sc-connection--${state}${compact ? " sc-connection--compact" : ""}`}
      data-testid="connection-state"
      data-state={state}
      role="status"
      aria-live="polite"
      title={LABELS[state]}
    >
      <span className="sc-connection-dot" aria-hidden="true" />
      <span className={compact ? "sc-visually-hidden" : "sc-connection-label"}>{LABELS[state]}</span>
    </span>
  );
}
