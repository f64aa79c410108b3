import { useState } from "react";
import { api } from "../lib/api";
import { useSubmit } from "../lib/useSubmit";
import type { ContactView } from "../bindings/ContactView";

export function AddContact({ onAdded }: { onAdded: (c: ContactView) => void }) {
  const [text, setText] = useState("");
  const { busy, error, submit: add } = useSubmit(async () => {
    const contact = await api.addContact(text);
    setText("");
    onAdded(contact);
  });

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
