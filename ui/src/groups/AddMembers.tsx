import { useState } from "react";
import { api } from "../lib/api";
import { useNow } from "../lib/useNow";
import { useSubmit } from "../lib/useSubmit";
import type { ContactView } from "../bindings/ContactView";
import type { GroupView } from "../bindings/GroupView";
import { MEMBER_STATUS_TEXT, timeLeft } from "./format";
import { ContactPicker } from "./ContactPicker";

/**
 * The admin adds trusted contacts to a running group: they get an invitation with the current
 * members listed and their own answer window; those who accept join with the next key (never
 * an older one). One round at a time, within the group's cap of 10.
 */
export function AddMembers({ group, contacts, onChanged }: {
  group: GroupView;
  contacts: ContactView[];
  onChanged: (g: GroupView) => void;
}) {
  const now = useNow();
  const [open, setOpen] = useState(false);
  const [picked, setPicked] = useState<string[]>([]);
  const { busy, error, submit } = useSubmit(async () => {
    onChanged(await api.addGroupMembers(group.group_id, picked));
    setPicked([]);
    setOpen(false);
  });
  const round = group.add_round;
  if (round) {
    return (
      <div className="add-round" id="add-round">
        <p>
          Invited to join{" "}
          {round.closed ? (
            <span className="muted">— the window is over; those who accepted are being added.</span>
          ) : (
            <span className="countdown" id="add-countdown">({timeLeft(round.expires_at, now)} left to answer)</span>
          )}
        </p>
        <ul className="roster">
          {round.invitees.map((m) => (
            <li key={m.peer_id} data-peer={m.peer_id} data-status={m.status}>
              <span>{m.display_name}</span>
              <span className="st" data-status={m.status}>{MEMBER_STATUS_TEXT[m.status]}</span>
            </li>
          ))}
        </ul>
      </div>
    );
  }
  if (group.can_add === 0) {
    return group.is_admin && group.roster.length >= 10 ? (
      <p className="muted" id="group-full">The group is full: 10 members. Remove someone to add another.</p>
    ) : null;
  }
  if (!open) {
    return (
      <div className="row end">
        <button className="secondary" id="add-members" onClick={() => setOpen(true)}>Add members</button>
      </div>
    );
  }
  const inGroup = new Set(group.roster.map((m) => m.peer_id));
  const candidates = contacts.filter((c) => !inGroup.has(c.peer_id));
  return (
    <form className="add-members" id="add-members-form" onSubmit={submit}>
      <p className="muted">
        Pick up to {group.can_add} trusted {group.can_add === 1 ? "contact" : "contacts"}. They see who is in the group
        and have 6 hours to answer; those who accept get the next key and nothing written before.
      </p>
      <ContactPicker id="add-picker" contacts={candidates} picked={picked} max={group.can_add}
        empty="All your contacts are in the group already." onChange={setPicked} />
      <div className="row end">
        <button type="button" className="secondary" onClick={() => { setOpen(false); setPicked([]); }}>Cancel</button>
        <button type="submit" id="send-add" disabled={busy || picked.length === 0}>
          {busy ? "Inviting…" : `Invite ${picked.length}`}
        </button>
      </div>
      {error && <p className="error-text" role="alert">{error.message} {error.hint}</p>}
    </form>
  );
}
