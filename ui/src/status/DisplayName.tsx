import { useEffect, useState } from "react";
import { api } from "../lib/api";
import { useSubmit } from "../lib/useSubmit";

export function DisplayName({ current }: { current: string }) {
  const [draft, setDraft] = useState(current);
  const { busy: saving, error, submit: save } = useSubmit(async () => {
    setDraft(await api.setDisplayName(draft));
  });

  useEffect(() => setDraft(current), [current]);

  return (
    <form className="card" onSubmit={save} id="display-name-form">
      <label htmlFor="display-name">
        <h2>Display name</h2>
        <p className="muted">Shown to your contacts.{current ? "" : " Choose one to get started."}</p>
      </label>
      <div className="row">
        <input
          id="display-name"
          value={draft}
          maxLength={64}
          onChange={(e) => setDraft(e.target.value)}
          placeholder="Your name"
        />
        <button type="submit" disabled={saving || draft.trim() === current}>
          {saving ? "Saving…" : "Save"}
        </button>
      </div>
      {error && (
        <p className="error-text" role="alert">
          {error.message} {error.hint}
        </p>
      )}
    </form>
  );
}
