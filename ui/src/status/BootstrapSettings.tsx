import { useEffect, useState } from "react";
import { api } from "../lib/api";
import { useSubmit } from "../lib/useSubmit";

/** Bootstrap nodes, one multiaddress per line; saved and used at once. */
export function BootstrapSettings({ current }: { current: string[] }) {
  const joined = current.join("\n");
  const [draft, setDraft] = useState(joined);
  const { busy: saving, error, submit: save } = useSubmit(async () => {
    const saved = await api.setBootstrap(draft.split("\n"));
    setDraft(saved.join("\n"));
  });

  useEffect(() => setDraft(joined), [joined]);

  return (
    <form className="card" onSubmit={save} id="bootstrap-form">
      <label htmlFor="bootstrap-addrs">
        <h2>Bootstrap nodes</h2>
        <p className="muted">
          One address per line, ending in /p2p/&lt;peer id&gt; (a kiyeovo-node prints it). Leave
          empty to find peers on your local network only.
        </p>
      </label>
      <textarea
        id="bootstrap-addrs"
        rows={3}
        value={draft}
        spellCheck={false}
        onChange={(e) => setDraft(e.target.value)}
        placeholder="/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW…"
      />
      <div className="row end">
        <button type="submit" disabled={saving || draft.trim() === joined.trim()}>
          {saving ? "Connecting…" : "Save and connect"}
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
