import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { invoke } from "@tauri-apps/api/core";
import { Onboarding } from "./Onboarding";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));

afterEach(cleanup);

const ben = {
  peer_id: "12D3KooWBen", display_name: "Ben", card_name: "Ben", key_changed_at: null, trusted_at: null,
  blocked: false, invites_blocked: false, unread: 0, missed: 0,
};

describe("Onboarding", () => {
  it("goes name → card → contact, saving the name and adding the contact", async () => {
    const calls: [string, unknown][] = [];
    vi.mocked(invoke).mockImplementation(async (cmd: string, args?: unknown) => {
      calls.push([cmd, args]);
      if (cmd === "set_display_name") return "Ana";
      if (cmd === "my_card") return "kiyeovo1anascard";
      if (cmd === "add_contact") return ben;
      throw new Error(`unexpected ${cmd}`);
    });
    const onDone = vi.fn();
    render(<Onboarding name="" onDone={onDone} />);
    expect(screen.getByRole("heading", { level: 1 }).textContent).toBe("Choose your name");
    expect(screen.getByText("Step 1 of 3")).toBeTruthy();
    fireEvent.change(screen.getByLabelText(/see this name/), { target: { value: "Ana" } });
    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    await waitFor(() => expect(screen.getByRole("heading", { level: 1 }).textContent).toBe("Share your card"));
    expect(calls).toContainEqual(["set_display_name", { name: "Ana" }]);

    fireEvent.click(screen.getByRole("button", { name: "My contact card" }));
    await waitFor(() => expect((document.getElementById("my-card") as HTMLTextAreaElement).value).toBe("kiyeovo1anascard"));
    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    expect(screen.getByRole("heading", { level: 1 }).textContent).toBe("Add your first contact");
    expect(screen.getByRole("button", { name: "Later" })).toBeTruthy();
    fireEvent.change(screen.getByLabelText("Add a contact"), { target: { value: "kiyeovo1benscard" } });
    fireEvent.click(screen.getByRole("button", { name: "Add" }));
    expect((await screen.findByRole("status")).textContent).toContain("Ben is added");
    fireEvent.click(screen.getByRole("button", { name: "Start chatting" }));
    expect(onDone).toHaveBeenCalledTimes(1);
  });

  it("can be skipped, and an unchanged name is not saved again; a refused name is said in words", async () => {
    vi.mocked(invoke).mockReset();
    const onDone = vi.fn();
    render(<Onboarding name="Ana" onDone={onDone} />);
    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    await waitFor(() => expect(screen.getByRole("heading", { level: 1 }).textContent).toBe("Share your card"));
    expect(vi.mocked(invoke)).not.toHaveBeenCalled();
    fireEvent.click(screen.getByRole("button", { name: "Skip these steps" }));
    expect(onDone).toHaveBeenCalledTimes(1);

    cleanup();
    vi.mocked(invoke).mockImplementation(async () => {
      throw { code: "invalid_input", message: "the name is too long", hint: "Use at most 64 characters." };
    });
    render(<Onboarding name="" onDone={onDone} />);
    fireEvent.change(screen.getByLabelText(/see this name/), { target: { value: "x" } });
    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    expect((await screen.findByRole("alert")).textContent).toContain("Use at most 64 characters.");
    expect(screen.getByRole("heading", { level: 1 }).textContent).toBe("Choose your name");
  });
});
