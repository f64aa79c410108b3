import { useCallback, useEffect, useRef, useState } from "react";
import { Composer } from "./Composer";
import { MessageActions } from "./MessageActions";
import { Quote, type Replying } from "./Quote";
import { ContactDetails } from "./ContactDetails";
import { jumpToMessage } from "../conversations/jump";
import { useSnapshot } from "../lib/store";
import { api, asUiError } from "../lib/api";
import type { ContactView } from "../bindings/ContactView";
import type { MessageView } from "../bindings/MessageView";
import type { MessageState } from "../bindings/MessageState";
import type { UiError } from "../bindings/UiError";

const STATE_TEXT: Record<MessageState, string> = {
  pending: "saving…",
  stored: "stored for them",
  sent: "sent",
  delivered: "delivered",
  received: "",
};

/** One conversation. `changed` bumps whenever the backend reports news for this contact. */
export function ChatView({ contact, changed, onBlocked }: { contact: ContactView; changed: number; onBlocked: () => void }) {
  const [messages, setMessages] = useState<MessageView[]>([]);
  const [error, setError] = useState<UiError | null>(null);
  const [replying, setReplying] = useState<Replying | null>(null);
  const list = useRef<HTMLOListElement>(null);
  // Our own peer id names us as the author when we answer one of our own messages.
  const me = useSnapshot()?.node?.peer_id ?? null;

  // Another contact's chat starts with no reply chosen.
  useEffect(() => setReplying(null), [contact.peer_id]);

  const reload = useCallback(async () => {
    try {
      const list = await api.listMessages(contact.peer_id);
      setMessages(list);
      if (list.some((m) => !m.outgoing) && contact.unread > 0) {
        await api.markRead(contact.peer_id);
      }
    } catch (e) {
      setError(asUiError(e));
    }
  }, [contact.peer_id, contact.unread]);

  useEffect(() => {
    void reload();
  }, [reload, changed]);

  async function send(body: string): Promise<boolean> {
    setError(null);
    try {
      await api.sendMessage(contact.peer_id, body, replying?.target ?? null);
      setReplying(null);
      await reload();
      return true;
    } catch (err) {
      setError(asUiError(err));
      return false;
    }
  }

  // The details panel (who, safety code, actions) opens beside the chat on request.
  const [details, setDetails] = useState(false);
  const detailsButton = useRef<HTMLButtonElement>(null);
  const closeDetails = () => {
    setDetails(false);
    setTimeout(() => detailsButton.current?.focus(), 0);
  };

  async function acknowledgeKeyChange() {
    try {
      await api.acknowledgeKeyChange(contact.peer_id);
      onBlocked();
    } catch (err) {
      setError(asUiError(err));
    }
  }

  return (
    <div className={details ? "chat-layout with-details" : "chat-layout"}>
    <div className="chat" id="chat">
      <header className="chat-header">
        <h2>
          {contact.display_name}
          {contact.blocked && <span className="muted"> (blocked)</span>}
        </h2>
        <button type="button" className="secondary" id="contact-details-button" ref={detailsButton} aria-expanded={details}
          aria-controls="contact-details" onClick={() => setDetails(!details)}>Details</button>
      </header>
      {contact.display_name !== contact.card_name && (
        <p className="muted" id="card-name">Their card says “{contact.card_name}”.</p>
      )}
      {contact.key_changed_at !== null && (
        <div className="warnings" role="alert" id="key-changed">
          <p>
            {contact.display_name}'s encryption key changed on {new Date(contact.key_changed_at).toLocaleString()} (a new card with another key was added).
            Messages wait until you both complete the handshake again. If they did not reinstall or reset Kiyeovo, someone may be impersonating them: check with them in person or on a call.
          </p>
          <button className="secondary" id="ack-key-change" onClick={() => void acknowledgeKeyChange()}>I checked with them</button>
        </div>
      )}
      {contact.missed > 0 && (
        <p className="warnings" role="status">{contact.missed} earlier messages were missed (they expired before this device came online).</p>
      )}
      <ol ref={list} className="messages" id="messages" aria-label={`Messages with ${contact.display_name}`} aria-live="polite" aria-relevant="additions">
        {messages.map((m) => (
          <li key={m.msg_id} className={m.outgoing ? "out" : "in"} data-state={m.state} data-msg-id={m.msg_id}>
            {m.reply_to && (
              <Quote quote={m.reply_to} onJump={(q) => list.current && jumpToMessage(list.current, q.msg_id)} />
            )}
            <span className="body">{m.body}</span>
            <span className="meta">
              {new Date(m.sent_at).toLocaleTimeString()} {m.outgoing ? STATE_TEXT[m.state] : ""}
            </span>
            <MessageActions body={m.body} outgoing={m.outgoing} canDelete={m.state !== "pending"} onDelete={async () => {
              await api.deleteMessage(contact.peer_id, m.msg_id);
              if (replying?.target.msg_id === m.msg_id) setReplying(null);
              await reload();
            }} onReply={m.outgoing && me === null ? undefined : () => setReplying({
              target: { msg_id: m.msg_id, author_peer_id: m.outgoing && me !== null ? me : contact.peer_id },
              author: m.outgoing ? "yourself" : contact.display_name,
              body: m.body,
            })} />
          </li>
        ))}
      </ol>
      <Composer id="message-input" formId="send-form" label={`Message to ${contact.display_name}`} onSend={send}
        replying={replying} onCancelReply={() => setReplying(null)}
        placeholder={contact.trusted_at === null ? "Waiting for the handshake…" : "Write a message (Enter sends, Shift+Enter for a new line)"} />
      {error && <p className="error-text" role="alert">{error.message} {error.hint}</p>}
    </div>
    {details && <ContactDetails contact={contact} onChanged={onBlocked} onClose={closeDetails} />}
    </div>
  );
}
