import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { replyPreview, type Replying } from "./Quote";

/**
 * Where a message is written, for a contact and a group alike: labelled, Enter sends,
 * Shift+Enter starts a new line (and Enter while an input method is composing does not send).
 * `onSend` resolves `true` once the message is taken; the draft is kept otherwise.
 * `replying`: the message being answered, shown above the box (Esc or Cancel drops it); the
 * box takes the focus when one is chosen.
 */
export function Composer({ id, formId, label, placeholder, onSend, replying = null, onCancelReply }: {
  id: string;
  formId: string;
  label: string;
  placeholder: string;
  onSend: (body: string) => Promise<boolean>;
  replying?: Replying | null;
  onCancelReply?: () => void;
}) {
  const [draft, setDraft] = useState("");
  const [sending, setSending] = useState(false);
  const box = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    if (replying) box.current?.focus();
  }, [replying]);

  async function submit(e?: FormEvent) {
    e?.preventDefault();
    if (draft.trim() === "" || sending) return;
    setSending(true);
    try {
      if (await onSend(draft)) setDraft("");
    } finally {
      setSending(false);
    }
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void submit();
    } else if (e.key === "Escape" && replying && !e.nativeEvent.isComposing) {
      // Only the reply is dropped; the draft stays (and Esc goes no further up).
      e.preventDefault();
      e.stopPropagation();
      onCancelReply?.();
    }
  }

  return (
    <form className="composer-box" id={formId} onSubmit={(e) => void submit(e)}>
      {replying && (
        <div className="replying" id={`${id}-replying`} role="status">
          <span className="quote">
            <span className="quote-author">Replying to {replying.author}</span>
            <span className="quote-body">{replyPreview(replying.body)}</span>
          </span>
          <button type="button" className="link" onClick={() => { onCancelReply?.(); box.current?.focus(); }}
            aria-label={`Cancel the reply to ${replying.author}`}>Cancel</button>
        </div>
      )}
      <div className="row composer">
      <label className="sr-only" htmlFor={id}>{label}</label>
      <textarea id={id} ref={box} rows={2} value={draft} placeholder={placeholder}
        onChange={(e) => setDraft(e.target.value)} onKeyDown={onKeyDown} />
      <button type="submit" disabled={draft.trim() === "" || sending}>Send</button>
      </div>
    </form>
  );
}
