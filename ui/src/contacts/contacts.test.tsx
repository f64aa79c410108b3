import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { invoke } from "@tauri-apps/api/core";
import { ContactsScreen } from "./ContactsScreen";
import { setSnapshot } from "../lib/store";
import type { ContactView } from "../bindings/ContactView";
import type { AppSnapshot } from "../bindings/AppSnapshot";

const contacts: ContactView[] = [
  { peer_id: "12D3KooWOnline", display_name: "Ana", card_name: "Ana", key_changed_at: null, trusted_at: 1_700_000_000_000, blocked: false, invites_blocked: false, unread: 2, missed: 0 },
  { peer_id: "12D3KooWAway", display_name: "Ben", card_name: "Benjamin", key_changed_at: 1_700_000_000_000, trusted_at: null, blocked: false, invites_blocked: false, unread: 0, missed: 0 },
];

vi.mock("@tauri-apps/api/core", () => ({
  invoke: vi.fn(async (cmd: string) =>
    cmd === "list_contacts" ? contacts : cmd === "contact_safety_code" ? "11111 22222 33333 44444" : []),
}));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));

afterEach(cleanup);

describe("ContactsScreen", () => {
  it("shows trust, who is online right now, and unread counts", async () => {
    setSnapshot({
      profile: "p", phase: "running", display_name: "Me", block_invites: false, rotate_days: 7, bootstrap: [], error: null, warnings: [], recovery: "confirmed",
      desktop: { do_not_disturb: false, expiry_reminder_minutes: 30, autostart: false, muted_groups: [], muted_contacts: [] },
      node: {
        peer_id: "12D3KooWMe", listen_addrs: [], external_addrs: [], connected_peers: ["12D3KooWOnline"], routing_table_size: 1,
        stored_records: 0, bootstrap: { state: "not_configured" }, dht_server: false, warnings: [],
      },
    } as AppSnapshot);
    render(<ContactsScreen />);
    await screen.findByText(/Ana/);
    const entry = (name: string) => screen.getByRole("button", { name: new RegExp(name) });
    const dot = (name: string) => entry(name).querySelector(".presence") as HTMLElement;
    expect(dot("Ana").dataset.online).toBe("true");
    expect(dot("Ben").dataset.online).toBe("false");
    // Said in words too, not by the dot's colour alone.
    expect(entry("Ana").textContent).toMatch(/^online, Ana/);
    expect(entry("Ben").textContent).toMatch(/^offline, Ben/);
    expect(screen.getByText("2").className).toContain("badge");
    expect(screen.getByText(/pending: waiting for their card/)).toBeTruthy();
    expect(screen.getByText(/trusted since/)).toBeTruthy();
  });

  it("shows a contact by the user's own name, lets it be changed, and says when their key changed", async () => {
    render(<ContactsScreen />);
    fireEvent.click(await screen.findByText("Ben"));
    expect((await screen.findByText(/Their card says/)).textContent).toContain("Benjamin");
    expect(document.getElementById("key-changed")?.textContent).toMatch(/encryption key changed/);
    fireEvent.click(screen.getByRole("button", { name: "Details" }));
    fireEvent.click(screen.getByText("Rename"));
    fireEvent.change(screen.getByLabelText("Your name for this contact"), { target: { value: "Ben from work" } });
    fireEvent.submit(document.getElementById("rename-form") as HTMLFormElement);
    await waitFor(() => expect(vi.mocked(invoke)).toHaveBeenCalledWith("rename_contact", { peerId: "12D3KooWAway", name: "Ben from work" }));
    fireEvent.click(screen.getByText("I checked with them"));
    await waitFor(() => expect(vi.mocked(invoke)).toHaveBeenCalledWith("acknowledge_key_change", { peerId: "12D3KooWAway" }));
  });
});
