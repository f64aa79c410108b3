import { useCallback, useEffect, useState } from "react";
import { api, asUiError } from "../lib/api";
import type { ContactView } from "../bindings/ContactView";
import type { UiError } from "../bindings/UiError";
import { ChatView } from "../chat/ChatView";
import { MyCard } from "./MyCard";
import { AddContact } from "./AddContact";
import { useSnapshot } from "../lib/store";

export function trustLabel(c: ContactView): string {
  if (c.blocked) return "blocked";
  if (c.trusted_at === null) return "pending: waiting for their card";
  return `trusted since ${new Date(c.trusted_at).toLocaleString()}`;
}

export function ContactsScreen() {
  const [contacts, setContacts] = useState<ContactView[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [error, setError] = useState<UiError | null>(null);
  const [changed, setChanged] = useState<{ peer: string; n: number }>({ peer: "", n: 0 });

  const reload = useCallback(async () => {
    try {
      setContacts(await api.listContacts());
    } catch (e) {
      setError(asUiError(e));
    }
  }, []);

  useEffect(() => {
    void reload();
    const off = api.onContactChanged((c) => {
      void reload();
      setChanged((prev) => ({ peer: c.peer_id, n: prev.n + 1 }));
    });
    return () => {
      void off.then((f) => f());
    };
  }, [reload]);

  const current = contacts.find((c) => c.peer_id === selected) ?? null;
  // Online = an open connection right now; the snapshot pushes every change.
  const connected = new Set(useSnapshot()?.node?.connected_peers ?? []);

  return (
    <div className="split">
      <aside className="sidebar">
        <MyCard />
        <AddContact onAdded={(c) => { void reload(); setSelected(c.peer_id); }} />
        {error && <p className="error-text" role="alert">{error.message} {error.hint}</p>}
        <ul className="contact-list" id="contact-list">
          {contacts.length === 0 && <li className="muted">No contacts yet. Exchange cards with someone.</li>}
          {contacts.map((c) => (
            <li key={c.peer_id}>
              <button
                className={`contact ${c.peer_id === selected ? "selected" : ""}`}
                data-trusted={c.trusted_at !== null}
                onClick={() => setSelected(c.peer_id)}
              >
                <span className="name">
                  <span className={`presence ${connected.has(c.peer_id) ? "online" : ""}`}
                    title={connected.has(c.peer_id) ? "online" : "offline"}
                    data-online={connected.has(c.peer_id)} />
                  <span className="sr-only">{connected.has(c.peer_id) ? "online, " : "offline, "}</span>
                  {c.display_name}
                </span>
                {c.unread > 0 && <span className="badge">{c.unread}</span>}
                <span className={`trust ${c.trusted_at !== null ? "ok" : ""}`}>{trustLabel(c)}</span>
              </button>
            </li>
          ))}
        </ul>
      </aside>
      <main className="main">
        {current ? (
          <ChatView contact={current} changed={changed.peer === current.peer_id || changed.peer === "" ? changed.n : 0} onBlocked={reload} />
        ) : (
          <p className="muted centered-text">Pick a contact to chat.</p>
        )}
      </main>
    </div>
  );
}
