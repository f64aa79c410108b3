import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { invoke } from "@tauri-apps/api/core";
import type { AppSnapshot } from "../bindings/AppSnapshot";
import type { ContactView } from "../bindings/ContactView";
import { ChatView } from "./ChatView";
import { setSnapshot } from "../lib/store";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));

afterEach(cleanup);

const CODE = "11111 22222 33333 44444 55555 66666 77777 88888 99999 00000 12345 67890";

const ben = {
  peer_id: "12D3KooWBen", display_name: "Ben", card_name: "Benjamin", trusted_at: Date.UTC(2026, 10, 2), blocked: false,
  invites_blocked: false, key_changed_at: null, missed: 0, unread: 0,
} as unknown as ContactView;

function online(peers: string[]) {
  setSnapshot({ node: { peer_id: "12D3KooWMe", connected_peers: peers } } as unknown as AppSnapshot);
}

describe("A contact's details", () => {
  it("open beside the chat with presence in words, trust, the safety code and the actions; Esc closes them", async () => {
    online(["12D3KooWBen"]);
    vi.mocked(invoke).mockImplementation(async (cmd: string) =>
      cmd === "contact_safety_code" ? CODE : cmd === "list_messages" ? [] : null);
    const onChanged = vi.fn();
    render(<ChatView contact={ben} changed={0} onBlocked={onChanged} />);
    const button = screen.getByRole("button", { name: "Details" });
    expect(button.getAttribute("aria-expanded")).toBe("false");
    fireEvent.click(button);
    expect(button.getAttribute("aria-expanded")).toBe("true");
    const panel = screen.getByRole("complementary", { name: "About Ben" });
    expect(panel.textContent).toContain("Online now");
    expect(panel.textContent).toContain("their card says “Benjamin”");
    // 60 digits in three rows of four groups, read out as one code.
    await screen.findByText("11111 22222 33333 44444");
    const shown = screen.getByRole("group", { name: "Safety code" }).querySelector("#contact-safety-code")!;
    expect((shown as HTMLElement).dataset.code).toBe(CODE);
    expect(Array.from(shown.children, (r) => r.textContent)).toEqual([
      "11111 22222 33333 44444", "55555 66666 77777 88888", "99999 00000 12345 67890"]);
    expect(vi.mocked(invoke)).toHaveBeenCalledWith("contact_safety_code", { peerId: "12D3KooWBen" });

    fireEvent.click(screen.getByRole("button", { name: "Block group invitations" }));
    await waitFor(() => expect(vi.mocked(invoke)).toHaveBeenCalledWith("set_invites_blocked", { peerId: "12D3KooWBen", blocked: true }));
    fireEvent.click(screen.getByRole("button", { name: "Block" }));
    await waitFor(() => expect(vi.mocked(invoke)).toHaveBeenCalledWith("set_blocked", { peerId: "12D3KooWBen", blocked: true }));
    await waitFor(() => expect(onChanged).toHaveBeenCalledTimes(2));

    // Esc in the rename box only leaves renaming; Esc again closes the panel.
    fireEvent.click(screen.getByRole("button", { name: "Rename" }));
    fireEvent.keyDown(screen.getByLabelText("Your name for this contact"), { key: "Escape" });
    expect(screen.queryByLabelText("Your name for this contact")).toBeNull();
    await waitFor(() => expect(document.activeElement).toBe(screen.getByRole("button", { name: "Rename" })));
    fireEvent.keyDown(screen.getByRole("button", { name: "Rename" }), { key: "Escape" });
    expect(screen.queryByRole("complementary")).toBeNull();
    // The focus goes back to Details, so the keyboard user is where they were.
    await waitFor(() => expect(document.activeElement).toBe(screen.getByRole("button", { name: "Details" })));
  });

  it("show whether their notifications are muted, as saved, and toggle it", async () => {
    setSnapshot({
      node: { peer_id: "12D3KooWMe", connected_peers: [] },
      desktop: { do_not_disturb: false, expiry_reminder_minutes: 30, autostart: false, muted_groups: [], muted_contacts: ["12D3KooWBen"] },
    } as unknown as AppSnapshot);
    vi.mocked(invoke).mockImplementation(async (cmd: string) =>
      cmd === "contact_safety_code" ? CODE : cmd === "list_messages" ? [] : null);
    render(<ChatView contact={ben} changed={0} onBlocked={() => {}} />);
    fireEvent.click(screen.getByRole("button", { name: "Details" }));
    const box = screen.getByRole("checkbox", { name: "Mute notifications from Ben" }) as HTMLInputElement;
    expect(box.checked).toBe(true);
    fireEvent.click(box);
    await waitFor(() => expect(vi.mocked(invoke)).toHaveBeenCalledWith("set_contact_muted", { peerId: "12D3KooWBen", muted: false }));
  });

  it("says when they are not connected, and shows a refusal in words", async () => {
    online([]);
    vi.mocked(invoke).mockImplementation(async (cmd: string) => {
      if (cmd === "contact_safety_code") throw { code: "invalid_input", message: "no such contact", hint: "Add their card first." };
      return cmd === "list_messages" ? [] : null;
    });
    render(<ChatView contact={ben} changed={0} onBlocked={() => {}} />);
    fireEvent.click(screen.getByRole("button", { name: "Details" }));
    expect(screen.getByRole("complementary").textContent).toContain("Not connected right now");
    expect((await screen.findByRole("alert")).textContent).toBe("no such contact. Add their card first.");
  });
});
