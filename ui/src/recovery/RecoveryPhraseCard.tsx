import { useEffect, useState } from "react";
import type { RecoveryStatus } from "../bindings/RecoveryStatus";
import { api } from "../lib/api";
import { useSubmit } from "../lib/useSubmit";

/** Three different positions (1-based) to ask back, in order. */
export function pickPositions(count: number, random: () => number = Math.random): number[] {
  const all = Array.from({ length: count }, (_, i) => i + 1);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const swap = all[i]!;
    all[i] = all[j]!;
    all[j] = swap;
  }
  return all.slice(0, 3).sort((a, b) => a - b);
}

/**
 * The recovery phrase in the settings view: shown on request, then three of its words asked
 * back. Until that is done the card (and a badge on the tab) reminds the user.
 */
export function RecoveryPhraseCard({ status }: { status: RecoveryStatus }) {
  const [words, setWords] = useState<string[] | null>(null);
  const [asking, setAsking] = useState<number[] | null>(null);
  const [answers, setAnswers] = useState<Record<number, string>>({});
  // The words leave the page when the window is hidden (closed to the tray, minimised).
  useEffect(() => {
    const hide = () => {
      if (document.hidden) setWords(null);
    };
    document.addEventListener("visibilitychange", hide);
    return () => document.removeEventListener("visibilitychange", hide);
  }, []);
  const show = useSubmit(async () => {
    setWords(await api.recoveryPhrase());
    setAsking(null);
  });
  const confirm = useSubmit(async () => {
    await api.confirmRecoveryPhrase(
      (asking ?? []).map((position) => ({ position, word: answers[position] ?? "" })),
    );
    setWords(null);
    setAsking(null);
    setAnswers({});
  });

  if (status === "no_phrase") {
    return (
      <section className="card" id="recovery-phrase" data-status={status}>
        <h2>Recovery</h2>
        <p className="muted">
          This profile was made before recovery phrases existed, so its keys cannot be written as
          words. Keep a backup of your system keyring (the “kiyeovo” entries) and of the data
          directory to move it to another computer.
        </p>
      </section>
    );
  }
  return (
    <section
      className={status === "confirmed" ? "card" : "card attention"}
      id="recovery-phrase"
      data-status={status}
      aria-labelledby="recovery-phrase-title"
    >
      <h2 id="recovery-phrase-title">Recovery phrase</h2>
      {status === "confirmed" ? (
        <p className="muted">Written down. These 24 words bring your identity back on a new computer.</p>
      ) : (
        <p>
          <strong>Write down your recovery phrase.</strong> If this computer is lost, these 24 words
          are the only way to get your identity back. Keep them on paper, away from this computer.
        </p>
      )}
      {words === null ? (
        <form onSubmit={show.submit}>
          <button type="submit" id="show-phrase" disabled={show.busy}>
            {status === "confirmed" ? "Show it again" : "Show my recovery phrase"}
          </button>
        </form>
      ) : asking === null ? (
        <>
          <ol className="phrase" id="phrase-words" aria-label="Your recovery phrase, 24 words in order">
            {words.map((w, i) => (
              <li key={i}>{w}</li>
            ))}
          </ol>
          <div className="row">
            {status !== "confirmed" && (
              <button type="button" id="phrase-written" onClick={() => setAsking(pickPositions(words.length))}>
                I wrote it down
              </button>
            )}
            <button type="button" id="phrase-hide" onClick={() => setWords(null)}>
              Hide
            </button>
          </div>
        </>
      ) : (
        <form onSubmit={confirm.submit} id="phrase-check">
          <p>To be sure it is written down right, type these words from your paper:</p>
          {asking.map((position) => (
            <div className="row" key={position}>
              <label htmlFor={`phrase-word-${position}`}>Word {position}</label>
              <input
                id={`phrase-word-${position}`}
                autoComplete="off"
                spellCheck={false}
                value={answers[position] ?? ""}
                onChange={(e) => setAnswers({ ...answers, [position]: e.target.value })}
              />
            </div>
          ))}
          <div className="row">
            <button type="submit" id="phrase-confirm" disabled={confirm.busy}>
              Check
            </button>
            <button type="button" onClick={() => setAsking(null)}>
              Show the phrase again
            </button>
          </div>
        </form>
      )}
      {(show.error ?? confirm.error) && (
        <p className="error-text" role="alert" id="phrase-error">
          {(show.error ?? confirm.error)!.message} {(show.error ?? confirm.error)!.hint}
        </p>
      )}
    </section>
  );
}
