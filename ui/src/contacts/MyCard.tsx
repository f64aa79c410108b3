import { useState } from "react";
import { api, asUiError } from "../lib/api";

/**
 * Our `kiyeovo1…` card: copied to the clipboard, shown as text and as a QR code, saved to a file.
 * `titled`: as a section of its own (in Settings), with a heading and what the card is for.
 */
export function MyCard({ titled = false }: { titled?: boolean }) {
  const [card, setCard] = useState<string | null>(null);
  const [qr, setQr] = useState<string | null>(null);
  const [note, setNote] = useState<string>("");

  async function run(action: () => Promise<void>) {
    try {
      await action();
    } catch (e) {
      const err = asUiError(e);
      setNote(`${err.message} ${err.hint}`);
    }
  }

  const show = () =>
    run(async () => {
      const text = await api.myCard();
      setCard(text);
      try {
        await navigator.clipboard.writeText(text);
        setNote("Copied to the clipboard. Send it to your contact.");
      } catch {
        setNote("Select the text and copy it to send it to your contact.");
      }
    });
  const showQr = () =>
    run(async () => {
      setQr(qr ? null : await api.myCardQr());
    });
  const save = () =>
    run(async () => {
      const path = await api.saveMyCard();
      setNote(`Saved to ${path}.`);
    });

  return (
    <section className="card" aria-labelledby={titled ? "my-card-title" : undefined}>
      {titled && (
        <>
          <h2 id="my-card-title">Your contact card</h2>
          <p className="muted">
            Give it to someone you trust (in person, or over a channel you trust), and add theirs under Contacts.
            It holds your name, your keys and where to reach you; nothing secret.
          </p>
        </>
      )}
      <div className="row">
        <button id="my-card-button" onClick={() => void show()}>My contact card</button>
        <button className="secondary" id="my-card-qr" onClick={() => void showQr()}>QR</button>
        <button className="secondary" id="my-card-save" onClick={() => void save()}>Save</button>
      </div>
      {card && <textarea id="my-card" readOnly rows={4} value={card} onFocus={(e) => e.target.select()} />}
      {qr && <img id="my-card-qr-image" className="qr" alt="Your contact card as a QR code" src={`data:image/svg+xml;utf8,${encodeURIComponent(qr)}`} />}
      {note && <p className="muted" id="my-card-note">{note}</p>}
    </section>
  );
}
