import { useState } from "react";
import type { ContactView } from "../bindings/ContactView";
import { api } from "../lib/api";
import { ErrorText } from "../lib/ErrorText";
import { useSubmit } from "../lib/useSubmit";
import { MyCard } from "../contacts/MyCard";
import { AddContact } from "../contacts/AddContact";

const STEPS = ["Choose your name", "Share your card", "Add your first contact"] as const;

/**
 * A new identity's first steps, after its recovery phrase: a name contacts will see, the card
 * to send them, and a contact's card to paste. Each step can be left for later; the
 * conversation list says what is still to do.
 */
export function Onboarding({ name, onDone }: { name: string; onDone: () => void }) {
  const [step, setStep] = useState(0);
  const [draft, setDraft] = useState(name);
  const [added, setAdded] = useState<ContactView | null>(null);
  const { busy, error, submit } = useSubmit(async () => {
    if (draft.trim() !== "" && draft.trim() !== name) await api.setDisplayName(draft);
    setStep(1);
  });

  return (
    <main className="page onboarding" id="onboarding" aria-labelledby="onboarding-title">
      <header>
        <p className="muted" id="onboarding-step">Step {step + 1} of {STEPS.length}</p>
        <h1 id="onboarding-title">{STEPS[step]}</h1>
      </header>
      {step === 0 && (
        <form className="card" id="onboarding-name-form" onSubmit={submit}>
          <label htmlFor="onboarding-name">Your contacts see this name next to your messages.</label>
          <input id="onboarding-name" value={draft} maxLength={64} placeholder="Your name" autoFocus
            onChange={(e) => setDraft(e.target.value)} />
          {error && <ErrorText error={error} />}
          <div className="row end">
            <button type="submit" id="onboarding-next" disabled={busy}>{busy ? "Saving…" : "Next"}</button>
          </div>
        </form>
      )}
      {step === 1 && (
        <>
          <p>
            Your contact card is how people add you: copy it (or show the QR code, or save it as a
            file) and send it to them any way you like. It holds no secret.
          </p>
          <MyCard />
          <div className="row end">
            <button type="button" className="secondary" onClick={() => setStep(0)}>Back</button>
            <button type="button" id="onboarding-next" onClick={() => setStep(2)}>Next</button>
          </div>
        </>
      )}
      {step === 2 && (
        <>
          <p>
            Paste the card a contact sent you. You can chat once both of you have added each
            other's card.
          </p>
          <AddContact onAdded={setAdded} />
          {added && (
            <p role="status" id="onboarding-added">
              {added.display_name} is added. They show as trusted once they have added your card too.
            </p>
          )}
          <div className="row end">
            <button type="button" className="secondary" onClick={() => setStep(1)}>Back</button>
            <button type="button" id="onboarding-done" onClick={onDone}>{added ? "Start chatting" : "Later"}</button>
          </div>
        </>
      )}
      {step < 2 && (
        <p>
          <button type="button" className="link" id="onboarding-skip" onClick={onDone}>Skip these steps</button>
        </p>
      )}
    </main>
  );
}
