import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, waitFor } from "@testing-library/react";
import { invoke } from "@tauri-apps/api/core";
import { GroupsScreen } from "./GroupsScreen";
import { setSnapshot } from "../lib/store";
import type { AppSnapshot } from "../bindings/AppSnapshot";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));
const mockedInvoke = vi.mocked(invoke);

afterEach(() => {
  cleanup();
  mockedInvoke.mockReset();
});

describe("GroupsScreen", () => {
  it("shows how often groups get a new key and saves a change", async () => {
    setSnapshot({
      profile: "p", phase: "running", display_name: "Me", block_invites: false, rotate_days: 7, bootstrap: [], error: null,
      warnings: [], node: null, recovery: "confirmed",
      desktop: { do_not_disturb: false, expiry_reminder_minutes: 30, autostart: false, muted_groups: [], muted_contacts: [] },
    } as AppSnapshot);
    mockedInvoke.mockImplementation(async () => []);
    render(<GroupsScreen />);
    const select = document.getElementById("rotate-days") as HTMLSelectElement;
    expect(select.value).toBe("7");
    expect(Array.from(select.options).map((o) => o.textContent)).toEqual(["every day", "every week", "every month", "never (only when members change)"]);
    fireEvent.change(select, { target: { value: "30" } });
    await waitFor(() => expect(mockedInvoke).toHaveBeenCalledWith("set_rotate_days", { days: 30 }));
  });
});
