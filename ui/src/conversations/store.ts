// The conversation list's store, keyed by conversation: loaded once, then each backend event
// re-reads only the conversation it names (never the whole list).
import { useSyncExternalStore } from "react";
import type { ConversationView } from "../bindings/ConversationView";
import type { ConversationKind } from "../bindings/ConversationKind";
import { api, asUiError } from "../lib/api";
import type { UiError } from "../bindings/UiError";
import { keyOf } from "./order";

type State = { items: Map<string, ConversationView>; error: UiError | null; loaded: boolean };

let state: State = { items: new Map(), error: null, loaded: false };
const listeners = new Set<() => void>();

function set(next: Partial<State>) {
  state = { ...state, ...next };
  listeners.forEach((l) => l());
}

/** Re-reads one conversation; drops it if it is gone. An empty id is the backend saying it
 * missed events (its queue lagged): everything is re-read. */
export async function refresh(kind: ConversationKind, id: string) {
  if (id === "") return reloadAll();
  try {
    const c = await api.conversation(kind, id);
    const items = new Map(state.items);
    if (c) items.set(keyOf(c), c);
    else items.delete(keyOf({ kind, id }));
    set({ items });
  } catch (e) {
    set({ error: asUiError(e) });
  }
}

/** Reads the whole list (at start, and after something that adds entries in bulk). */
export async function reloadAll() {
  try {
    const list = await api.listConversations();
    set({ items: new Map(list.map((c) => [keyOf(c), c])), error: null, loaded: true });
  } catch (e) {
    set({ error: asUiError(e), loaded: true });
  }
}

let started: Promise<void> | null = null;
/** Subscribes to the events first, then reads the list, so no change is missed. */
export function startConversations(): Promise<void> {
  if (!started) {
    started = (async () => {
      await api.onContactChanged((c) => void refresh("contact", c.peer_id));
      await api.onGroupChanged((g) => void refresh("group", g.group_id));
      await api.onGroupChatChanged((g) => void refresh("group", g.group_id));
      await reloadAll();
    })();
  }
  return started;
}

/** For tests: forget everything. */
export function resetConversations() {
  started = null;
  state = { items: new Map(), error: null, loaded: false };
}

export function useConversations(): State {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => state,
  );
}
