import { useCallback, useEffect, useRef, useState } from "react";
import type { ConversationView } from "../bindings/ConversationView";
import type { ContactView } from "../bindings/ContactView";
import type { GroupView } from "../bindings/GroupView";
import type { UiError } from "../bindings/UiError";
import { api, asUiError } from "../lib/api";
import { ErrorText } from "../lib/ErrorText";
import { ChatView } from "../chat/ChatView";
import { GroupDetail } from "../groups/GroupDetail";
import { ConversationList } from "./ConversationList";
import { keyOf, ordered } from "./order";
import { refresh, startConversations, useConversations } from "./store";
import { SearchResults } from "./SearchResults";
import { jumpToMessage } from "./jump";
import type { SearchHit } from "../bindings/SearchHit";

/** Asked for from outside (a notification, the tray): show this conversation. */
export type OpenRequest = { key: string; nonce: number };

/** Conversations first: the list on the left, the open one beside it. */
export function ChatsScreen({ open = null }: { open?: OpenRequest | null }) {
  const { items, error, loaded } = useConversations();
  const [selected, setSelected] = useState<string | null>(open?.key ?? null);
  const [filter, setFilter] = useState("");
  const filterRef = useRef<HTMLInputElement>(null);
  const paneRef = useRef<HTMLElement>(null);
  // A search result asks for one message: the conversation opens and scrolls to it.
  const [jump, setJump] = useState<{ msgId: string; sender?: string; nonce: number } | null>(null);

  useEffect(() => void startConversations(), []);
  useEffect(() => {
    if (open) setSelected(open.key);
  }, [open]);
  // A window made again after being closed to the tray opens on the conversation that was
  // open (the backend keeps which one; the web view itself is gone in between).
  // Nothing is told back before that answer is in, or the "none open yet" of a window just
  // made could overwrite what it is about to read.
  const [restored, setRestored] = useState(open !== null);
  useEffect(() => {
    if (open) return;
    api.lastOpen().then(
      (key) => {
        if (key) setSelected((now) => now ?? key);
        setRestored(true);
      },
      () => setRestored(true),
    );
  }, []); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => {
    if (restored) api.rememberOpen(selected).catch(() => {});
  }, [selected, restored]);

  // Ctrl/Cmd+K jumps to the filter box; Esc there clears it.
  useEffect(() => {
    function onKey(e: globalThis.KeyboardEvent) {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k") {
        e.preventDefault();
        filterRef.current?.focus();
        filterRef.current?.select();
      } else if (e.key === "Escape" && document.activeElement === filterRef.current) {
        setFilter("");
      }
    }
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);

  useEffect(() => {
    if (!jump || !paneRef.current) return;
    return jumpToMessage(paneRef.current, jump.msgId, jump.sender);
  }, [jump]);

  function openHit(h: SearchHit) {
    setSelected(`${h.kind}:${h.conversation_id}`);
    setJump({ msgId: h.msg_id, sender: h.kind === "group" ? h.sender_peer_id : undefined, nonce: Date.now() });
  }

  const list = ordered([...items.values()], filter);
  const current = selected ? items.get(selected) : undefined;

  return (
    <div className="split">
      <aside className="sidebar">
        {error && <ErrorText error={error} />}
        <ConversationList list={list} selected={selected} filter={filter} onFilter={setFilter}
          onSelect={setSelected} filterRef={filterRef} />
        <SearchResults query={filter} onOpen={openHit} />
        {loaded && items.size === 0 && (
          <p className="muted" id="conversations-empty">
            Start by adding a contact: open <strong>Contacts</strong>, share your card, and paste theirs.
          </p>
        )}
      </aside>
      <main className="main" ref={paneRef}>
        {current ? (
          <Conversation key={keyOf(current)} c={current} />
        ) : (
          <p className="muted centered-text">Pick a conversation.</p>
        )}
      </main>
    </div>
  );
}

/** The open conversation: the chat screen its kind already has. */
function Conversation({ c }: { c: ConversationView }) {
  const [contact, setContact] = useState<ContactView | null>(null);
  const [group, setGroup] = useState<GroupView | null>(null);
  const [contacts, setContacts] = useState<ContactView[]>([]);
  const [error, setError] = useState<UiError | null>(null);

  // Re-read whenever the list's entry for it changed (an event named it).
  const load = useCallback(async () => {
    try {
      const people = await api.listContacts();
      setContacts(people);
      if (c.kind === "contact") setContact(people.find((p) => p.peer_id === c.id) ?? null);
      else setGroup((await api.listGroups()).find((g) => g.group_id === c.id) ?? null);
    } catch (e) {
      setError(asUiError(e));
    }
  }, [c]);
  useEffect(() => void load(), [load]);

  if (error) return <ErrorText error={error} />;
  if (c.kind === "contact") {
    return contact ? (
      <ChatView contact={contact} changed={c.active_at + c.unread} onBlocked={() => void refresh("contact", c.id)} />
    ) : null;
  }
  return group ? (
    <GroupDetail group={group} contacts={contacts} onChanged={() => void refresh("group", c.id)} />
  ) : null;
}
