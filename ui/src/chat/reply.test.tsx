import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { invoke } from "@tauri-apps/api/core";
import type { ContactView } from "../bindings/ContactView";
import type { GroupChatView } from "../bindings/GroupChatView";
import type { GroupMessageView } from "../bindings/GroupMessageView";
import type { MessageView } from "../bindings/MessageView";
import { ChatView } from "./ChatView";
import { Quote, replyPreview } from "./Quote";
import { GroupChat } from "../groups/GroupChat";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));

const BEN = "12D3KooWBen";
const NOW = Date.now();

const ben = {
  peer_id: BEN, display_name: "Ben", card_name: "Ben", trusted_at: 1, blocked: false, invites_blocked: false,
  key_changed_at: null, missed: 0, unread: 0,
} as unknown as ContactView;

const asked: MessageView = { msg_id: "01", outgoing: false, body: "lunch at one?", sent_at: NOW - 60_000, seq: 1, state: "received", reply_to: null };
const answer: MessageView = {
  msg_id: "02", outgoing: true, body: "yes", sent_at: NOW, seq: 1, state: "sent",
  reply_to: { msg_id: "01", author_peer_id: BEN, author_name: "Ben", outgoing: false, body: "lunch at one?", differs: false },
};

let sent: Record<string, unknown>[] = [];
function answering(answers: Record<string, unknown>) {
  sent = [];
  vi.mocked(invoke).mockImplementation(async (cmd: string, args?: unknown) => {
    if (typeof cmd === "string" && cmd.startsWith("send_")) sent.push({ cmd, ...(args as object) });
    return answers[cmd] ?? null;
  });
}

beforeEach(() => vi.mocked(invoke).mockReset());
afterEach(cleanup);

describe("Quote", () => {
  it("shows who wrote the answered message and its start, and goes there when clicked", () => {
    const onJump = vi.fn();
    render(<Quote quote={answer.reply_to!} onJump={onJump} />);
    const button = screen.getByRole("button", { name: /In reply to Ben: lunch at one\?/ });
    expect(button.textContent).toBe("Benlunch at one?");
    fireEvent.click(button);
    expect(onJump).toHaveBeenCalledWith(answer.reply_to);
  });

  it("says so, without a link, when the answered message is not on this device, or reads differently here", () => {
    render(<Quote quote={{ ...answer.reply_to!, body: null }} onJump={() => {}} />);
    expect(screen.queryByRole("button")).toBeNull();
    expect(document.querySelector(".quote.missing")!.textContent).toBe("BenOriginal message not available on this device");
    cleanup();
    render(<Quote quote={{ ...answer.reply_to!, body: null, differs: true }} onJump={() => {}} />);
    expect(screen.queryByRole("button")).toBeNull();
    expect(document.querySelector(".quote.missing")!.textContent).toContain("written to another version of this message");
  });

  it("shows a long answered message as one short line above the box", () => {
    expect(replyPreview("a\n\nb  c")).toBe("a b c");
    const long = replyPreview("x".repeat(500));
    expect(long.length).toBe(121);
    expect(long.endsWith("…")).toBe(true);
    // Cut by characters: an emoji is never split in half.
    expect(Array.from(replyPreview("🙂".repeat(130)))).toEqual([...Array(120).fill("🙂"), "…"]);
  });
});

describe("Replying in a 1:1 chat", () => {
  it("Reply shows the message above the box; Enter sends the reply with its target; the bar goes", async () => {
    answering({ list_messages: [asked], send_message: answer });
    render(<ChatView contact={ben} changed={0} onBlocked={() => {}} />);
    const box = screen.getByLabelText("Message to Ben") as HTMLTextAreaElement;
    fireEvent.click(await screen.findByRole("button", { name: "Reply" }));
    expect(screen.getByRole("status").textContent).toContain("Replying to Ben");
    expect(screen.getByRole("status").textContent).toContain("lunch at one?");
    expect(document.activeElement).toBe(box);
    fireEvent.change(box, { target: { value: "yes" } });
    fireEvent.keyDown(box, { key: "Enter" });
    await waitFor(() => expect(sent).toEqual([
      { cmd: "send_message", peerId: BEN, body: "yes", replyTo: { msg_id: "01", author_peer_id: BEN } },
    ]));
    await waitFor(() => expect(document.getElementById("message-input-replying")).toBeNull());
  });

  it("Esc drops the reply and keeps the draft; a plain message has no target", async () => {
    answering({ list_messages: [asked], send_message: asked });
    render(<ChatView contact={ben} changed={0} onBlocked={() => {}} />);
    const box = screen.getByLabelText("Message to Ben") as HTMLTextAreaElement;
    fireEvent.click(await screen.findByRole("button", { name: "Reply" }));
    fireEvent.change(box, { target: { value: "hm" } });
    fireEvent.keyDown(box, { key: "Escape" });
    expect(document.getElementById("message-input-replying")).toBeNull();
    expect(box.value).toBe("hm");
    fireEvent.keyDown(box, { key: "Enter" });
    await waitFor(() => expect(sent).toEqual([{ cmd: "send_message", peerId: BEN, body: "hm", replyTo: null }]));
  });

  it("a reply shows its quote above it, and the quote goes to the answered message", async () => {
    answering({ list_messages: [asked, answer] });
    render(<ChatView contact={ben} changed={0} onBlocked={() => {}} />);
    const quote = await screen.findByRole("button", { name: /In reply to Ben/ });
    const reply = quote.closest("li")!;
    expect(reply.querySelector(".body")!.textContent).toBe("yes");
    fireEvent.click(quote);
    const original = document.querySelector<HTMLElement>('[data-msg-id="01"]')!;
    await waitFor(() => expect(document.activeElement).toBe(original));
  });
});

describe("Replying in a group", () => {
  const msg = (over: Partial<GroupMessageView>): GroupMessageView => ({
    msg_id: "m1", epoch: 1, sender_peer_id: "12D3KooWDee", sender_name: "Dee", outgoing: false, body: "chapter 3 tonight",
    sent_at: NOW - 60_000, seq: 1, published: false, stored: false, order_uncertain: false, reply_to: null, ...over,
  });
  // Cai used the same message id as Dee: the quote names Dee's, and the jump goes to Dee's.
  const view: GroupChatView = {
    messages: [
      msg({}),
      msg({ sender_peer_id: "12D3KooWCai", sender_name: "Cai", body: "same id, other sender", sent_at: NOW - 30_000 }),
      msg({
        msg_id: "m2", sender_peer_id: "12D3KooWCai", sender_name: "Cai", body: "I will bring the tea", sent_at: NOW,
        reply_to: { msg_id: "m1", author_peer_id: "12D3KooWDee", author_name: "Dee", outgoing: false, body: "chapter 3 tonight", differs: false },
      }),
    ],
    gaps: [], bucket_fill: 0, bucket_cap: 100, can_send: true, away_members: [],
  };

  it("answers a member's message by its sender and id, and the quote goes to that sender's message", async () => {
    answering({ group_chat: view, send_group_message: view.messages[2] });
    render(<GroupChat groupId={"aa".repeat(16)} />);
    fireEvent.click(await screen.findByRole("button", { name: /In reply to Dee/ }));
    const dees = document.querySelector<HTMLElement>('[data-sender="12D3KooWDee"]')!;
    await waitFor(() => expect(document.activeElement).toBe(dees));

    fireEvent.click(screen.getAllByRole("button", { name: "Reply" })[0]!);
    expect(screen.getByRole("status").textContent).toContain("Replying to Dee");
    const box = screen.getByLabelText("Message to the group");
    fireEvent.change(box, { target: { value: "me too" } });
    fireEvent.keyDown(box, { key: "Enter" });
    await waitFor(() => expect(sent).toEqual([{
      cmd: "send_group_message", groupId: "aa".repeat(16), body: "me too",
      replyTo: { msg_id: "m1", author_peer_id: "12D3KooWDee" },
    }]));
  });

  it("offers no Reply where the user cannot write", async () => {
    answering({ group_chat: { ...view, can_send: false } });
    render(<GroupChat groupId={"aa".repeat(16)} />);
    await screen.findAllByRole("button", { name: "Copy" });
    expect(screen.queryByRole("button", { name: "Reply" })).toBeNull();
  });
});
