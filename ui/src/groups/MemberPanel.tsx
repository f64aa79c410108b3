import { useState } from "react";
import { api, asUiError } from "../lib/api";
import type { GroupView } from "../bindings/GroupView";
import type { UiError } from "../bindings/UiError";
import type { ContactView } from "../bindings/ContactView";
import { AddMembers } from "./AddMembers";
import { MEMBER_STATUS_TEXT } from "./format";

/** What the user is about to do that needs a second click. */
type Pending = { kind: "leave" | "disband" } | { kind: "remove" | "hand_over"; peer: string; name: string } | null;

/**
 * An established group's members (the current key holders, the admin marked) and what the
 * user may do: the admin adds, removes, hands over, rotates the key and ends the group; anyone
 * leaves. Changes that cannot be undone ask once more, in words.
 */
export function MemberPanel({ group, contacts = [], onChanged }: {
  group: GroupView;
  contacts?: ContactView[];
  onChanged: (g: GroupView) => void;
}) {
  const [error, setError] = useState<UiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [pending, setPending] = useState<Pending>(null);
  const active = group.status === "active";

  async function act(action: () => Promise<GroupView>) {
    setBusy(true);
    setError(null);
    try {
      onChanged(await action());
      setPending(null);
    } catch (e) {
      setError(asUiError(e));
    } finally {
      setBusy(false);
    }
  }

  const id = group.group_id;
  return (
    <section className="member-panel" id="member-panel" aria-label="Members">
      <h3>Members now</h3>
      <ul className="roster" id="current-roster">
        {group.roster.map((m) => (
          <li key={m.peer_id} data-peer={m.peer_id} data-status={m.status}>
            <span>
              {m.display_name}
              {m.is_me ? " (you)" : ""}
              {!m.is_contact && !m.is_me && <span className="muted not-contact"> (not your contact)</span>}
            </span>
            <span className="st" data-status={m.status}>{MEMBER_STATUS_TEXT[m.status]}</span>
            {active && group.is_admin && !m.is_me && (
              <span className="row">
                <button className="secondary remove-member" disabled={busy} onClick={() => setPending({ kind: "remove", peer: m.peer_id, name: m.display_name })}>Remove</button>
                <button className="secondary hand-over" disabled={busy} onClick={() => setPending({ kind: "hand_over", peer: m.peer_id, name: m.display_name })}>Make admin</button>
              </span>
            )}
          </li>
        ))}
      </ul>
      {active && group.is_admin && <AddMembers group={group} contacts={contacts} onChanged={onChanged} />}
      {active && (
        <div className="row end">
          {group.is_admin && (
            <>
              <button className="secondary" id="rotate-key" disabled={busy} onClick={() => void act(() => api.rotateGroupKey(id))}>Rotate key now</button>
              <button className="secondary danger" id="disband-group" disabled={busy} onClick={() => setPending({ kind: "disband" })}>End group</button>
            </>
          )}
          <button className="secondary danger" id="leave-group" disabled={busy} onClick={() => setPending({ kind: "leave" })}>Leave</button>
        </div>
      )}
      {pending && (
        <div className="confirm" role="alertdialog" id="confirm-change">
          <p>{confirmText(pending, group)}</p>
          <div className="row end">
            <button className="secondary" id="confirm-cancel" disabled={busy} onClick={() => setPending(null)}>Cancel</button>
            {pending.kind === "leave" && group.is_admin ? (
              <button className="danger" id="confirm-ok" disabled={busy} onClick={() => void act(() => api.disbandGroup(id))}>End the group for everyone</button>
            ) : (
              <button className="danger" id="confirm-ok" disabled={busy} onClick={() => void act(() => run(pending, id))}>{okText(pending)}</button>
            )}
          </div>
        </div>
      )}
      {group.status === "left" && <p className="muted" id="read-only">You left this group. Its history stays here, read-only.</p>}
      {group.status === "removed" && <p className="muted" id="read-only">You were removed from this group. What you received before stays here, read-only.</p>}
      {group.status === "disbanded" && <p className="muted" id="read-only">This group has ended. Its history stays here, read-only.</p>}
      {error && <p className="error-text" role="alert">{error.message} {error.hint}</p>}
    </section>
  );
}

function run(p: NonNullable<Pending>, id: string): Promise<GroupView> {
  switch (p.kind) {
    case "leave":
      return api.leaveGroup(id);
    case "disband":
      return api.disbandGroup(id);
    case "remove":
      return api.removeGroupMember(id, p.peer);
    case "hand_over":
      return api.handOverGroup(id, p.peer);
  }
}

function okText(p: NonNullable<Pending>): string {
  switch (p.kind) {
    case "leave":
      return "Leave";
    case "disband":
      return "End the group for everyone";
    case "remove":
      return `Remove ${p.name}`;
    case "hand_over":
      return `Make ${p.name} the admin`;
  }
}

export function confirmText(p: NonNullable<Pending>, group: GroupView): string {
  switch (p.kind) {
    case "leave":
      return group.is_admin
        ? "You are the admin. Make another member the admin first (Make admin, next to their name) — or leaving ends the group for everyone."
        : `Leave “${group.name}”? You keep what you have read, but get nothing new; only the admin can add you again.`;
    case "disband":
      return `End “${group.name}” for everyone? Nobody can write in it any more; everyone keeps the history.`;
    case "remove":
      return `Remove ${p.name}? They get a new key no more: nothing written from now on reaches them.`;
    case "hand_over":
      return `Make ${p.name} the admin? You can no longer change the members or the key.`;
  }
}

/** Membership changes, as lines for the conversation. */
export function ChangeLines({ group }: { group: GroupView }) {
  if (group.changes.length === 0) return null;
  return (
    <ul className="changes" id="changes" aria-label="Membership changes">
      {group.changes.map((c, i) => (
        <li key={i} data-epoch={c.epoch}>
          <span className="muted">{new Date(c.at).toLocaleString()}</span> {c.text}
        </li>
      ))}
    </ul>
  );
}
