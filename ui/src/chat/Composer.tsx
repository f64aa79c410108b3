import { useState, type FormEvent, type KeyboardEvent } from "react";

/**
 * Where a message is written, for a contact and a group alike: labelled, Enter sends,
 * Shift+Enter starts a new line (and Enter while an input method is composing does not send).
 * `onSend` resolves `true` once the message is taken; the draft is kept otherwise.
 */
export function Composer({ id, formId, label, placeholder, onSend }: {
  id: string;
  formId: string;
  label: string;
  placeholder: string;
  onSend: (body: string) => Promise<boolean>;
}) {
  const [draft, setDraft] = useState("");
  const [sending, setSending] = useState(false);

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
    }
  }

  return (
    <form className="row composer" id={formId} onSubmit={(e) => void submit(e)}>
      <label className="sr-only" htmlFor={id}>{label}</label>
      <textarea id={id} rows={2} value={draft} placeholder={placeholder}
        onChange={(e) => setDraft(e.target.value)} onKeyDown={onKeyDown} />
      <button type="submit" disabled={draft.trim() === "" || sending}>Send</button>
    </form>
  );
}
