import { createRoot, type Root } from "react-dom/client";
import { CustomerChat } from "../customer/customerChat";
import { Store } from "../shared/store";
import type { TokenSource } from "../shared/token";
import { WidgetRoot, type WidgetState } from "./WidgetRoot";
import chatUiCss from "../shared/ui/chat-ui.css?inline";
import customerCss from "../customer/customer.css?inline";
import widgetCss from "./widget.css?inline";

// The embeddable widget:
//   <script src="https://support.example.com/widget.js"></script>
//   <script>SupportChat.init({ token: "<JWT from your backend>" })</script>
// It renders into a shadow root, so the host page's CSS and ours never meet.

export interface SupportChatOptions {
  token: string;
  // The supportchat server. Defaults to the origin this script was loaded from.
  serverUrl?: string;
  title?: string;
  accentColor?: string;
  position?: "right" | "left";
  // Open the panel right away.
  open?: boolean;
  // Called when the token has expired; return a fresh one (or null to give up).
  refreshToken?: () => string | null | Promise<string | null>;
}

// Read while this script runs for the first time: later, document.currentScript is
// whatever script runs then (or null).
const scriptOrigin: string = (() => {
  const script = document.currentScript;
  if (script instanceof HTMLScriptElement && script.src) {
    try {
      return new URL(script.src, window.location.href).origin;
    } catch {
      // fall through
    }
  }
  return window.location.origin;
})();

interface Mounted {
  host: HTMLElement;
  root: Root;
  chat: CustomerChat;
  widget: Store<WidgetState>;
  setToken(token: string): void;
}

let mounted: Mounted | null = null;

function adoptStyles(shadow: ShadowRoot, css: string): void {
  // Constructed stylesheets are not subject to a host page's CSP `style-src`, unlike a
  // <style> element; older browsers get the <style> element.
  if ("adoptedStyleSheets" in shadow && typeof CSSStyleSheet === "function" && "replaceSync" in CSSStyleSheet.prototype) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    shadow.adoptedStyleSheets = [sheet];
    return;
  }
  const style = document.createElement("style");
  style.textContent = css;
  shadow.appendChild(style);
}

// White or near-black text, whichever reads better on the accent colour (WCAG relative
// luminance). The colour is resolved by the browser, so any CSS colour works.
function applyAccent(host: HTMLElement, probeParent: ShadowRoot, accent: string | undefined): void {
  if (!accent || !CSS.supports("color", accent)) return;
  host.style.setProperty("--sc-accent", accent);
  const probe = document.createElement("span");
  probe.style.color = accent;
  probe.style.display = "none";
  probeParent.appendChild(probe);
  const channels = getComputedStyle(probe).color.match(/[\d.]+/g)?.slice(0, 3).map(Number) ?? [];
  probe.remove();
  if (channels.length !== 3) return;
  const [r, g, b] = channels.map((value) => {
    const c = value / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  const contrastWithWhite = 1.05 / (luminance + 0.05);
  host.style.setProperty("--sc-on-accent", contrastWithWhite >= 4.5 ? "#ffffff" : "#111827");
}

export function init(options: SupportChatOptions): void {
  if (!options || typeof options.token !== "string" || options.token === "") {
    throw new TypeError("SupportChat.init: a token (the JWT your backend issued) is required");
  }
  destroy();

  let token = options.token;
  const tokens: TokenSource = {
    current: () => token,
    refresh: options.refreshToken
      ? async () => {
          const fresh = await options.refreshToken!();
          if (fresh) token = fresh;
          return fresh ?? null;
        }
      : undefined,
  };
  const serverUrl = (options.serverUrl ?? scriptOrigin).replace(/\/+$/, "");

  // A custom element name: host-page rules written for div, section... never match it.
  const host = document.createElement("supportchat-widget");
  host.style.setProperty("all", "initial", "important");
  const shadow = host.attachShadow({ mode: "open" });
  adoptStyles(shadow, `${chatUiCss}\n${customerCss}\n${widgetCss}`);
  const container = document.createElement("div");
  container.className = "sc-widget-root";
  shadow.appendChild(container);
  document.body.appendChild(host);
  applyAccent(host, shadow, options.accentColor);

  const chat = new CustomerChat({ serverUrl, tokens });
  const widget = new Store<WidgetState>({ open: options.open === true });
  const root = createRoot(container);
  root.render(
    <WidgetRoot
      chat={chat}
      widget={widget}
      title={options.title?.trim() || "Support"}
      position={options.position === "left" ? "left" : "right"}
    />,
  );
  chat.start();

  mounted = {
    host,
    root,
    chat,
    widget,
    setToken(fresh: string) {
      token = fresh;
      if (!chat.connection.connected) chat.connection.start();
    },
  };
}

export function open(): void {
  mounted?.widget.patch({ open: true });
}

export function close(): void {
  mounted?.widget.patch({ open: false });
}

export function toggle(): void {
  if (mounted) mounted.widget.patch({ open: !mounted.widget.get().open });
}

// Hand a new token to a running widget (e.g. after the host product refreshed it).
export function setToken(token: string): void {
  mounted?.setToken(token);
}

export function destroy(): void {
  if (!mounted) return;
  const { root, chat, host } = mounted;
  mounted = null;
  root.unmount();
  chat.dispose();
  host.remove();
}
