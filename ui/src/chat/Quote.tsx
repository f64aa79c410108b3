import type { QuoteView } from "../bindings/QuoteView";

/**
 * What a reply answers, shown above it: the author and the start of their message as this
 * device holds it (the backend never takes quoted words from the reply itself). Clicking it
 * goes to that message; one that is not here (not received, deleted for me) says so.
 */
export function Quote({ quote, onJump }: { quote: QuoteView; onJump: (q: QuoteView) => void }) {
  if (quote.body === null) {
    return (
      <span className="quote missing">
        <span className="quote-author">{quote.author_name}</span>
        <span className="quote-body">
          {quote.differs
            ? "This reply was written to another version of this message than the one on this device"
            : "Original message not available on this device"}
        </span>
      </span>
    );
  }
  return (
    <button type="button" className="quote" onClick={() => onJump(quote)}
      aria-label={`In reply to ${quote.author_name}: ${quote.body}. Go to that message`}>
      <span className="quote-author">{quote.author_name}</span>
      <span className="quote-body">{quote.body}</span>
    </button>
  );
}

/** The message being answered, above the composer, until it is sent or Esc/Cancel drops it. */
export type Replying = { target: { msg_id: string; author_peer_id: string }; author: string; body: string };

/** What the reply bar shows of the message being answered (and a screen reader reads out). */
export function replyPreview(body: string): string {
  // By characters, not UTF-16 units: an emoji is never cut in half.
  const chars = Array.from(body.replace(/\s+/g, " ").trim());
  return chars.length > 120 ? `${chars.slice(0, 120).join("")}…` : chars.join("");
}
