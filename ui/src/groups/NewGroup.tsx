import { useState } from "react";
import { api } from "../lib/api";
import { useSubmit } from "../lib/useSubmit";
import { ContactPicker } from "./ContactPicker";
import type { ContactView } from "../bindings/ContactView";
import type { GroupView } from "../bindings/GroupView";

/** Mirrors the backend's `MAX_MEMBERS` (10, creator included); the backend enforces it too. */
export const MAX_INVITEES = 9;

export function NewGroup({ contacts, onCreated, onCancel }: {
  contacts: ContactView[];
  onCreated: (g: GroupView) => void;
  onCancel: () => void;
}) {
  const [name, setName] = useState("");
  const [picked, setPicked] = useState<string[]>([]);
  const { busy, error, submit } = useSubmit(async () => {
    onCreated(await api.createGroup(name, picked));
  });
  const full = picked.length >= MAX_INVITEES;

  return (
    <form className="card" id="new-group-form" onSubmit={submit}>
      <h2>New group</h2>
      <input id="group-name" placeholder="Group name" value={name} maxLength={64} onChange={(e) => setName(e.target.value)} />
      <p className="muted">Invite up to {MAX_INVITEES} trusted contacts. They have 6 hours to answer.</p>
      <ContactPicker id="group-picker" contacts={contacts} picked={picked} max={MAX_INVITEES} empty="No contacts yet." onChange={setPicked} />
      {full && <p className="muted">A group has at most 10 members: you and 9 others.</p>}
      <div className="row end">
        <button type="button" className="secondary" onClick={onCancel}>Cancel</button>
        <button type="submit" id="create-group" disabled={busy || name.trim() === "" || picked.length === 0}>
          {busy ? "Inviting…" : `Invite ${picked.length}`}
        </button>
      </div>
      {error && <p className="error-text" role="alert">{error.message} {error.hint}</p>}
    </form>
  );
}
