import type { ContactView } from "../bindings/ContactView";

/** Why a contact cannot be invited, or null if they can. */
export function whyNot(c: ContactView): string | null {
  if (c.blocked) return "blocked";
  if (c.trusted_at === null) return "not trusted yet: the handshake is pending";
  return null;
}

/**
 * Trusted contacts to tick, each untrusted or blocked one greyed out with the reason; no more
 * than `max` can be ticked. Used to invite people to a new group and to add them to one.
 */
export function ContactPicker({ id, contacts, picked, max, empty, onChange }: {
  id: string;
  contacts: ContactView[];
  picked: string[];
  max: number;
  empty: string;
  onChange: (picked: string[]) => void;
}) {
  const full = picked.length >= max;
  const toggle = (peer: string) =>
    onChange(picked.includes(peer) ? picked.filter((x) => x !== peer) : [...picked, peer]);
  return (
    <ul className="picker" id={id}>
      {contacts.length === 0 && <li className="muted">{empty}</li>}
      {contacts.map((c) => {
        const reason = whyNot(c);
        const checked = picked.includes(c.peer_id);
        return (
          <li key={c.peer_id}>
            <label className="check">
              <input type="checkbox" data-peer={c.peer_id} checked={checked}
                disabled={reason !== null || (full && !checked)} onChange={() => toggle(c.peer_id)} />
              {c.display_name}
              {reason && <span className="why">{reason}</span>}
            </label>
          </li>
        );
      })}
    </ul>
  );
}
