import { useState, type FormEvent } from "react";
import type { UiError } from "../bindings/UiError";
import { asUiError } from "./api";

/** A form submit that calls the backend: tracks "busy" and turns a rejection into words. */
export function useSubmit(action: () => Promise<void>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<UiError | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(asUiError(err));
    } finally {
      setBusy(false);
    }
  }

  return { busy, error, submit };
}
