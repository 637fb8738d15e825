import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import {
  CATEGORIES,
  DEFAULT_CATEGORY,
  DEFAULT_PRIORITY,
  MAX_MESSAGE_LENGTH,
  PRIORITIES,
  categoryLabel,
  codePointLength,
  priorityLabel,
} from "../shared/constants";
import type { Priority } from "../shared/types";
import type { StartDraft } from "./customerChat";
import { sendOnEnter } from "../shared/ui/Composer";
import { SendIcon } from "../shared/ui/icons";

interface StartChatFormProps {
  firstName: string | null;
  error: string | null;
  restored: StartDraft | null;
  onStart: (draft: StartDraft) => void;
  autoFocus: boolean;
}

export function StartChatForm({ firstName, error, restored, onStart, autoFocus }: StartChatFormProps) {
  const [category, setCategory] = useState(restored?.category ?? DEFAULT_CATEGORY);
  const [priority, setPriority] = useState<Priority>(restored?.priority ?? DEFAULT_PRIORITY);
  const [message, setMessage] = useState(restored?.message ?? "");
  const firstFieldRef = useRef<HTMLSelectElement>(null);
  const ids = { category: useId(), priority: useId(), message: useId(), error: useId() };

  useEffect(() => {
    if (restored) {
      setCategory(restored.category);
      setPriority(restored.priority);
      setMessage(restored.message);
    }
  }, [restored]);

  useEffect(() => {
    if (autoFocus) firstFieldRef.current?.focus({ preventScroll: true });
  }, [autoFocus]);

  const tooLong = codePointLength(message) > MAX_MESSAGE_LENGTH;
  const canStart = message.trim() !== "" && !tooLong;

  const submit = () => {
    if (canStart) onStart({ message: message.trim(), category, priority });
  };

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    submit();
  };

  const onKeyDown = sendOnEnter(submit);

  // A category the operator configured that this list does not know (restored after
  // the server refused it) still shows as selected.
  const categories = CATEGORIES.includes(category) ? CATEGORIES : [...CATEGORIES, category];

  return (
    <form className="sc-start" onSubmit={onSubmit} data-testid="chat-start-form" aria-describedby={error ? ids.error : undefined}>
      <div className="sc-start-intro">
        <h2 className="sc-start-title">{firstName ? `Hi ${firstName}!` : "Hi there!"}</h2>
        <p className="sc-start-lead">Tell us what you need and a support agent will join you here.</p>
      </div>

      {error && (
        <p className="sc-form-error" id={ids.error} role="alert">
          {error}
        </p>
      )}

      <div className="sc-field-row">
        <div className="sc-field">
          <label htmlFor={ids.category}>Topic</label>
          <select
            ref={firstFieldRef}
            id={ids.category}
            data-testid="category-select"
            value={category}
            onChange={(event) => setCategory(event.target.value)}
          >
            {categories.map((value) => (
              <option key={value} value={value}>
                {categoryLabel(value)}
              </option>
            ))}
          </select>
        </div>
        <div className="sc-field">
          <label htmlFor={ids.priority}>Priority</label>
          <select
            id={ids.priority}
            data-testid="priority-select"
            value={priority}
            onChange={(event) => setPriority(event.target.value as Priority)}
          >
            {PRIORITIES.map((value) => (
              <option key={value} value={value}>
                {priorityLabel(value)}
              </option>
            ))}
          </select>
        </div>
      </div>

      <div className="sc-field">
        <label htmlFor={ids.message}>How can we help?</label>
        <textarea
          id={ids.message}
          data-testid="message-input"
          rows={4}
          value={message}
          placeholder="Describe your question or problem…"
          aria-invalid={tooLong || undefined}
          onChange={(event) => setMessage(event.target.value)}
          onKeyDown={onKeyDown}
        />
        <span className="sc-field-hint">
          {tooLong ? `Too long: at most ${MAX_MESSAGE_LENGTH} characters.` : "Enter to send, Shift+Enter for a new line."}
        </span>
      </div>

      <button type="submit" className="sc-button sc-button--primary sc-button--block" data-testid="send-button" disabled={!canStart}>
        <SendIcon size={16} /> Start chat
      </button>
    </form>
  );
}
