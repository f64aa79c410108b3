import { useRef, type KeyboardEvent, type Ref } from "react";
import type { ConversationView } from "../bindings/ConversationView";
import { useNow } from "../lib/useNow";
import { timeLeft } from "../groups/format";
import { keyOf } from "./order";

/** "14:05" today, "Mon" this week, else "3 Dec". */
export function when(at: number, now: number): string {
  const d = new Date(at);
  const today = new Date(now);
  if (d.toDateString() === today.toDateString()) {
    return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  }
  if (now - at < 6 * 24 * 3600 * 1000) return d.toLocaleDateString(undefined, { weekday: "short" });
  return d.toLocaleDateString(undefined, { day: "numeric", month: "short" });
}

/** The left column: a filter box and every conversation, already ordered. */
export function ConversationList({ list, selected, filter, onFilter, onSelect, filterRef }: {
  list: ConversationView[];
  selected: string | null;
  filter: string;
  onFilter: (f: string) => void;
  onSelect: (key: string) => void;
  filterRef?: Ref<HTMLInputElement>;
}) {
  const now = useNow();
  const buttons = useRef<(HTMLButtonElement | null)[]>([]);

  // Up and down move through the list (and open what they land on), like a messenger's.
  function onKeyDown(e: KeyboardEvent, i: number) {
    const to = e.key === "ArrowDown" ? i + 1 : e.key === "ArrowUp" ? i - 1 : -1;
    const target = list[to];
    if (!target) return;
    e.preventDefault();
    onSelect(keyOf(target));
    buttons.current[to]?.focus();
  }

  return (
    <div className="conversations">
      <label className="field filter">
        <span className="sr-only">Search conversations and messages</span>
        <input id="conversation-filter" type="search" placeholder="Search (Ctrl+K)" value={filter}
          ref={filterRef} onChange={(e) => onFilter(e.target.value)} />
      </label>
      <nav aria-label="Conversations">
        <ul className="conversation-list" id="conversation-list">
          {list.length === 0 && (
            <li className="muted">{filter ? "No conversation by that name." : "No conversations yet."}</li>
          )}
          {list.map((c, i) => {
            const key = keyOf(c);
            const invite = c.invite_expires_at !== null;
            return (
              <li key={key}>
                <button ref={(el) => { buttons.current[i] = el; }}
                  className={`conversation ${key === selected ? "selected" : ""}`}
                  aria-current={key === selected ? "true" : undefined}
                  data-kind={c.kind} data-id={c.id} data-unread={c.unread}
                  onClick={() => onSelect(key)} onKeyDown={(e) => onKeyDown(e, i)}>
                  <span className="row">
                    <span className="title">
                      {c.kind === "group" && <span className="kind" aria-label="group">#</span>}
                      {c.title}
                    </span>
                    {invite ? (
                      <span className="badge invite" aria-label={`invitation, ${timeLeft(c.invite_expires_at ?? 0, now)} left`}>
                        {timeLeft(c.invite_expires_at ?? 0, now)}
                      </span>
                    ) : c.last ? (
                      <time className="when" dateTime={new Date(c.last.at).toISOString()}>{when(c.last.at, now)}</time>
                    ) : null}
                  </span>
                  <span className="row">
                    <span className="preview">
                      {c.last ? `${c.last.outgoing || c.kind === "group" ? `${c.last.sender_name}: ` : ""}${c.last.preview}` : (c.note ?? "No messages yet")}
                    </span>
                    {c.unread > 0 && !invite && (
                      <span className="badge unread" aria-label={`${c.unread} unread`}>{c.unread}</span>
                    )}
                  </span>
                  {c.note && c.last && <span className="note">{c.note}</span>}
                </button>
              </li>
            );
          })}
        </ul>
      </nav>
    </div>
  );
}
