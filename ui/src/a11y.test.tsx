// The whole window, each view in turn, checked by axe-core: no violation of any impact.
// (Colour contrast needs a real layout engine, which jsdom is not: that rule is off here.)
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import axe from "axe-core";
import { invoke } from "@tauri-apps/api/core";
import { App } from "./App";
import type { AppSnapshot } from "./bindings/AppSnapshot";
import type { ContactView } from "./bindings/ContactView";
import type { ConversationView } from "./bindings/ConversationView";
import type { MessageView } from "./bindings/MessageView";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));

const NOW = Date.now();
const BEN = "12D3KooWBen";

const snapshot: AppSnapshot = {
  profile: "ana",
  phase: "running",
  display_name: "Ana",
  block_invites: false,
  rotate_days: 7,
  bootstrap: ["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWBoot"],
  error: null,
  warnings: [],
  desktop: { do_not_disturb: false, expiry_reminder_minutes: 30, autostart: false, muted_groups: [], muted_contacts: [] },
  recovery: "not_confirmed",
  node: {
    peer_id: "12D3KooWAna",
    listen_addrs: ["/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWAna"],
    external_addrs: [],
    connected_peers: ["12D3KooWBoot"],
    routing_table_size: 1,
    stored_records: 0,
    bootstrap: { state: "succeeded", peers: 1 },
    dht_server: false,
    warnings: [],
  },
};
const ben: ContactView = {
  peer_id: BEN, display_name: "Ben", card_name: "Ben", key_changed_at: null, trusted_at: NOW - 3600_000,
  blocked: false, invites_blocked: false, unread: 1, missed: 0,
};
const benConversation: ConversationView = {
  kind: "contact", id: BEN, title: "Ben", active_at: NOW - 60_000, unread: 1, invite_expires_at: null, note: null,
  last: { sender_name: "Ben", outgoing: false, preview: "hello from ben", at: NOW - 60_000 },
};
const messages: MessageView[] = [
  { msg_id: "01", outgoing: true, body: "hi Ben", sent_at: NOW - 120_000, seq: 1, state: "delivered", reply_to: null },
  // A reply: its quote is a button that goes to the message it answers.
  { msg_id: "02", outgoing: false, body: "hello from ben", sent_at: NOW - 60_000, seq: 1, state: "received",
    reply_to: { msg_id: "01", author_peer_id: "me", author_name: "You", outgoing: true, body: "hi Ben", differs: false } },
];

const answers: Record<string, unknown> = {
  get_snapshot: snapshot,
  list_conversations: [benConversation],
  conversation: benConversation,
  list_contacts: [ben],
  list_messages: messages,
  list_groups: [],
  mark_read: null,
  backup_folder: "/home/ana/Documents",
  auto_backup: { enabled: false, folder: "/home/ana/Documents", keep: 5, last_at: null, last_error: null },
  my_card: "kiyeovo1example",
  search: [{
    kind: "contact", conversation_id: BEN, title: "Ben", msg_id: "02", sender_peer_id: BEN, sender_name: "Ben", outgoing: false,
    snippet: "hello from ben", mark_start: 0, mark_end: 5, at: NOW - 60_000,
  }],
};

async function violations(): Promise<string[]> {
  const result = await axe.run(document.body, { rules: { "color-contrast": { enabled: false } } });
  return result.violations.map((v) => `${v.id}: ${v.help} — ${v.nodes.map((n) => n.html).join(" | ")}`);
}

afterEach(cleanup);

describe("accessibility (axe-core)", () => {
  it("finds no violation in any view of the window", async () => {
    vi.mocked(invoke).mockImplementation(async (cmd: string) => {
      if (cmd in answers) return answers[cmd];
      throw { code: "invalid_input", message: `not in this test: ${cmd}`, hint: "" };
    });
    render(<App />);

    // Chats, with a conversation open.
    const entry = await waitFor(() => screen.getByRole("button", { name: /Ben/ }));
    expect(await violations()).toEqual([]);
    fireEvent.click(entry);
    await waitFor(() => expect(document.getElementById("messages")?.textContent).toContain("hello from ben"));
    expect(await violations()).toEqual([]);

    // Search results beside it.
    fireEvent.change(screen.getByLabelText("Search conversations and messages"), { target: { value: "hello" } });
    await waitFor(() => expect(document.querySelector("#search-results mark")?.textContent).toBe("hello"));
    expect(await violations()).toEqual([]);

    for (const tab of ["tab-settings", "tab-contacts", "tab-groups"]) {
      fireEvent.click(document.getElementById(tab)!);
      await waitFor(() => expect(document.querySelector(".tabs [aria-current=page]")?.id).toBe(tab));
      expect({ tab, found: await violations() }).toEqual({ tab, found: [] });
    }
  });
});
