import { useState } from "react";
import { api } from "../lib/api";
import { useSubmit } from "../lib/useSubmit";

/**
 * A profile's very first start: make a new identity, or bring one back from its recovery phrase.
 * Nothing is written until one is chosen.
 */
export function FirstRun({ profile }: { profile: string }) {
  const [restoring, setRestoring] = useState(false);
  const [phrase, setPhrase] = useState("");
  const fresh = useSubmit(() => api.firstRunNew());
  const restore = useSubmit(() => api.restoreFromPhrase(phrase));

  return (
    <main className="page" id="first-run">
      <header>
        <h1>Welcome to Kiyeovo</h1>
        <span className="profile">profile: {profile}</span>
      </header>
      <section className="card">
        <h2>New here?</h2>
        <p className="muted">
          Kiyeovo makes you an identity on this computer. You will get 24 words that bring it back if
          this computer is lost.
        </p>
        <form onSubmit={fresh.submit}>
          <button type="submit" id="first-run-new" disabled={fresh.busy || restore.busy}>
            {fresh.busy ? "Creating…" : "Create my identity"}
          </button>
        </form>
        {fresh.error && (
          <p className="error-text" role="alert">
            {fresh.error.message} {fresh.error.hint}
          </p>
        )}
      </section>
      <section className="card">
        <h2>Used Kiyeovo before?</h2>
        {!restoring ? (
          <button type="button" id="first-run-restore" onClick={() => setRestoring(true)}>
            Restore from a recovery phrase
          </button>
        ) : (
          <form onSubmit={restore.submit} id="restore-form">
            <label htmlFor="restore-phrase">
              Your 24-word recovery phrase, in order. It brings back your identity (contacts
              recognise you); your contacts, groups and history come back only from a backup file.
            </label>
            <textarea
              id="restore-phrase"
              rows={4}
              value={phrase}
              spellCheck={false}
              autoComplete="off"
              onChange={(e) => setPhrase(e.target.value)}
            />
            <button type="submit" id="restore-submit" disabled={restore.busy || phrase.trim() === ""}>
              {restore.busy ? "Restoring…" : "Restore"}
            </button>
            {restore.error && (
              <p className="error-text" role="alert" id="restore-error">
                {restore.error.message} {restore.error.hint}
              </p>
            )}
          </form>
        )}
      </section>
    </main>
  );
}
