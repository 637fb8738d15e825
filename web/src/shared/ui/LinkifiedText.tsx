import { splitLinks, safeHttpUrl } from "../links";
import type { Attachment } from "../types";

// Message text as React text nodes (escaped by React), with http(s) URLs as links that
// open in a new tab without giving it a handle on this page.
export function LinkifiedText({ text }: { text: string }) {
  return (
    <>
      {splitLinks(text).map((part, index) =>
        part.kind === "link" ? (
          <a key={index} href={part.href} target="_blank" rel="noopener noreferrer">
            {part.text}
          </a>
        ) : (
          <span key={index}>{part.text}</span>
        ),
      )}
    </>
  );
}

// An attachment's file name links to it only if its URL is http(s); anything else is
// shown as plain text.
export function AttachmentLink({ attachment }: { attachment: Attachment }) {
  const href = safeHttpUrl(attachment.fileUrl);
  const label = attachment.fileName || attachment.fileUrl;
  if (!href) return <span className="sc-attachment sc-attachment--plain">{label}</span>;
  return (
    <a className="sc-attachment" href={href} target="_blank" rel="noopener noreferrer" data-testid="attachment-link">
      {label}
    </a>
  );
}
