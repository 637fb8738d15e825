import { useEffect, useId, useRef, type KeyboardEvent } from "react";
import { useStore, type Store } from "../shared/store";
import { ChatIcon, CloseIcon } from "../shared/ui/icons";
import { CustomerApp } from "../customer/CustomerApp";
import { canAutoFocusText } from "../shared/focus";
import type { CustomerChat } from "../customer/customerChat";

export interface WidgetState {
  open: boolean;
}

interface WidgetRootProps {
  chat: CustomerChat;
  widget: Store<WidgetState>;
  title: string;
  position: "right" | "left";
}

// The launcher button and the chat panel. The panel stays mounted while closed
// (`hidden`), so a half-written message and the scroll position survive closing it.
export function WidgetRoot({ chat, widget, title, position }: WidgetRootProps) {
  const { open } = useStore(widget);
  const { unseen } = useStore(chat.store);
  const launcherRef = useRef<HTMLButtonElement>(null);
  const panelRef = useRef<HTMLElement>(null);
  const wasOpen = useRef(open);
  const panelId = useId();

  useEffect(() => {
    chat.setVisible(open);
    // Closing returns focus to the launcher, so keyboard users are not lost.
    if (wasOpen.current && !open) launcherRef.current?.focus({ preventScroll: true });
    // On touch screens no field takes focus by itself (no uninvited keyboard), and the
    // launcher is hidden under the full-screen panel: focus the panel instead.
    if (!wasOpen.current && open && !canAutoFocusText()) panelRef.current?.focus({ preventScroll: true });
    wasOpen.current = open;
  }, [chat, open]);

  const close = () => widget.patch({ open: false });

  const onPanelKeyDown = (event: KeyboardEvent<HTMLElement>) => {
    if (event.key === "Escape" && !event.defaultPrevented) {
      event.stopPropagation();
      close();
    }
  };

  return (
    <div className={`scw scw--${position}${open ? " scw--open" : ""}`}>
      <section
        id={panelId}
        ref={panelRef}
        tabIndex={-1}
        className="scw-panel"
        data-testid="widget-panel"
        role="dialog"
        aria-modal="false"
        aria-label={title}
        hidden={!open}
        onKeyDown={onPanelKeyDown}
      >
        <CustomerApp chat={chat} title={title} variant="widget" onClose={close} shown={open} />
      </section>
      <button
        ref={launcherRef}
        type="button"
        className="scw-launcher"
        data-testid="widget-launcher"
        aria-expanded={open}
        aria-controls={panelId}
        aria-label={open ? "Close support chat" : unseen > 0 ? `Open support chat, ${unseen} new ${unseen === 1 ? "message" : "messages"}` : "Open support chat"}
        onClick={() => widget.patch({ open: !open })}
      >
        {open ? <CloseIcon size={24} /> : <ChatIcon size={26} />}
        {!open && unseen > 0 && (
          <span className="scw-badge" data-testid="widget-unseen" aria-hidden="true">
            {unseen > 9 ? "9+" : unseen}
          </span>
        )}
      </button>
    </div>
  );
}
