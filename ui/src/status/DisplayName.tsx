import { useEffect, useState, type FormEvent } from "react";
import { api, asUiError } from "../lib/api";
import type { UiError } from "../bindings/UiError";

export function DisplayName({ current }: { current: string }) {
  const [draft, setDraft] = useState(current);
  const [error, setError] = useState<UiError | null>(null);
  const [saving, setSaving] = useState(false);

  useEffect(() => setDraft(current), [current]);

  async function save(e: FormEvent) {
    e.preventDefault();
    setSaving(true);
    setError(null);
    try {
      setDraft(await api.setDisplayName(draft));
    } catch (err) {
      setError(asUiError(err));
    } finally {
      setSaving(false);
    }
  }

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
