import { useEffect, useState } from "react";
import type { RestoreStep } from "../bindings/RestoreStep";
import { api } from "../lib/api";
import { useSubmit } from "../lib/useSubmit";
import { ErrorText } from "../lib/ErrorText";

const STEP_TEXT: Record<RestoreStep, string> = {
  reading: "Reading the file…",
  unlocking: "Checking the passphrase (this takes a moment)…",
  writing: "Writing your contacts, groups and history…",
  keys: "Storing your keys in the system keyring…",
};

/**
 * A profile's very first start: make a new identity, or bring one back from its recovery phrase
 * or a backup file. Nothing is written until one is chosen.
 */
export function FirstRun({ profile }: { profile: string }) {
  const [restoring, setRestoring] = useState<"phrase" | "backup" | null>(null);
  const [phrase, setPhrase] = useState("");
  const [path, setPath] = useState("");
  const [passphrase, setPassphrase] = useState("");
  const [step, setStep] = useState<RestoreStep | null>(null);
  const fresh = useSubmit(() => api.firstRunNew());
  const restore = useSubmit(() => api.restoreFromPhrase(phrase));
  const fromBackup = useSubmit(async () => {
    setStep(null);
    try {
      await api.restoreFromBackup(path, passphrase);
    } finally {
      setStep(null);
    }
  });
  useEffect(() => {
    const unlisten = api.onRestoreProgress(setStep);
    return () => {
      void unlisten.then((f) => f());
    };
  }, []);
  const busy = fresh.busy || restore.busy || fromBackup.busy;

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
          <button type="submit" id="first-run-new" disabled={busy}>
            {fresh.busy ? "Creating…" : "Create my identity"}
          </button>
        </form>
        {fresh.error && <ErrorText error={fresh.error} />}
      </section>
      <section className="card">
        <h2>Used Kiyeovo before?</h2>
        {restoring === null && (
          <div className="actions">
            <button type="button" id="first-run-restore" onClick={() => setRestoring("phrase")}>
              Restore from a recovery phrase
            </button>
            <button type="button" id="first-run-backup" onClick={() => setRestoring("backup")}>
              Restore from a backup file
            </button>
          </div>
        )}
        {restoring === "backup" && (
          <form onSubmit={fromBackup.submit} id="restore-backup-form" className="stack">
            <p className="muted">
              A backup file brings back everything: your identity, contacts, groups, history and
              settings. What was sent since the backup comes from the network as far as it still
              holds it (the newest 100 messages per person). Stop Kiyeovo on the old computer
              first: one identity on two computers confuses your contacts.
            </p>
            <label htmlFor="restore-backup-path">The backup file (its full path)</label>
            <div className="row">
              <input
                id="restore-backup-path"
                value={path}
                spellCheck={false}
                placeholder="/home/you/Documents/Kiyeovo backups/kiyeovo-….kiyeovo-backup"
                onChange={(e) => setPath(e.target.value)}
              />
              <button
                type="button"
                id="restore-backup-choose"
                onClick={() => void api.chooseBackupFile().then((p) => p && setPath(p), () => {})}
              >
                Choose…
              </button>
            </div>
            <label htmlFor="restore-backup-passphrase">Its passphrase</label>
            <input
              id="restore-backup-passphrase"
              type="password"
              autoComplete="off"
              value={passphrase}
              onChange={(e) => setPassphrase(e.target.value)}
            />
            <button
              type="submit"
              id="restore-backup-submit"
              disabled={busy || path.trim() === "" || passphrase === ""}
            >
              {fromBackup.busy ? "Restoring…" : "Restore"}
            </button>
            <p id="restore-progress" aria-live="polite">
              {fromBackup.busy && step ? STEP_TEXT[step] : ""}
            </p>
            {fromBackup.error && <ErrorText error={fromBackup.error} id="restore-backup-error" />}
          </form>
        )}
        {restoring === "phrase" && (
          <form onSubmit={restore.submit} id="restore-form">
            <label htmlFor="restore-phrase">
              Your 24-word recovery phrase, in order. It brings back your identity (contacts
              recognise you); your contacts, groups and history come back only from a backup file.
              Stop Kiyeovo on the old computer first.
            </label>
            <textarea
              id="restore-phrase"
              rows={4}
              value={phrase}
              spellCheck={false}
              autoComplete="off"
              onChange={(e) => setPhrase(e.target.value)}
            />
            <button type="submit" id="restore-submit" disabled={busy || phrase.trim() === ""}>
              {restore.busy ? "Restoring…" : "Restore"}
            </button>
            {restore.error && <ErrorText error={restore.error} id="restore-error" />}
          </form>
        )}
      </section>
    </main>
  );
}
