import type { UiError } from "../bindings/UiError";

export function ErrorScreen({ error, profile }: { error: UiError; profile?: string }) {
  return (
    <main className="centered">
      <section className="card error" role="alert" id="startup-error" data-code={error.code}>
        <h1>Kiyeovo could not start{profile ? ` (profile “${profile}”)` : ""}</h1>
        <p className="message">{error.message}</p>
        <p className="hint">
          <strong>What you can do: </strong>
          {error.hint}
        </p>
      </section>
    </main>
  );
}
