import { useEffect, useId, useLayoutEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { MAX_MESSAGE_LENGTH, codePointLength } from "../constants";
import { SendIcon } from "./icons";

interface ComposerProps {
  onSend: (text: string) => void;
  onTyping?: () => void;
  onStopTyping?: () => void;
  disabled?: boolean;
  placeholder?: string;
  autoFocus?: boolean;
  // Drafts are kept per key (the agent switches between chats and comes back to an
  // unfinished reply).
  draftKey?: string;
}

const drafts = new Map<string, string>();
const SHOW_COUNTER_FROM = MAX_MESSAGE_LENGTH - 500;

// A text box's key handler: Enter sends, Shift+Enter starts a new line; never while an
// input method is composing (Enter then confirms the composed characters).
export function sendOnEnter(send: () => void) {
  return (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey && !event.altKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      send();
    }
  };
}

export function Composer({ onSend, onTyping, onStopTyping, disabled = false, placeholder = "Write a message…", autoFocus = false, draftKey = "default" }: ComposerProps) {
  const [text, setText] = useState(() => drafts.get(draftKey) ?? "");
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const inputId = useId();
  const counterId = useId();

  useEffect(() => {
    setText(drafts.get(draftKey) ?? "");
  }, [draftKey]);

  useEffect(() => {
    if (autoFocus && !disabled) inputRef.current?.focus({ preventScroll: true });
  }, [autoFocus, disabled, draftKey]);

  // Grow with the text up to the CSS max-height, then scroll.
  useLayoutEffect(() => {
    const input = inputRef.current;
    if (!input) return;
    input.style.height = "auto";
    input.style.height = `${input.scrollHeight}px`;
  }, [text]);

  const length = codePointLength(text);
  const tooLong = length > MAX_MESSAGE_LENGTH;
  const blank = text.trim() === "";

  const update = (value: string) => {
    setText(value);
    drafts.set(draftKey, value);
    if (value.trim() === "") onStopTyping?.();
    else onTyping?.();
  };

  const submit = () => {
    if (disabled || blank || tooLong) return;
    onSend(text.trim());
    update("");
    onStopTyping?.();
    inputRef.current?.focus();
  };

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    submit();
  };

  const onKeyDown = sendOnEnter(submit);

  return (
    <form className="sc-composer" onSubmit={onSubmit} data-testid="composer">
      <label htmlFor={inputId} className="sc-visually-hidden">
        Message
      </label>
      <textarea
        ref={inputRef}
        id={inputId}
        className="sc-composer-input"
        data-testid="message-input"
        rows={1}
        value={text}
        placeholder={placeholder}
        disabled={disabled}
        aria-describedby={length >= SHOW_COUNTER_FROM ? counterId : undefined}
        aria-invalid={tooLong || undefined}
        onChange={(event) => update(event.target.value)}
        onKeyDown={onKeyDown}
        onBlur={() => onStopTyping?.()}
      />
      {length >= SHOW_COUNTER_FROM && (
        <span id={counterId} className={`sc-counter${tooLong ? " sc-counter--over" : ""}`}>
          {length}/{MAX_MESSAGE_LENGTH}
        </span>
      )}
      <button
        type="submit"
        className="sc-send"
        data-testid="send-button"
        aria-label="Send message"
        title="Send (Enter)"
        disabled={disabled || blank || tooLong}
      >
        <SendIcon size={18} />
      </button>
    </form>
  );
}
