import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { MessageActions } from "./MessageActions";

afterEach(cleanup);

describe("MessageActions", () => {
  it("copies the body to the clipboard", async () => {
    const writeText = vi.fn(async () => {});
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    render(<MessageActions body="see you at eight" outgoing={false} canDelete onDelete={async () => {}} />);
    fireEvent.click(screen.getByRole("button", { name: "Copy" }));
    await waitFor(() => expect(writeText).toHaveBeenCalledWith("see you at eight"));
    expect((await screen.findByRole("status")).textContent).toContain("Copied");
  });

  it("deletes only after asking once more, in words; Cancel keeps it", async () => {
    const onDelete = vi.fn(async () => {});
    render(<MessageActions body="x" outgoing canDelete onDelete={onDelete} />);
    fireEvent.click(screen.getByRole("button", { name: "Delete for me" }));
    expect(screen.getByRole("group", { name: "Delete this message?" }).textContent).toContain("The others keep theirs. The copy sent for them stays");
    fireEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(onDelete).not.toHaveBeenCalled();
    fireEvent.click(screen.getByRole("button", { name: "Delete for me" }));
    fireEvent.click(screen.getByRole("button", { name: "Delete" }));
    await waitFor(() => expect(onDelete).toHaveBeenCalledTimes(1));
  });

  it("shows a refusal in words with the next step, and offers no delete while sending", async () => {
    render(<MessageActions body="x" outgoing={false} canDelete onDelete={async () => {
      throw { code: "invalid_input", message: "that message is still being sent", hint: "Delete it once it shows as stored or sent." };
    }} />);
    fireEvent.click(screen.getByRole("button", { name: "Delete for me" }));
    fireEvent.click(screen.getByRole("button", { name: "Delete" }));
    expect((await screen.findByRole("alert")).textContent).toBe(
      "that message is still being sent. Delete it once it shows as stored or sent.");
    cleanup();
    render(<MessageActions body="x" outgoing={false} canDelete={false} onDelete={async () => {}} />);
    expect(screen.queryByRole("button", { name: "Delete for me" })).toBeNull();
  });
});
