import type { ConversationView } from "../bindings/ConversationView";

/** The key a conversation is stored under: kinds do not share ids, but keep them apart anyway. */
export function keyOf(c: Pick<ConversationView, "kind" | "id">): string {
  return `${c.kind}:${c.id}`;
}

/** Whether `c` matches what was typed in the filter box (title or preview, any case). */
export function matches(c: ConversationView, filter: string): boolean {
  const f = filter.trim().toLocaleLowerCase();
  if (!f) return true;
  return c.title.toLocaleLowerCase().includes(f) || (c.last?.preview.toLocaleLowerCase().includes(f) ?? false);
}

/**
 * The list as shown: invitations waiting for an answer pinned on top (the one closing first
 * first), then the most recent activity first; ties by title so the order never flickers.
 */
export function ordered(list: ConversationView[], filter = ""): ConversationView[] {
  const open = (c: ConversationView) => c.invite_expires_at !== null;
  return list
    .filter((c) => matches(c, filter))
    .sort((a, b) => {
      if (open(a) !== open(b)) return open(a) ? -1 : 1;
      if (open(a) && open(b) && a.invite_expires_at !== b.invite_expires_at) {
        return (a.invite_expires_at ?? 0) - (b.invite_expires_at ?? 0);
      }
      if (a.active_at !== b.active_at) return b.active_at - a.active_at;
      return a.title.localeCompare(b.title) || keyOf(a).localeCompare(keyOf(b));
    });
}
