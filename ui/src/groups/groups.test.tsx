import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { invoke } from "@tauri-apps/api/core";
import { GroupDetail } from "./GroupDetail";
import { NewGroup } from "./NewGroup";
import { statusText, timeLeft } from "./format";
import { evictionWarning, gapText, layout } from "./GroupChat";
import type { GroupChatView } from "../bindings/GroupChatView";
import type { GroupView } from "../bindings/GroupView";
import type { ContactView } from "../bindings/ContactView";

// The window's bridge to the backend does not exist under jsdom; the chat part asks it for
// messages, so give it an empty conversation.
vi.mock("@tauri-apps/api/core", () => ({
  invoke: vi.fn(async () => ({ messages: [], gaps: [], bucket_fill: 0, bucket_cap: 100, can_send: true, away_members: [] })),
}));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));

const HOUR = 3600 * 1000;

afterEach(cleanup);

function invite(over: Partial<GroupView> = {}): GroupView {
  return {
    group_id: "00".repeat(16),
    name: "Book club",
    creator_peer_id: "12D3KooWCreator",
    creator_name: "Ana",
    is_creator: false,
    status: "invited",
    created_at: Date.now(),
    expires_at: Date.now() + 6 * HOUR - 1000,
    epoch: 0,
    members: [
      { peer_id: "12D3KooWCreator", display_name: "Ana", status: "creator", is_me: false, is_contact: true },
      { peer_id: "12D3KooWMe", display_name: "Ben", status: "delivered", is_me: true, is_contact: true },
      { peer_id: "12D3KooWCai", display_name: "Cai", status: "accepted", is_me: false, is_contact: false },
      { peer_id: "12D3KooWDee", display_name: "Dee", status: "not_delivered", is_me: false, is_contact: false },
    ],
    can_respond: true,
    can_establish: false,
    list_mismatch: false,
    flags: [],
    unread: 0,
    safety_code: null,
    roster: [],
    is_admin: false,
    changes: [],
    add_round: null,
    can_add: 0,
    joining: false,
    ...over,
  };
}

/** An established group of Ana (admin, us when `admin`), Ben and Cai. */
function established(admin: boolean, over: Partial<GroupView> = {}): GroupView {
  return invite({
    status: "active", can_respond: false, epoch: 2, expires_at: Date.now() - HOUR,
    is_admin: admin, is_creator: admin,
    roster: [
      { peer_id: "12D3KooWCreator", display_name: "Ana", status: "admin", is_me: admin, is_contact: true },
      { peer_id: "12D3KooWMe", display_name: "Ben", status: "member", is_me: !admin, is_contact: true },
      { peer_id: "12D3KooWCai", display_name: "Cai", status: "member", is_me: false, is_contact: false },
    ],
    changes: [{ at: Date.now(), epoch: 2, text: "Ana removed Dee" }],
    ...over,
  });
}

describe("GroupDetail", () => {
  it("shows the shared roster with statuses, the countdown and the answer buttons", () => {
    render(<GroupDetail group={invite()} onChanged={() => {}} />);
    expect(document.getElementById("countdown")?.textContent).toBe("5 h 59 min left");
    const rows = Array.from(document.querySelectorAll("#roster li")).map((li) => li.textContent);
    expect(rows).toEqual(["Anacreator", "Ben (you)delivered", "Cai (not your contact)accepted", "Dee (not your contact)not yet delivered"]);
    expect(document.getElementById("accept-invite")).toBeTruthy();
    expect(document.getElementById("reject-invite")).toBeTruthy();
    expect(document.getElementById("establish-group")).toBeNull();
  });

  it("tells an acceptor the creator must establish, and says who was shown another list", async () => {
    const what = "Cai was shown a different list of people invited. Compare the safety code with them in person before you trust this group.";
    const flagged = invite({
      status: "waiting_for_creator", can_respond: false, expires_at: Date.now() - 1000, list_mismatch: true,
      flags: [{ index: 2, who_peer_id: "12D3KooWCai", who_name: "Cai", what, at: Date.now() }],
    });
    const changed = vi.fn();
    render(<GroupDetail group={flagged} onChanged={changed} />);
    expect(screen.getByText(/only the creator can/)).toBeTruthy();
    expect(screen.getByText(what)).toBeTruthy();
    expect(document.querySelector("#list-mismatch li")?.getAttribute("data-who")).toBe("12D3KooWCai");
    expect(document.getElementById("accept-invite")).toBeNull();
    // Dismissing asks the backend for that flag, by its index.
    fireEvent.click(screen.getByText("Dismiss"));
    await waitFor(() => expect(vi.mocked(invoke)).toHaveBeenCalledWith("dismiss_group_flag", { groupId: flagged.group_id, index: 2 }));
    await waitFor(() => expect(changed).toHaveBeenCalled());
  });

  it("gives the creator Establish now only when it is allowed", () => {
    const { rerender } = render(<GroupDetail group={invite({ is_creator: true, status: "inviting", can_respond: false })} onChanged={() => {}} />);
    expect((document.getElementById("establish-group") as HTMLButtonElement).disabled).toBe(true);
    rerender(<GroupDetail group={invite({ is_creator: true, status: "inviting", can_respond: false, can_establish: true })} onChanged={() => {}} />);
    expect((document.getElementById("establish-group") as HTMLButtonElement).disabled).toBe(false);
  });
});

const contact = (peer: string, name: string, trusted = true): ContactView =>
  ({ peer_id: peer, display_name: name, trusted_at: trusted ? 1 : null, blocked: false }) as unknown as ContactView;

describe("Change lines", () => {
  it("places each membership change in the conversation by time", () => {
    const msg = (body: string, sent_at: number) => ({
      msg_id: body, epoch: 1, sender_peer_id: "12D3KooWCai", sender_name: "Cai", outgoing: false, body, sent_at, seq: sent_at,
      published: true, stored: true, order_uncertain: false, reply_to: null,
    });
    const view = { messages: [msg("one", 10), msg("two", 30)], gaps: [], bucket_fill: 0, bucket_cap: 100, can_send: true, away_members: [] };
    const changes = [{ at: 40, epoch: 3, text: "Ben left" }, { at: 20, epoch: 2, text: "Ana added Eve" }];
    const order = layout(view, changes).map((i) => (i.kind === "message" ? i.m.body : i.kind === "change" ? i.c.text : "gap"));
    expect(order).toEqual(["one", "Ana added Eve", "two", "Ben left"]);
  });
});

describe("Adding members", () => {
  it("lets the admin pick contacts who are not members, at most as many as fit", async () => {
    const contacts = [contact("12D3KooWCai", "Cai"), contact("12D3KooWEve", "Eve"), contact("12D3KooWFinn", "Finn"), contact("12D3KooWGus", "Gus", false)];
    render(<GroupDetail group={established(true, { can_add: 1 })} contacts={contacts} onChanged={() => {}} />);
    fireEvent.click(document.getElementById("add-members")!);
    const offered = Array.from(document.querySelectorAll("#add-picker input")).map((i) => i.getAttribute("data-peer"));
    expect(offered).toEqual(["12D3KooWEve", "12D3KooWFinn", "12D3KooWGus"]);
    expect((document.querySelector('#add-picker input[data-peer="12D3KooWGus"]') as HTMLInputElement).disabled).toBe(true);
    fireEvent.click(document.querySelector('#add-picker input[data-peer="12D3KooWEve"]')!);
    expect((document.querySelector('#add-picker input[data-peer="12D3KooWFinn"]') as HTMLInputElement).disabled).toBe(true);
    fireEvent.click(document.getElementById("send-add")!);
    await waitFor(() => expect(vi.mocked(invoke)).toHaveBeenCalledWith("add_group_members", { groupId: "00".repeat(16), peerIds: ["12D3KooWEve"] }));
  });

  it("shows the open round with each invitee's answer and the time left", () => {
    const add_round = {
      expires_at: Date.now() + 2 * HOUR - 1000, closed: false,
      invitees: [
        { peer_id: "12D3KooWEve", display_name: "Eve", status: "accepted" as const, is_me: false, is_contact: true },
        { peer_id: "12D3KooWFinn", display_name: "Finn", status: "rejected" as const, is_me: false, is_contact: true },
      ],
    };
    render(<GroupDetail group={established(true, { add_round })} onChanged={() => {}} />);
    expect(document.getElementById("add-members")).toBeNull();
    expect(document.getElementById("add-countdown")?.textContent).toBe("(1 h 59 min left to answer)");
    const rows = Array.from(document.querySelectorAll("#add-round li")).map((li) => li.textContent);
    expect(rows).toEqual(["Eveaccepted", "Finnrejected"]);
  });

  it("tells someone invited into a running group what joining means, with no window chat", async () => {
    render(<GroupDetail group={invite({ joining: true, creator_name: "Ana" })} onChanged={() => {}} />);
    expect(screen.getByText(/invites you to join this running group/)).toBeTruthy();
    expect(statusText({ status: "waiting_for_creator", joining: true })).toBe("waiting for the admin to add you");
    expect(statusText({ status: "waiting_for_creator", joining: false })).toBe("waiting for the creator to establish the group");
    expect(document.getElementById("joining-note")?.textContent).toContain("nothing from before");
    expect(document.getElementById("accept-invite")).toBeTruthy();
    cleanup();
    vi.mocked(invoke).mockClear();
    // An acceptor of a new group's invitation has the window chat (it asks for it at once) ...
    render(<GroupDetail group={invite({ status: "accepted", can_respond: false })} onChanged={() => {}} />);
    await waitFor(() => expect(document.getElementById("group-chat")).toBeTruthy());
    expect(vi.mocked(invoke)).toHaveBeenCalledWith("group_chat", { groupId: "00".repeat(16) });
    cleanup();
    vi.mocked(invoke).mockClear();
    // ... someone who accepted an add round does not: there is none.
    render(<GroupDetail group={invite({ joining: true, status: "accepted", can_respond: false })} onChanged={() => {}} />);
    expect(vi.mocked(invoke)).not.toHaveBeenCalledWith("group_chat", expect.anything());
    expect(document.getElementById("group-chat")).toBeNull();
  });
});

describe("MemberPanel", () => {
  it("gives the admin remove, make admin, rotate and end, each change confirmed in words", async () => {
    render(<GroupDetail group={established(true)} onChanged={() => {}} />);
    const rows = Array.from(document.querySelectorAll("#current-roster li")).map((li) => li.getAttribute("data-status"));
    expect(rows).toEqual(["admin", "member", "member"]);
    expect(document.querySelectorAll(".remove-member").length).toBe(2);
    expect(await screen.findByText("Ana removed Dee")).toBeTruthy();
    fireEvent.click(document.querySelector('li[data-peer="12D3KooWCai"] .remove-member')!);
    expect(document.getElementById("confirm-change")?.textContent).toContain("Remove Cai? They get a new key no more");
    fireEvent.click(document.getElementById("confirm-ok")!);
    await waitFor(() => expect(vi.mocked(invoke)).toHaveBeenCalledWith("remove_group_member", { groupId: "00".repeat(16), peerId: "12D3KooWCai" }));
    fireEvent.click(document.getElementById("rotate-key")!);
    await waitFor(() => expect(vi.mocked(invoke)).toHaveBeenCalledWith("rotate_group_key", { groupId: "00".repeat(16) }));
  });

  it("asks an admin who leaves to hand over first, or end the group", async () => {
    render(<GroupDetail group={established(true)} onChanged={() => {}} />);
    fireEvent.click(document.getElementById("leave-group")!);
    expect(document.getElementById("confirm-change")?.textContent).toContain("Make another member the admin first");
    expect(document.getElementById("confirm-ok")?.textContent).toBe("End the group for everyone");
    fireEvent.click(document.getElementById("confirm-ok")!);
    await waitFor(() => expect(vi.mocked(invoke)).toHaveBeenCalledWith("disband_group", { groupId: "00".repeat(16) }));
  });

  it("gives a member only Leave, and a removed member the history read-only", async () => {
    const { rerender } = render(<GroupDetail group={established(false)} onChanged={() => {}} />);
    expect(document.querySelectorAll(".remove-member").length).toBe(0);
    expect(document.getElementById("rotate-key")).toBeNull();
    fireEvent.click(document.getElementById("leave-group")!);
    fireEvent.click(document.getElementById("confirm-ok")!);
    await waitFor(() => expect(vi.mocked(invoke)).toHaveBeenCalledWith("leave_group", { groupId: "00".repeat(16) }));
    rerender(<GroupDetail group={established(false, { status: "removed" })} onChanged={() => {}} />);
    expect(document.getElementById("read-only")?.textContent).toContain("You were removed");
    expect(document.getElementById("leave-group")).toBeNull();
  });
});

describe("NewGroup", () => {
  it("only lets trusted, unblocked contacts be picked, and says why not", () => {
    const contact = (name: string, over: Partial<ContactView>): ContactView => ({
      peer_id: `12D3KooW${name}`, display_name: name, card_name: name, key_changed_at: null, trusted_at: 1, blocked: false, invites_blocked: false, unread: 0, missed: 0, ...over,
    });
    render(<NewGroup contacts={[contact("Ok", {}), contact("Pending", { trusted_at: null }), contact("Blocked", { blocked: true })]}
      onCreated={() => {}} onCancel={() => {}} />);
    const box = (n: string) => document.querySelector(`input[data-peer="12D3KooW${n}"]`) as HTMLInputElement;
    expect(box("Ok").disabled).toBe(false);
    expect(box("Pending").disabled).toBe(true);
    expect(box("Blocked").disabled).toBe(true);
    expect(screen.getByText(/handshake is pending/)).toBeTruthy();
  });
});

describe("timeLeft", () => {
  it("counts down in words", () => {
    expect(timeLeft(1000 + 2 * HOUR + 5 * 60000, 1000)).toBe("2 h 5 min");
    expect(timeLeft(61_000, 0)).toBe("1 min 1 s");
    expect(timeLeft(0, 5)).toBe("closed");
  });
});

describe("group chat layout", () => {
  it("puts each gap right before the sender's message it precedes, in words", () => {
    const msg = (sender: string, seq: number, sent_at: number) => ({
      msg_id: `${sender}${seq}`, epoch: 1, sender_peer_id: sender, sender_name: sender, outgoing: false,
      body: `${sender} ${seq}`, sent_at, seq, published: false, stored: false, order_uncertain: false, reply_to: null,
    });
    const view: GroupChatView = {
      messages: [msg("ana", 51, 1), msg("ben", 1, 2), msg("ana", 52, 3)],
      gaps: [
        { sender_peer_id: "ana", sender_name: "Ana", epoch: 1, before_seq: 51, count: 50, lost: true },
        { sender_peer_id: "ben", sender_name: "Ben", epoch: 1, before_seq: 9, count: 3, lost: false },
      ],
      bucket_fill: 0, bucket_cap: 100, can_send: true, away_members: [],
    };
    const items = layout(view).map((i) => (i.kind === "gap" ? `gap:${i.g.sender_name}` : i.kind === "message" ? i.m.body : i.c.text));
    expect(items).toEqual(["gap:Ana", "ana 51", "ben 1", "ana 52", "gap:Ben"]);
    // Ana's 51 deleted here: the gap stays before her next message, not at the end.
    const without = { ...view, messages: view.messages.filter((m) => m.seq !== 51) };
    expect(layout(without).map((i) => (i.kind === "gap" ? `gap:${i.g.sender_name}` : i.kind === "message" ? i.m.body : "")))
      .toEqual(["ben 1", "gap:Ana", "ana 52", "gap:Ben"]);
    expect(gapText(view.gaps[0]!)).toBe("50 messages from Ana missed: they expired before this device came online");
    expect(gapText(view.gaps[1]!)).toBe("3 messages from Ben missing so far");
    expect(evictionWarning({ ...view, bucket_fill: 95, away_members: ["Cai"] })).toContain("Cai is away");
  });
});
