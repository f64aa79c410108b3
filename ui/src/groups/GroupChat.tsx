import { useCallback, useEffect, useRef, useState } from "react";
import { Composer } from "../chat/Composer";
import { MessageActions } from "../chat/MessageActions";
import { Quote, type Replying } from "../chat/Quote";
import { jumpToMessage } from "../conversations/jump";
import { api, asUiError } from "../lib/api";
import type { GroupChangeView } from "../bindings/GroupChangeView";
import type { GroupChatView } from "../bindings/GroupChatView";
import type { GroupGapView } from "../bindings/GroupGapView";
import type { GroupMessageView } from "../bindings/GroupMessageView";
import type { UiError } from "../bindings/UiError";

type Item =
  | { kind: "message"; m: GroupMessageView }
  | { kind: "gap"; g: GroupGapView }
  | { kind: "change"; c: GroupChangeView };

/**
 * Where each gap goes: before the sender's message with `before_seq` (or their next one, if
 * that was deleted here), or at the end; each
 * membership change ("Ana added Eve") in place by time, before the first message sent after it.
 */
export function layout(view: GroupChatView, changes: GroupChangeView[] = []): Item[] {
  const out: Item[] = [];
  const placed = new Set<GroupGapView>();
  const pending = [...changes].sort((a, b) => a.at - b.at);
  for (const m of view.messages) {
    for (let c = pending[0]; c !== undefined && c.at <= m.sent_at; c = pending[0]) {
      out.push({ kind: "change", c });
      pending.shift();
    }
    for (const g of view.gaps) {
      // `>=`: the message it precedes may have been deleted here; the next one of theirs takes it.
      if (!placed.has(g) && g.sender_peer_id === m.sender_peer_id && g.epoch === m.epoch && m.seq >= g.before_seq) {
        out.push({ kind: "gap", g });
        placed.add(g);
      }
    }
    out.push({ kind: "message", m });
  }
  for (const g of view.gaps) if (!placed.has(g)) out.push({ kind: "gap", g });
  for (const c of pending) out.push({ kind: "change", c });
  return out;
}

export function gapText(g: GroupGapView): string {
  const n = `${g.count} ${g.count === 1 ? "message" : "messages"}`;
  return g.lost
    ? `${n} from ${g.sender_name} missed: they expired before this device came online`
    : `${n} from ${g.sender_name} missing so far`;
}

/** What a sender is told when members who are away may lose its oldest messages. */
export function evictionWarning(view: GroupChatView): string {
  return `Your offline bucket keeps your newest ${view.bucket_cap} messages (${view.bucket_fill} now). ` +
    `${view.away_members.join(", ")} ${view.away_members.length === 1 ? "is" : "are"} away: ` +
    "whatever you write beyond that before they return pushes out your oldest messages, and they will see them as missed.";
}

function ownState(m: GroupMessageView): string {
  if (m.published && m.stored) return "sent · stored";
  if (m.published) return "sent";
  if (m.stored) return "stored for members who are away";
  return "sending…";
}

/** A group's conversation. Re-reads on `group-chat-changed` for this group. */
export function GroupChat({ groupId, changes = [] }: { groupId: string; changes?: GroupChangeView[] }) {
  const [view, setView] = useState<GroupChatView | null>(null);
  const [error, setError] = useState<UiError | null>(null);
  const [replying, setReplying] = useState<Replying | null>(null);
  const list = useRef<HTMLOListElement>(null);

  // Another group's chat starts with no reply chosen.
  useEffect(() => setReplying(null), [groupId]);

  const reload = useCallback(async () => {
    try {
      const v = await api.groupChat(groupId);
      setView(v);
      if (v.messages.some((m) => !m.outgoing)) await api.markGroupRead(groupId);
    } catch (e) {
      setError(asUiError(e));
    }
  }, [groupId]);

  useEffect(() => {
    void reload();
    const off = api.onGroupChatChanged((c) => {
      if (c.group_id === groupId || c.group_id === "") void reload();
    });
    return () => {
      void off.then((f) => f());
    };
  }, [reload, groupId]);

  async function send(body: string): Promise<boolean> {
    setError(null);
    try {
      await api.sendGroupMessage(groupId, body, replying?.target ?? null);
      setReplying(null);
      await reload();
      return true;
    } catch (err) {
      setError(asUiError(err));
      return false;
    }
  }

  if (!view) return null;
  // Near the cap, members who are away start losing our oldest messages: say so, by name.
  const nearlyFull = view.bucket_fill * 10 >= view.bucket_cap * 9;
  return (
    <div className="chat group-chat" id="group-chat">
      <ol ref={list} className="messages" id="group-messages" aria-label="Group messages" aria-live="polite" aria-relevant="additions">
        {layout(view, changes).map((item, i) =>
          item.kind === "change" ? (
            <li key={`change-${i}`} className="change" data-epoch={item.c.epoch} role="note">
              <span className="muted">{new Date(item.c.at).toLocaleString()}</span> {item.c.text}
            </li>
          ) : item.kind === "gap" ? (
            <li key={`gap-${item.g.sender_peer_id}-${item.g.epoch}-${item.g.before_seq}`} className="gap" role="status">
              {gapText(item.g)}
            </li>
          ) : (
            <li key={`${item.m.sender_peer_id}/${item.m.msg_id}`} className={item.m.outgoing ? "out" : "in"} data-order-uncertain={item.m.order_uncertain} data-msg-id={item.m.msg_id} data-sender={item.m.sender_peer_id}>
              {item.m.order_uncertain && <span className="uncertain">order uncertain here: the senders' clocks disagree</span>}
              {!item.m.outgoing && <span className="author">{item.m.sender_name}</span>}
              {item.m.reply_to && (
                <Quote quote={item.m.reply_to}
                  onJump={(q) => list.current && jumpToMessage(list.current, q.msg_id, q.author_peer_id)} />
              )}
              <span className="body">{item.m.body}</span>
              <span className="meta">
                {new Date(item.m.sent_at).toLocaleTimeString()}
                {item.m.epoch === 0 ? " · window chat" : ""}
                {item.m.outgoing ? ` · ${ownState(item.m)}` : ""}
              </span>
              <MessageActions body={item.m.body} outgoing={item.m.outgoing} canDelete={!item.m.outgoing || item.m.published || item.m.stored}
                onDelete={async () => {
                  await api.deleteGroupMessage(groupId, item.m.sender_peer_id, item.m.msg_id);
                  if (replying?.target.msg_id === item.m.msg_id) setReplying(null);
                  await reload();
                }}
                onReply={view.can_send ? () => setReplying({
                  target: { msg_id: item.m.msg_id, author_peer_id: item.m.sender_peer_id },
                  author: item.m.outgoing ? "yourself" : item.m.sender_name,
                  body: item.m.body,
                }) : undefined} />
            </li>
          ),
        )}
      </ol>
      {view.can_send ? (
        <Composer id="group-message-input" formId="group-send-form" label="Message to the group" onSend={send}
          replying={replying} onCancelReply={() => setReplying(null)}
          placeholder="Message the group (Enter sends, Shift+Enter for a new line)" />
      ) : (
        <p className="muted">You cannot write in this group.</p>
      )}
      {view.can_send && (
        <p className="muted" id="bucket-fill">
          Kept for members who are away: your last {Math.min(view.bucket_fill, view.bucket_cap)} of {view.bucket_cap} messages
          {view.away_members.length > 0 ? ` · away now: ${view.away_members.join(", ")}` : ""}
        </p>
      )}
      {nearlyFull && view.away_members.length > 0 && (
        <p className="warnings" id="bucket-full" role="status">
          {evictionWarning(view)}
        </p>
      )}
      {error && <p className="error-text" role="alert">{error.message} {error.hint}</p>}
    </div>
  );
}
