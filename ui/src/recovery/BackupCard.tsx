import { useEffect, useState } from "react";
import type { BackupWritten } from "../bindings/BackupWritten";
import type { AutoBackup } from "../bindings/AutoBackup";
import { api } from "../lib/api";
import { useSubmit } from "../lib/useSubmit";
import { ErrorText } from "../lib/ErrorText";

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
  const [auto, setAuto] = useState<AutoBackup | null>(null);
  const [autoOn, setAutoOn] = useState(false);
  const [keep, setKeep] = useState(7);
  useEffect(() => {
    api.backupFolder().then(setFolder, () => {});
    api.autoBackup().then(
      (a) => {
        setAuto(a);
        setAutoOn(a.enabled);
        setKeep(a.keep);
        if (a.enabled) setFolder(a.folder);
      },
      () => {},
    );
  }, []);
  const mismatch = again !== "" && again !== passphrase;
  const backUp = useSubmit(async () => {
    setWritten(null);
    const done = await api.backUpNow(folder, passphrase);
    setWritten(done);
    setPassphrase("");
    setAgain("");
  });
  // Turning them on needs the passphrase (kept in the keyring); changing folder or count later
  // does not.
  const needsPassphrase = autoOn && !auto?.enabled;
  const saveAuto = useSubmit(async () => {
    // Only when turning them on: a passphrase half-typed above for "Back up now" must never
    // replace the one automatic backups use.
    setAuto(await api.setAutoBackup(autoOn, folder, keep, needsPassphrase ? passphrase : null));
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
      <form onSubmit={backUp.submit} id="backup-form" className="stack">
        <label htmlFor="backup-folder">Folder</label>
        <div className="row">
          <input id="backup-folder" value={folder} onChange={(e) => setFolder(e.target.value)} spellCheck={false} />
          <button
            type="button"
            id="backup-folder-choose"
            onClick={() => void api.chooseFolder(folder).then((f) => f && setFolder(f), () => {})}
          >
            Choose…
          </button>
        </div>
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
      {backUp.error && <ErrorText error={backUp.error} id="backup-error" />}
      <form onSubmit={saveAuto.submit} id="auto-backup-form" className="stack">
        <label className="check">
          <input
            type="checkbox"
            id="auto-backup-enabled"
            checked={autoOn}
            onChange={(e) => setAutoOn(e.target.checked)}
          />
          Back up automatically once a day into this folder, with this passphrase (kept in the system
          keyring)
        </label>
        <label htmlFor="auto-backup-keep">Keep the newest</label>
        <input
          id="auto-backup-keep"
          type="number"
          min={1}
          max={100}
          value={keep}
          disabled={!autoOn}
          onChange={(e) => setKeep(Number(e.target.value))}
        />
        <button
          type="submit"
          id="auto-backup-save"
          disabled={
            saveAuto.busy ||
            (needsPassphrase && (passphrase.length < MIN_PASSPHRASE || again !== passphrase)) ||
            (autoOn === auto?.enabled && keep === auto?.keep && folder === auto?.folder)
          }
        >
          {needsPassphrase ? "Turn on (type the passphrase above twice)" : "Save"}
        </button>
      </form>
      <p id="auto-backup-status" aria-live="polite">
        {auto?.enabled && auto.last_error && <span className="error-text">The last automatic backup failed: {auto.last_error}</span>}
        {auto?.enabled && !auto.last_error && auto.last_at !== null &&
          `Last automatic backup: ${new Date(auto.last_at).toLocaleString()}.`}
        {auto?.enabled && auto.last_at === null && "On: the first automatic backup is written in a moment."}
        {auto && !auto.enabled && "Automatic backups are off."}
      </p>
      {saveAuto.error && <ErrorText error={saveAuto.error} id="auto-backup-error" />}
    </section>
  );
}
