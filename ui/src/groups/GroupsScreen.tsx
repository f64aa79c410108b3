import { useCallback, useEffect, useState } from "react";
import { api, asUiError } from "../lib/api";
import type { ContactView } from "../bindings/ContactView";
import type { GroupView } from "../bindings/GroupView";
import type { UiError } from "../bindings/UiError";
import { useSnapshot } from "../lib/store";
import { useNow } from "../lib/useNow";
import { GroupDetail } from "./GroupDetail";
import { NewGroup } from "./NewGroup";
import { statusText, timeLeft } from "./format";

/** How often the admin's app gives its groups a new key (days; 0 = never). */
export const ROTATION_CHOICES: [number, string][] = [[1, "every day"], [7, "every week"], [30, "every month"], [0, "never (only when members change)"]];

export function GroupsScreen({ open = null }: { open?: { id: string; nonce: number } | null }) {
  const [groups, setGroups] = useState<GroupView[]>([]);
  const [contacts, setContacts] = useState<ContactView[]>([]);
  const [selected, setSelected] = useState<string | null>(open?.id ?? null);
  const [creating, setCreating] = useState(false);

  useEffect(() => {
    if (open) {
      setSelected(open.id);
      setCreating(false);
    }
  }, [open]);
  const [error, setError] = useState<UiError | null>(null);
  const snapshot = useSnapshot();
  const now = useNow();

  const reload = useCallback(async () => {
    try {
      setGroups(await api.listGroups());
      setContacts(await api.listContacts());
    } catch (e) {
      setError(asUiError(e));
    }
  }, []);

  useEffect(() => {
    void reload();
    const offGroups = api.onGroupChanged(() => void reload());
    const offContacts = api.onContactChanged(() => void reload());
    const offChat = api.onGroupChatChanged(() => void reload());
    return () => {
      void offGroups.then((f) => f());
      void offContacts.then((f) => f());
      void offChat.then((f) => f());
    };
  }, [reload]);

  async function setRotation(days: number) {
    try {
      await api.setRotateDays(days);
    } catch (e) {
      setError(asUiError(e));
    }
  }

  async function toggleBlockAll() {
    try {
      await api.setBlockInvites(!snapshot?.block_invites);
    } catch (e) {
      setError(asUiError(e));
    }
  }

  const current = groups.find((g) => g.group_id === selected) ?? null;

  return (
    <div className="split">
      <aside className="sidebar">
        <div className="card">
          <button id="new-group" onClick={() => { setCreating(true); setSelected(null); }}>New group</button>
          <label className="check" style={{ marginTop: 8 }}>
            <input type="checkbox" id="block-all-invites" checked={snapshot?.block_invites ?? false} onChange={() => void toggleBlockAll()} />
            Block all group invitations
          </label>
          <label className="field" style={{ marginTop: 8 }}>
            New key for groups you are the admin of{" "}
            <select id="rotate-days" value={snapshot?.rotate_days ?? 7} onChange={(e) => void setRotation(Number(e.target.value))}>
              {ROTATION_CHOICES.map(([days, label]) => <option key={days} value={days}>{label}</option>)}
            </select>
          </label>
        </div>
        {error && <p className="error-text" role="alert">{error.message} {error.hint}</p>}
        <ul className="contact-list" id="group-list">
          {groups.length === 0 && <li className="muted">No groups yet.</li>}
          {groups.map((g) => (
            <li key={g.group_id}>
              <button className={`contact ${g.group_id === selected ? "selected" : ""}`} data-group={g.group_id}
                data-status={g.status} onClick={() => { setSelected(g.group_id); setCreating(false); }}>
                <span className="name">{g.name}</span>
                {g.can_respond && <span className="badge">{timeLeft(g.expires_at, now)}</span>}
                {!g.can_respond && g.unread > 0 && <span className="badge unread">{g.unread}</span>}
                <span className="group-status">{statusText(g)}</span>
              </button>
            </li>
          ))}
        </ul>
      </aside>
      <main className="main">
        {creating ? (
          <NewGroup contacts={contacts} onCancel={() => setCreating(false)}
            onCreated={(g) => { setCreating(false); setSelected(g.group_id); void reload(); }} />
        ) : current ? (
          <GroupDetail group={current} contacts={contacts} onChanged={() => void reload()} />
        ) : (
          <p className="muted centered-text">Pick a group, or start a new one.</p>
        )}
      </main>
    </div>
  );
}
