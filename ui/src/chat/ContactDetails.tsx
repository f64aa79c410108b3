import { useEffect, useRef, useState, type FormEvent } from "react";
import type { ContactView } from "../bindings/ContactView";
import type { UiError } from "../bindings/UiError";
import { api, asUiError } from "../lib/api";
import { ErrorText } from "../lib/ErrorText";
import { useSnapshot } from "../lib/store";

/** The code in rows of four groups of five digits, as it is read out. */
function rows(code: string): string[] {
  const groups = code.split(" ");
  const out: string[] = [];
  for (let i = 0; i < groups.length; i += 4) out.push(groups.slice(i, i + 4).join(" "));
  return out;
}

/**
 * Beside a 1:1 chat: who this is (online or not, in words and shape; trusted since when; what
 * their card calls them), the safety code to compare with them out of band, and what the user
 * can do: rename, mute their notifications, block group invitations from them, block them.
 */
export function ContactDetails({ contact, onChanged, onClose }: {
  contact: ContactView;
  onChanged: () => void;
  /** Closes the panel; the opener gives the focus back to its Details button. */
  onClose: () => void;
}) {
  const renameButton = useRef<HTMLButtonElement>(null);
  // Renaming ends (saved, cancelled, Esc): the focus goes back to Rename, not to the page.
  const stopNaming = () => {
    setNaming(null);
    setTimeout(() => renameButton.current?.focus(), 0);
  };
  const [code, setCode] = useState<string | null>(null);
  const [naming, setNaming] = useState<string | null>(null);
  const [error, setError] = useState<UiError | null>(null);
  const snapshot = useSnapshot();
  const online = (snapshot?.node?.connected_peers ?? []).includes(contact.peer_id);
  // The saved settings come back in the snapshot: the box shows what is saved.
  const muted = snapshot?.desktop?.muted_contacts.includes(contact.peer_id) ?? false;

  useEffect(() => {
    let live = true;
    setCode(null);
    api.contactSafetyCode(contact.peer_id).then((c) => live && setCode(c), (e) => live && setError(asUiError(e)));
    return () => {
      live = false;
    };
    // A new card (another key) means another code: re-read when it changed.
  }, [contact.peer_id, contact.key_changed_at]);

  async function act(action: () => Promise<unknown>) {
    setError(null);
    try {
      await action();
      onChanged();
      return true;
    } catch (e) {
      setError(asUiError(e));
      return false;
    }
  }

  async function rename(e: FormEvent) {
    e.preventDefault();
    if (naming === null) return;
    if (await act(() => api.renameContact(contact.peer_id, naming))) stopNaming();
  }

  return (
    <aside className="details" id="contact-details" aria-label={`About ${contact.display_name}`}
      onKeyDown={(e) => {
        if (e.key === "Escape" && naming === null) onClose();
      }}>
      <div className="row details-head">
        <h3>{contact.display_name}</h3>
        <button type="button" className="link" id="close-details" onClick={onClose} aria-label="Close the details">Close</button>
      </div>
      <p id="contact-presence">
        <span className={`presence ${online ? "online" : ""}`} data-online={online} aria-hidden="true" />
        {online ? "Online now" : "Not connected right now (messages wait in the network for them)"}
      </p>
      <p className="muted" id="contact-trust">
        {contact.trusted_at !== null
          ? `Trusted since ${new Date(contact.trusted_at).toLocaleDateString()}`
          : "Waiting for their card: they have not added yours yet"}
        {contact.display_name !== contact.card_name && <> · their card says “{contact.card_name}”</>}
      </p>
      <div role="group" aria-labelledby="contact-safety-code-title">
        <h4 id="contact-safety-code-title">Safety code</h4>
        <p className="safety-code" id="contact-safety-code" data-code={code ?? ""}>
          {code === null ? "…" : rows(code).map((r, i) => <span key={i}>{r}</span>)}
        </p>
      </div>
      <p className="muted">
        Compare it with {contact.display_name} in person or on a call: the same digits on both sides mean nobody
        swapped your cards on their way.
      </p>
      {naming !== null && (
        <form className="row" id="rename-form" onSubmit={rename}
          onKeyDown={(e) => {
            if (e.key === "Escape") {
              e.stopPropagation();
              stopNaming();
            }
          }}>
          <input id="rename-input" aria-label="Your name for this contact" value={naming} onChange={(e) => setNaming(e.target.value)}
            placeholder={contact.card_name} autoFocus />
          <button type="submit">Save</button>
          <button type="button" className="secondary" onClick={stopNaming}>Cancel</button>
        </form>
      )}
      <label className="check">
        <input type="checkbox" id="mute-contact" checked={muted}
          onChange={() => void act(() => api.setContactMuted(contact.peer_id, !muted))} />
        Mute notifications from {contact.display_name}
      </label>
      <div className="stack-buttons">
        {naming === null && (
          <button type="button" className="secondary" id="rename-contact" ref={renameButton} title="Your own name for this contact"
            onClick={() => setNaming(contact.display_name)}>Rename</button>
        )}
        <button className="secondary" id="toggle-invites"
          onClick={() => void act(() => api.setInvitesBlocked(contact.peer_id, !contact.invites_blocked))}>
          {contact.invites_blocked ? "Allow group invitations" : "Block group invitations"}
        </button>
        <button className="secondary" id="toggle-block" onClick={() => void act(() => api.setBlocked(contact.peer_id, !contact.blocked))}>
          {contact.blocked ? "Unblock" : "Block"}
        </button>
      </div>
      {error && <ErrorText error={error} />}
    </aside>
  );
}
