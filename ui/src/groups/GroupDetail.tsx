import { useState } from "react";
import { api, asUiError } from "../lib/api";
import type { ContactView } from "../bindings/ContactView";
import type { GroupView } from "../bindings/GroupView";
import type { UiError } from "../bindings/UiError";
import { useNow } from "../lib/useNow";
import { useSnapshot } from "../lib/store";
import { MEMBER_STATUS_TEXT, statusText, timeLeft } from "./format";
import { GroupChat } from "./GroupChat";
import { ChangeLines, MemberPanel } from "./MemberPanel";

/** The invite card / group info: roster with each member's status, countdown, actions. */
export function GroupDetail({ group, contacts = [], onChanged }: {
  group: GroupView;
  contacts?: ContactView[];
  onChanged: (g: GroupView) => void;
}) {
  const now = useNow();
  const [error, setError] = useState<UiError | null>(null);
  const [busy, setBusy] = useState(false);
  const windowOpen = group.expires_at > now;
  // The conversation (membership changes in place in it); without one, the changes as a list.
  const chat =
    group.status === "active" ||
    group.status === "inviting" ||
    (group.status === "accepted" && !group.joining) ||
    group.status === "left" ||
    group.status === "removed" ||
    group.status === "disbanded";
  const muted = useSnapshot()?.desktop.muted_groups.includes(group.group_id) ?? false;

  async function toggleMute() {
    setError(null);
    try {
      await api.setGroupMuted(group.group_id, !muted);
    } catch (e) {
      setError(asUiError(e));
    }
  }

  async function act(action: () => Promise<GroupView>) {
    setBusy(true);
    setError(null);
    try {
      onChanged(await action());
    } catch (e) {
      setError(asUiError(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="card" id="group-detail" data-status={group.status}>
      <h2 id="group-title">{group.name}</h2>
      <p className="muted">
        {group.joining && chat ? (
          <>
            You were added by <strong>{group.creator_name}</strong> ·{" "}
          </>
        ) : group.joining ? (
          <>
            <strong>{group.creator_name}</strong> (admin) invites you to join this running group ·{" "}
          </>
        ) : (
          <>
            Created by <strong>{group.is_creator ? "you" : group.creator_name}</strong> ·{" "}
          </>
        )}
        <span id="group-status">{statusText(group)}</span>
      </p>
      {group.joining && group.status !== "active" && (
        <p className="muted" id="joining-note">
          If you accept, you join with the group's next key: you read what is written from then on, nothing from before.
        </p>
      )}
      <label className="check">
        <input type="checkbox" id="mute-group" checked={muted} onChange={() => void toggleMute()} />
        Mute notifications for this group
      </label>
      {(group.status === "inviting" || group.status === "invited" || group.status === "accepted") && (
        <p>
          Invitation window: <span className="countdown" id="countdown">{windowOpen ? `${timeLeft(group.expires_at, now)} left` : "closed"}</span>
        </p>
      )}
      {group.flags.length > 0 && (
        <div className="warnings" role="alert" id="list-mismatch">
          <p>Members may be shown different groups:</p>
          <ul className="flags">
            {group.flags.map((f) => (
              <li key={f.index} data-who={f.who_peer_id ?? ""}>
                <span>{f.what}</span>{" "}
                <button className="secondary" disabled={busy} onClick={() => void act(() => api.dismissGroupFlag(group.group_id, f.index))}>Dismiss</button>
              </li>
            ))}
          </ul>
        </div>
      )}
      {group.roster.length > 0 && <MemberPanel group={group} contacts={contacts} onChanged={onChanged} />}
      <h3>{group.roster.length > 0 ? (group.joining ? "When you were invited" : "Invited at the start") : group.joining ? "In the group, and invited" : "Members"}</h3>
      <ul className="roster" id="roster">
        {group.members.map((m) => (
          <li key={m.peer_id} data-peer={m.peer_id}>
            <span>
              {m.display_name}{m.is_me ? " (you)" : ""}
              {!m.is_contact && !m.is_me && <span className="muted not-contact" title="Not one of your contacts: this is the name the group's creator gave them."> (not your contact)</span>}
            </span>
            <span className="st" data-status={m.status}>{MEMBER_STATUS_TEXT[m.status]}</span>
          </li>
        ))}
      </ul>
      {group.can_respond && (
        <div className="row end">
          <button className="secondary" id="reject-invite" disabled={busy} onClick={() => void act(() => api.respondInvite(group.group_id, false))}>Reject</button>
          <button id="accept-invite" disabled={busy} onClick={() => void act(() => api.respondInvite(group.group_id, true))}>Accept</button>
        </div>
      )}
      {group.is_creator && group.status === "inviting" && (
        <div className="row end">
          <span className="muted">
            {group.can_establish ? "Everyone answered." : "The group is established when the window ends, or once everyone accepted."}
          </span>
          <button id="establish-group" disabled={busy || !group.can_establish} onClick={() => void act(() => api.establishGroup(group.group_id))}>Establish now</button>
        </div>
      )}
      {group.status === "waiting_for_creator" && (
        <p className="muted">
          {group.joining
            ? "The window is over. The admin's app adds you the next time it is online."
            : "The window is over. The creator's app establishes the group the next time it is online; only the creator can."}
        </p>
      )}
      {group.status === "active" && <p className="muted">The group is established (key {group.epoch}): only the members now hold its key.</p>}
      {group.safety_code && (
        <p className="muted">
          Safety code: <code id="safety-code">{group.safety_code}</code> — compare it with the others in person or on a call; equal codes mean you all see the same members and key.
        </p>
      )}
      {error && <p className="error-text" role="alert">{error.message} {error.hint}</p>}
      {chat ? <GroupChat groupId={group.group_id} changes={group.changes} /> : <ChangeLines group={group} />}
    </div>
  );
}
