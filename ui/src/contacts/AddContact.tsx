import { useState, type FormEvent } from "react";
import { api, asUiError } from "../lib/api";
import type { ContactView } from "../bindings/ContactView";
import type { UiError } from "../bindings/UiError";

export function AddContact({ onAdded }: { onAdded: (c: ContactView) => void }) {
  const [text, setText] = useState("");
  const [error, setError] = useState<UiError | null>(null);
  const [busy, setBusy] = useState(false);

  async function add(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const contact = await api.addContact(text);
      setText("");
      onAdded(contact);
    } catch (err) {
      setError(asUiError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card" onSubmit={add} id="add-contact-form">
      <label htmlFor="add-contact">
        <h2>Add a contact</h2>
      </label>
      <textarea id="add-contact" rows={3} value={text} spellCheck={false}
        placeholder="Paste their kiyeovo1… card" onChange={(e) => setText(e.target.value)} />
      <div className="row end">
        <button type="submit" disabled={busy || text.trim() === ""}>{busy ? "Adding…" : "Add"}</button>
      </div>
      {error && <p className="error-text" role="alert">{error.message} {error.hint}</p>}
    </form>
  );
}
