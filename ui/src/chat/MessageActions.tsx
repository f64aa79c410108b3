import { useState } from "react";
import type { UiError } from "../bindings/UiError";
import { asUiError } from "../lib/api";
import { ErrorText } from "../lib/ErrorText";

/**
 * A message's own actions, for contacts and groups alike: Reply (when the conversation takes
 * new messages), Copy, and Delete for me (asked once more, in words; a message of ours still
 * being sent cannot be deleted yet).
 */
export function MessageActions({ body, outgoing, canDelete, onDelete, onReply }: {
  body: string;
  outgoing: boolean;
  canDelete: boolean;
  onDelete: () => Promise<void>;
  onReply?: () => void;
}) {
  const [confirming, setConfirming] = useState(false);
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<UiError | null>(null);

  async function copy() {
    setError(null);
    try {
      await navigator.clipboard.writeText(body);
      setNote("Copied");
    } catch {
      setNote("Copying is not allowed here: select the text and copy it.");
    }
  }

  async function remove() {
    setError(null);
    try {
      await onDelete();
    } catch (e) {
      setError(asUiError(e));
      setConfirming(false);
    }
  }

  return (
    <div className="message-actions">
      {confirming ? (
        <span role="group" aria-label="Delete this message?">
          <span className="muted">
            Delete from this device? The others keep theirs.
            {outgoing && " The copy sent for them stays, encrypted, in your offline bucket until newer messages replace it."}
          </span>{" "}
          <button type="button" className="link danger" onClick={() => void remove()}>Delete</button>{" "}
          <button type="button" className="link" onClick={() => setConfirming(false)}>Cancel</button>
        </span>
      ) : (
        <>
          {onReply && (
            <>
              <button type="button" className="link" onClick={onReply}>Reply</button>{" "}
            </>
          )}
          <button type="button" className="link" onClick={() => void copy()}>Copy</button>
          {canDelete && (
            <>
              {" "}
              <button type="button" className="link" onClick={() => setConfirming(true)}>Delete for me</button>
            </>
          )}
        </>
      )}
      {note && <span className="muted" role="status"> {note}</span>}
      {error && <ErrorText error={error} />}
    </div>
  );
}
