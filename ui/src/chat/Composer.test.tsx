import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { Composer } from "./Composer";

afterEach(cleanup);

function setup(onSend: (body: string) => Promise<boolean>) {
  render(<Composer id="message-input" formId="send-form" label="Message to Ben" placeholder="Write" onSend={onSend} />);
  return screen.getByLabelText("Message to Ben") as HTMLTextAreaElement;
}

describe("Composer", () => {
  it("is labelled, sends on Enter and clears the draft once the message is taken", async () => {
    const onSend = vi.fn(async () => true);
    const box = setup(onSend);
    fireEvent.change(box, { target: { value: "see you at eight" } });
    fireEvent.keyDown(box, { key: "Enter" });
    await waitFor(() => expect(onSend).toHaveBeenCalledWith("see you at eight"));
    await waitFor(() => expect(box.value).toBe(""));
  });

  it("Shift+Enter does not send (it is a new line), nor does Enter while an input method composes", () => {
    const onSend = vi.fn(async () => true);
    const box = setup(onSend);
    fireEvent.change(box, { target: { value: "two\nlines" } });
    fireEvent.keyDown(box, { key: "Enter", shiftKey: true });
    fireEvent.keyDown(box, { key: "Enter", isComposing: true });
    expect(onSend).not.toHaveBeenCalled();
    expect(box.value).toBe("two\nlines");
  });

  it("keeps the draft when sending fails, and never sends an empty message", async () => {
    const onSend = vi.fn(async () => false);
    const box = setup(onSend);
    fireEvent.keyDown(box, { key: "Enter" });
    expect(onSend).not.toHaveBeenCalled();
    fireEvent.change(box, { target: { value: "not yet" } });
    fireEvent.click(screen.getByRole("button", { name: "Send" }));
    await waitFor(() => expect(onSend).toHaveBeenCalledTimes(1));
    expect(box.value).toBe("not yet");
  });
});
