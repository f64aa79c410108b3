import { useEffect, useState } from "react";
import type { SearchHit } from "../bindings/SearchHit";
import type { UiError } from "../bindings/UiError";
import { api, asUiError } from "../lib/api";
import { ErrorText } from "../lib/ErrorText";

/** Shorter queries would match nearly every message; the conversation filter covers them. */
export const MIN_QUERY = 2;
/** Typing pauses this long before the backend is asked (it opens every stored body). */
const PAUSE_MS = 200;

/** Messages in every conversation that contain what is typed in the filter box. */
export function SearchResults({ query, onOpen }: {
  query: string;
  onOpen: (hit: SearchHit) => void;
}) {
  const [hits, setHits] = useState<SearchHit[] | null>(null);
  const [error, setError] = useState<UiError | null>(null);
  const q = query.trim();

  useEffect(() => {
    setHits(null);
    setError(null);
    if (q.length < MIN_QUERY) return;
    let current = true;
    const timer = setTimeout(() => {
      api.search(q).then(
        (found) => current && setHits(found),
        (e) => current && setError(asUiError(e)),
      );
    }, PAUSE_MS);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [q]);

  if (q.length < MIN_QUERY) return null;
  return (
    <section className="search-results" id="search-results" aria-label="Messages found">
      <h3>Messages</h3>
      {error && <ErrorText error={error} />}
      {hits === null && !error && <p className="muted" role="status">Searching…</p>}
      {hits !== null && (
        <p className="sr-only" role="status">{hits.length === 0 ? "No messages found" : `${hits.length} messages found`}</p>
      )}
      {hits?.length === 0 && <p className="muted">No message contains “{q}”.</p>}
      <ul>
        {hits?.map((h) => (
          <li key={`${h.kind}:${h.conversation_id}:${h.sender_peer_id}:${h.msg_id}`}>
            <button className="hit" data-kind={h.kind} data-id={h.conversation_id} data-msg-id={h.msg_id}
              onClick={() => onOpen(h)}>
              <span className="row">
                <span className="title">{h.kind === "group" ? `#${h.title}` : h.title}</span>
                <time className="when" dateTime={new Date(h.at).toISOString()}>{new Date(h.at).toLocaleDateString()}</time>
              </span>
              <span className="preview">
                {h.sender_name}: <Marked text={h.snippet} from={h.mark_start} to={h.mark_end} />
              </span>
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** The snippet with the match in a <mark> (positions are in characters, not UTF-16 units). */
function Marked({ text, from, to }: { text: string; from: number; to: number }) {
  const chars = Array.from(text);
  return (
    <>
      {chars.slice(0, from).join("")}
      <mark>{chars.slice(from, to).join("")}</mark>
      {chars.slice(to).join("")}
    </>
  );
}
