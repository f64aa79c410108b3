import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { invoke } from "@tauri-apps/api/core";
import { DesktopSettingsCard } from "./DesktopSettingsCard";
import { GroupDetail } from "../groups/GroupDetail";
import { setSnapshot } from "../lib/store";
import type { AppSnapshot } from "../bindings/AppSnapshot";
import type { DesktopSettings } from "../bindings/DesktopSettings";
import type { GroupView } from "../bindings/GroupView";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));
const mockedInvoke = vi.mocked(invoke);

afterEach(() => {
  cleanup();
  mockedInvoke.mockReset();
});

const defaults: DesktopSettings = { do_not_disturb: false, expiry_reminder_minutes: 30, autostart: false, muted_groups: [], muted_contacts: [] };

describe("DesktopSettingsCard", () => {
  it("saves each change with the other settings kept", async () => {
    mockedInvoke.mockImplementation(async (_cmd, args) => (args as { settings: DesktopSettings }).settings);
    render(<DesktopSettingsCard current={{ ...defaults, muted_groups: ["aa"], muted_contacts: ["12D3KooWBen"] }} />);
    expect((document.getElementById("reminder-minutes") as HTMLSelectElement).value).toBe("30");
    fireEvent.click(document.getElementById("do-not-disturb")!);
    await waitFor(() => expect(mockedInvoke).toHaveBeenCalledTimes(1));
    expect(mockedInvoke).toHaveBeenLastCalledWith("set_desktop_settings", {
      settings: { do_not_disturb: true, expiry_reminder_minutes: 30, autostart: false, muted_groups: ["aa"], muted_contacts: ["12D3KooWBen"] },
    });
    fireEvent.change(document.getElementById("reminder-minutes")!, { target: { value: "60" } });
    await waitFor(() => expect(mockedInvoke).toHaveBeenCalledTimes(2));
    expect(mockedInvoke).toHaveBeenLastCalledWith("set_desktop_settings", {
      settings: { ...defaults, muted_groups: ["aa"], muted_contacts: ["12D3KooWBen"], expiry_reminder_minutes: 60 },
    });
  });

  it("shows a refusal in words", async () => {
    mockedInvoke.mockRejectedValue({ code: "invalid_input", message: "Start at login: no home folder.", hint: "Correct the value and try again." });
    render(<DesktopSettingsCard current={defaults} />);
    fireEvent.click(document.getElementById("autostart")!);
    expect((await screen.findByRole("alert")).textContent).toContain("Start at login: no home folder.");
  });
});

describe("GroupDetail mute", () => {
  it("shows whether the group is muted and toggles it", async () => {
    const id = "ab".repeat(16);
    setSnapshot({
      profile: "p", phase: "running", display_name: "Me", block_invites: false, rotate_days: 7, bootstrap: [], error: null, warnings: [], recovery: "confirmed", node: null,
      desktop: { ...defaults, muted_groups: [id] },
    } as AppSnapshot);
    mockedInvoke.mockImplementation(async (cmd) => (cmd === "set_group_muted" ? defaults : { messages: [], gaps: [], bucket_fill: 0, bucket_cap: 100, can_send: true, away_members: [] }));
    const group: GroupView = {
      group_id: id, name: "Book club", creator_peer_id: "12D3KooWC", creator_name: "Ana", is_creator: false,
      status: "active", created_at: 0, expires_at: 0, epoch: 1, members: [], can_respond: false, can_establish: false,
      list_mismatch: false, flags: [], unread: 0, safety_code: null, roster: [], is_admin: false, changes: [],
      add_round: null, can_add: 0, joining: false,
    };
    render(<GroupDetail group={group} onChanged={() => {}} />);
    const box = document.getElementById("mute-group") as HTMLInputElement;
    expect(box.checked).toBe(true);
    fireEvent.click(box);
    await waitFor(() => expect(mockedInvoke).toHaveBeenCalledWith("set_group_muted", { groupId: id, muted: false }));
  });
});
