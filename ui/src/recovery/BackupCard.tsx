import { useEffect, useState } from "react";
import type { BackupWritten } from "../bindings/BackupWritten";
import { api } from "../lib/api";
import { useSubmit } from "../lib/useSubmit";

/** At least this many characters (the backend says the same in words if not). */
export const MIN_PASSPHRASE = 10;

function size(bytes: number): string {
  return bytes < 1024 * 1024 ? `${Math.max(1, Math.round(bytes / 1024))} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * Settings → Backup: one encrypted file with everything (contacts, groups, history, settings,
 * keys) into a folder of the user's choice, under a passphrase typed twice.
 */
export function BackupCard() {
  const [folder, setFolder] = useState("");
  const [passphrase, setPassphrase] = useState("");
  const [again, setAgain] = useState("");
  const [written, setWritten] = useState<BackupWritten | null>(null);
  useEffect(() => {
    api.backupFolder().then(setFolder, () => {});
  }, []);
  const mismatch = again !== "" && again !== passphrase;
  const backUp = useSubmit(async () => {
    setWritten(null);
    const done = await api.backUpNow(folder, passphrase);
    setWritten(done);
    setPassphrase("");
    setAgain("");
  });
  return (
    <section className="card" id="backup">
      <h2>Backup</h2>
      <p className="muted">
        One encrypted file with your contacts, groups, history, settings and keys. On a new computer,
        choose “Restore from a backup file” when Kiyeovo first starts. Without the passphrase nobody
        can open it — not even you, so keep it somewhere safe.
      </p>
      <form onSubmit={backUp.submit} id="backup-form">
        <label htmlFor="backup-folder">Folder</label>
        <input id="backup-folder" value={folder} onChange={(e) => setFolder(e.target.value)} spellCheck={false} />
        <label htmlFor="backup-passphrase">Passphrase (at least {MIN_PASSPHRASE} characters)</label>
        <input
          id="backup-passphrase"
          type="password"
          autoComplete="new-password"
          value={passphrase}
          onChange={(e) => setPassphrase(e.target.value)}
        />
        <label htmlFor="backup-passphrase-again">The passphrase again</label>
        <input
          id="backup-passphrase-again"
          type="password"
          autoComplete="new-password"
          value={again}
          onChange={(e) => setAgain(e.target.value)}
          aria-invalid={mismatch}
        />
        {mismatch && <p className="error-text">The two passphrases differ.</p>}
        <button
          type="submit"
          id="backup-now"
          disabled={backUp.busy || folder.trim() === "" || passphrase.length < MIN_PASSPHRASE || again !== passphrase}
        >
          {backUp.busy ? "Backing up…" : "Back up now"}
        </button>
      </form>
      <div aria-live="polite">
        {written && (
          <p id="backup-written">
            Saved to <code>{written.path}</code> ({size(written.bytes)}).
          </p>
        )}
      </div>
      {backUp.error && (
        <p className="error-text" role="alert" id="backup-error">
          {backUp.error.message} {backUp.error.hint}
        </p>
      )}
    </section>
  );
}
