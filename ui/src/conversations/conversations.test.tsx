import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import type { ConversationView } from "../bindings/ConversationView";
import { ordered, matches } from "./order";
import { ConversationList } from "./ConversationList";
import { ChatsScreen } from "./ChatsScreen";
import { resetConversations } from "./store";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));

const NOW = Date.now();
const MIN = 60 * 1000;

function conv(over: Partial<ConversationView>): ConversationView {
  return {
    kind: "contact",
    id: "12D3KooWBen",
    title: "Ben",
    last: null,
    active_at: NOW - 60 * MIN,
    unread: 0,
    invite_expires_at: null,
    note: null,
    ...over,
  };
}

const ben = conv({
  id: "12D3KooWBen", title: "Ben", active_at: NOW - 5 * MIN, unread: 2,
  last: { sender_name: "Ben", outgoing: false, preview: "see you at eight", at: NOW - 5 * MIN },
});
const cai = conv({
  id: "12D3KooWCai", title: "Cai", active_at: NOW - 30 * MIN,
  last: { sender_name: "You", outgoing: true, preview: "thanks!", at: NOW - 30 * MIN },
});
const club = conv({
  kind: "group", id: "aa".repeat(16), title: "Book club", active_at: NOW - 1 * MIN, unread: 1,
  last: { sender_name: "Dee", outgoing: false, preview: "chapter 3 tonight", at: NOW - 1 * MIN },
});
const invite = conv({
  kind: "group", id: "bb".repeat(16), title: "Hiking", active_at: NOW - 120 * MIN,
  invite_expires_at: NOW + 5 * 3600 * 1000, note: "invitation",
});
const laterInvite = conv({
  kind: "group", id: "cc".repeat(16), title: "Choir", active_at: NOW,
  invite_expires_at: NOW + 6 * 3600 * 1000, note: "invitation",
});

afterEach(cleanup);

describe("ordering", () => {
  it("pins invitations (closing first on top), then the newest activity first", () => {
    const list = ordered([cai, ben, laterInvite, club, invite]);
    expect(list.map((c) => c.title)).toEqual(["Hiking", "Choir", "Book club", "Ben", "Cai"]);
  });

  it("filters on the title and the preview, in any case", () => {
    expect(ordered([ben, cai, club], "CHAPTER").map((c) => c.title)).toEqual(["Book club"]);
    expect(ordered([ben, cai, club], "ca").map((c) => c.title)).toEqual(["Cai"]);
    expect(matches(invite, "  ")).toBe(true);
  });
});

describe("ConversationList", () => {
  function renderList(list: ConversationView[], selected: string | null = null) {
    const onSelect = vi.fn();
    render(<ConversationList list={ordered(list)} selected={selected} filter="" onFilter={() => {}} onSelect={onSelect} />);
    return onSelect;
  }

  it("shows each conversation with its preview, unread badge and the invitation's countdown", () => {
    renderList([ben, cai, club, invite]);
    const items = screen.getAllByRole("button");
    expect(items.map((b) => b.querySelector(".title")?.textContent)).toEqual(["#Hiking", "#Book club", "Ben", "Cai"]);
    expect(items[1]!.textContent).toContain("Dee: chapter 3 tonight");
    expect(items[2]!.textContent).toContain("see you at eight");
    expect(items[3]!.textContent).toContain("You: thanks!");
    expect(screen.getByLabelText("2 unread").textContent).toBe("2");
    expect(screen.getByLabelText("1 unread").textContent).toBe("1");
    expect(screen.getByLabelText(/^invitation, 4 h 59 min left$/)).toBeTruthy();
    expect(items[0]!.textContent).toContain("invitation");
  });

  it("is labelled for assistive technology, the open one marked current", () => {
    renderList([ben, cai], "contact:12D3KooWCai");
    expect(screen.getByRole("navigation", { name: "Conversations" })).toBeTruthy();
    expect(screen.getByLabelText("Search conversations and messages")).toBeTruthy();
    const current = screen.getAllByRole("button").filter((b) => b.getAttribute("aria-current") === "true");
    expect(current.map((b) => b.dataset.id)).toEqual(["12D3KooWCai"]);
  });

  it("moves with the arrow keys", () => {
    const onSelect = renderList([ben, cai, club], "contact:12D3KooWBen");
    const [first, second] = screen.getAllByRole("button") as [HTMLElement, HTMLElement];
    fireEvent.keyDown(second, { key: "ArrowDown" });
    expect(onSelect).toHaveBeenLastCalledWith("contact:12D3KooWCai");
    fireEvent.keyDown(second, { key: "ArrowUp" });
    expect(onSelect).toHaveBeenLastCalledWith("group:" + "aa".repeat(16));
    onSelect.mockClear();
    fireEvent.keyDown(first, { key: "ArrowUp" });
    expect(onSelect).not.toHaveBeenCalled();
  });
});

describe("ChatsScreen", () => {
  type Handler = (e: { payload: unknown }) => void;
  let handlers: Record<string, Handler[]>;
  beforeEach(() => {
    resetConversations();
    handlers = {};
    vi.mocked(listen).mockImplementation((async (name: string, cb: Handler) => {
      (handlers[name] ??= []).push(cb);
      return () => {};
    }) as never);
  });

  it("opens on the list, and an event re-reads only the conversation it names", async () => {
    let benNow = ben;
    vi.mocked(invoke).mockImplementation(async (cmd: string, args?: unknown) => {
      if (cmd === "list_conversations") return [ben, cai, club];
      if (cmd === "conversation") {
        const { kind, id } = args as { kind: string; id: string };
        expect([kind, id]).toEqual(["contact", "12D3KooWBen"]);
        return benNow;
      }
      if (cmd === "list_contacts" || cmd === "list_groups") return [];
      throw new Error(`unexpected ${cmd}`);
    });
    render(<ChatsScreen />);
    await waitFor(() => expect(screen.getAllByRole("button")).toHaveLength(3));
    expect(screen.getAllByRole("button")[0]!.dataset.id).toBe("aa".repeat(16));

    // Ben writes again: his conversation moves to the top, nothing else is re-read.
    benNow = { ...ben, unread: 3, active_at: NOW, last: { ...ben.last!, preview: "on my way", at: NOW } };
    await act(async () => handlers["contact-changed"]!.forEach((h) => h({ payload: { peer_id: "12D3KooWBen" } })));
    await waitFor(() => expect(screen.getAllByRole("button")[0]!.dataset.id).toBe("12D3KooWBen"));
    expect(screen.getByLabelText("3 unread")).toBeTruthy();
    expect(vi.mocked(invoke).mock.calls.filter(([c]) => c === "list_conversations")).toHaveLength(1);
  });

  it("a window made again opens on the conversation that was open, and tells which one is", async () => {
    const remembered: unknown[] = [];
    vi.mocked(invoke).mockImplementation(async (cmd: string, args?: unknown) => {
      if (cmd === "list_conversations") return [ben, cai];
      if (cmd === "last_open") return "contact:12D3KooWCai";
      if (cmd === "remember_open") remembered.push((args as { key: unknown }).key);
      return [];
    });
    render(<ChatsScreen />);
    await waitFor(() => expect(screen.getAllByRole("button").find((b) => b.getAttribute("aria-current") === "true")?.dataset.id)
      .toBe("12D3KooWCai"));
    expect(remembered).not.toContain(null); // never "none open" before it was read back
    fireEvent.click(screen.getAllByRole("button").find((b) => b.dataset.id === "12D3KooWBen")!);
    await waitFor(() => expect(remembered.at(-1)).toBe("contact:12D3KooWBen"));
  });

  it("a notification's click (a show-conversation request) opens that contact's conversation", async () => {
    vi.mocked(invoke).mockImplementation(async (cmd: string) => {
      if (cmd === "list_conversations") return [ben, cai, club];
      if (cmd === "last_open") return "contact:12D3KooWBen";
      return [];
    });
    const current = () => screen.getAllByRole("button").find((b) => b.getAttribute("aria-current") === "true")?.dataset.id;
    const { rerender } = render(<ChatsScreen />);
    await waitFor(() => expect(current()).toBe("12D3KooWBen"));
    rerender(<ChatsScreen open={{ key: "contact:12D3KooWCai", nonce: 1 }} />);
    await waitFor(() => expect(current()).toBe("12D3KooWCai"));
    rerender(<ChatsScreen open={{ key: `group:${"aa".repeat(16)}`, nonce: 2 }} />);
    await waitFor(() => expect(current()).toBe("aa".repeat(16)));
  });

  it("an event with no id (the backend missed some) re-reads the whole list", async () => {
    let list = [ben];
    vi.mocked(invoke).mockImplementation(async (cmd: string) => (cmd === "list_conversations" ? list : []));
    render(<ChatsScreen />);
    await waitFor(() => expect(screen.getAllByRole("button")).toHaveLength(1));
    list = [ben, cai];
    await act(async () => handlers["contact-changed"]!.forEach((h) => h({ payload: { peer_id: "" } })));
    await waitFor(() => expect(screen.getAllByRole("button")).toHaveLength(2));
  });

  it("Ctrl+K goes to the filter box and Esc clears it", async () => {
    vi.mocked(invoke).mockImplementation(async (cmd: string) => (cmd === "list_conversations" ? [ben, cai] : []));
    render(<ChatsScreen />);
    await waitFor(() => expect(screen.getAllByRole("button")).toHaveLength(2));
    const box = screen.getByLabelText("Search conversations and messages") as HTMLInputElement;
    fireEvent.keyDown(document, { key: "k", ctrlKey: true });
    expect(document.activeElement).toBe(box);
    fireEvent.change(box, { target: { value: "cai" } });
    expect(screen.getAllByRole("button").map((b) => b.dataset.id)).toEqual(["12D3KooWCai"]);
    fireEvent.keyDown(box, { key: "Escape" });
    expect(box.value).toBe("");
    expect(screen.getAllByRole("button")).toHaveLength(2);
  });

  it("teaches the next step when there is nothing yet", async () => {
    vi.mocked(invoke).mockImplementation(async () => []);
    render(<ChatsScreen />);
    await waitFor(() => expect(screen.getByText(/Start by adding a contact/)).toBeTruthy());
  });
});

describe("search", () => {
  beforeEach(() => {
    resetConversations();
    vi.mocked(invoke).mockClear();
    vi.mocked(listen).mockImplementation((async () => () => {}) as never);
  });

  const hit = {
    kind: "group" as const, conversation_id: "aa".repeat(16), title: "Book club", msg_id: "0f".repeat(16), sender_peer_id: "12D3KooWDee",
    sender_name: "Dee", outgoing: false, snippet: "…we meet at the LIGHTHOUSE café", mark_start: 16, mark_end: 26, at: NOW - MIN,
  };

  it("searches messages once typing pauses, marks the match, and a result opens its conversation at the message", async () => {
    const searched: string[] = [];
    vi.mocked(invoke).mockImplementation(async (cmd: string, args?: unknown) => {
      if (cmd === "list_conversations") return [ben, club];
      if (cmd === "search") {
        searched.push((args as { query: string }).query);
        return [hit];
      }
      if (cmd === "list_contacts") return [];
      if (cmd === "list_groups") return [];
      return null;
    });
    render(<ChatsScreen />);
    await waitFor(() => expect(screen.getAllByRole("button")).toHaveLength(2));
    const box = screen.getByLabelText("Search conversations and messages") as HTMLInputElement;
    fireEvent.change(box, { target: { value: "l" } });
    fireEvent.change(box, { target: { value: "li" } });
    fireEvent.change(box, { target: { value: "lighthouse " } });
    const results = await screen.findByRole("region", { name: "Messages found" });
    await waitFor(() => expect(results.querySelector("mark")?.textContent).toBe("LIGHTHOUSE"));
    expect(searched).toEqual(["lighthouse"]);
    expect(results.textContent).toContain("Dee: …we meet at the LIGHTHOUSE café");
    expect(screen.getByRole("status").textContent).toBe("1 messages found");

    // Opening it opens the group (the results stay, to go through them); once the message is
    // rendered it is scrolled to and focused.
    fireEvent.click(results.querySelector("button.hit")!);
    expect(screen.queryByText("Pick a conversation.")).toBeNull();
    await waitFor(() => expect(vi.mocked(invoke).mock.calls.some(([c]) => c === "list_groups")).toBe(true));
    // Another member's message with the same id (ids are chosen by senders) is not the one.
    const pane = document.querySelector("main.main")!;
    const impostor = document.createElement("li");
    impostor.dataset.msgId = hit.msg_id;
    impostor.dataset.sender = "12D3KooWMallory";
    pane.appendChild(impostor);
    const li = document.createElement("li");
    li.dataset.msgId = hit.msg_id;
    li.dataset.sender = hit.sender_peer_id;
    pane.appendChild(li);
    await waitFor(() => expect(document.activeElement).toBe(li));
    expect(li.classList.contains("found")).toBe(true);
    expect(impostor.classList.contains("found")).toBe(false);
  });

  it("says when nothing is found, and does not search for one character", async () => {
    vi.mocked(invoke).mockImplementation(async (cmd: string) => (cmd === "list_conversations" ? [ben] : []));
    render(<ChatsScreen />);
    await waitFor(() => expect(screen.getAllByRole("button")).toHaveLength(1));
    const box = screen.getByLabelText("Search conversations and messages");
    fireEvent.change(box, { target: { value: "x" } });
    expect(screen.queryByRole("region", { name: "Messages found" })).toBeNull();
    fireEvent.change(box, { target: { value: "xyz" } });
    expect(await screen.findByText("No message contains “xyz”.")).toBeTruthy();
    // The list says what it did not find (names), not "nothing" while messages may be found.
    expect(screen.getByText("No conversation by that name.")).toBeTruthy();
    expect(vi.mocked(invoke).mock.calls.filter(([c]) => c === "search")).toHaveLength(1);
  });
});
