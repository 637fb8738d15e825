// A live region that is always present (so screen readers announce changes in it) and
// holds the indicator only while someone types.
export function TypingIndicator({ name }: { name: string | null }) {
  return (
    <div className="sc-typing-slot" role="status" aria-live="polite">
      {name && (
        <div className="sc-typing" data-testid="typing-indicator">
          <span className="sc-typing-dots" aria-hidden="true">
            <i />
            <i />
            <i />
          </span>
          <span>{name} is typing…</span>
        </div>
      )}
    </div>
  );
}
