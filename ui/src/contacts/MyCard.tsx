import { useState } from "react";
import { api, asUiError } from "../lib/api";

/** Shows our `kiyeovo1…` card so it can be copied and sent to someone. */
export function MyCard() {
  const [card, setCard] = useState<string | null>(null);
  const [note, setNote] = useState<string>("");

  async function show() {
    try {
      const text = await api.myCard();
      setCard(text);
      try {
        await navigator.clipboard.writeText(text);
        setNote("Copied to the clipboard. Send it to your contact.");
      } catch {
        setNote("Select the text and copy it to send it to your contact.");
      }
    } catch (e) {
      const err = asUiError(e);
      setNote(`${err.message} ${err.hint}`);
    }
  }

  return (
    <div className="card">
      <button id="my-card-button" onClick={() => void show()}>My contact card</button>
      {card && <textarea id="my-card" readOnly rows={4} value={card} onFocus={(e) => e.target.select()} />}
      {note && <p className="muted">{note}</p>}
    </div>
  );
}
