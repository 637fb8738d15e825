import { useId, useState, type FormEvent } from "react";
import { Dialog } from "../shared/ui/Dialog";

interface CloseChatDialogProps {
  open: boolean;
  ticketNumber: string;
  onCancel: () => void;
  // Resolves with an error text, or null once the chat is closed.
  onConfirm: (summary: string) => Promise<string | null>;
}

export function CloseChatDialog({ open, ticketNumber, onCancel, onConfirm }: CloseChatDialogProps) {
  const [summary, setSummary] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const inputId = useId();
  const hintId = useId();

  const cancel = () => {
    if (busy) return;
    setError(null);
    onCancel();
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const failure = await onConfirm(summary);
    setBusy(false);
    if (failure) {
      setError(failure);
      return;
    }
    setSummary("");
  };

  return (
    <Dialog open={open} title={`Close chat ${ticketNumber}`} onClose={cancel} testId="close-dialog">
      <form onSubmit={(event) => void submit(event)} className="ad-close-form">
        <label htmlFor={inputId}>Resolution summary</label>
        <textarea
          id={inputId}
          data-testid="resolution-input"
          rows={4}
          maxLength={5000}
          value={summary}
          autoFocus
          aria-describedby={hintId}
          placeholder="What was the problem and how was it solved?"
          onChange={(event) => setSummary(event.target.value)}
        />
        <p id={hintId} className="ad-hint">
          The customer sees this summary. Left empty, it reads “Chat session completed successfully”.
        </p>
        {error && (
          <p className="sc-form-error" role="alert">
            {error}
          </p>
        )}
        <div className="ad-dialog-actions">
          <button type="button" className="sc-button sc-button--ghost" onClick={cancel} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="sc-button sc-button--danger" data-testid="confirm-close" disabled={busy}>
            {busy ? "Closing…" : "Close chat"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
