import type { UiError } from "../bindings/UiError";

/** A message as a sentence: the backend's messages are lower-case clauses without a full stop. */
export function sentence(text: string): string {
  const t = text.trim();
  return t === "" || /[.!?…]$/.test(t) ? t : `${t}.`;
}

/** An error in words, then what to do next. */
export function ErrorText({ error, id }: { error: UiError; id?: string }) {
  return (
    <p className="error-text" role="alert" id={id}>
      {sentence(error.message)} {error.hint}
    </p>
  );
}
