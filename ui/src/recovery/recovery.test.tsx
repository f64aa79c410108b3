import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, waitFor } from "@testing-library/react";
import { invoke } from "@tauri-apps/api/core";
import { FirstRun } from "./FirstRun";
import { RecoveryPhraseCard, pickPositions } from "./RecoveryPhraseCard";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));
const mockedInvoke = vi.mocked(invoke);

afterEach(() => {
  cleanup();
  mockedInvoke.mockReset();
});

const words = Array.from({ length: 24 }, (_, i) => `word${i + 1}`);

describe("RecoveryPhraseCard", () => {
  it("shows the 24 words on request, then asks three of them back and sends what was typed", async () => {
    mockedInvoke.mockImplementation(async (cmd) => (cmd === "recovery_phrase" ? words : undefined));
    const view = render(<RecoveryPhraseCard status="not_confirmed" />).container;
    expect(view.textContent).toContain("Write down your recovery phrase");
    expect(view.querySelector("ol.phrase")).toBeNull();
    fireEvent.click(view.querySelector("#show-phrase")!);
    await waitFor(() => expect(view.querySelectorAll("ol.phrase li").length).toBe(24));
    expect(view.querySelector("ol.phrase")!.textContent).toBe(words.join(""));
    fireEvent.click(view.querySelector("#phrase-written")!);
    // The words are hidden while they are asked back.
    expect(view.querySelector("ol.phrase")).toBeNull();
    const inputs = Array.from(view.querySelectorAll<HTMLInputElement>("#phrase-check input"));
    expect(inputs.length).toBe(3);
    for (const input of inputs) {
      const position = Number(input.id.replace("phrase-word-", ""));
      expect(view.querySelector(`label[for="${input.id}"]`)!.textContent).toBe(`Word ${position}`);
      fireEvent.change(input, { target: { value: `word${position}` } });
    }
    fireEvent.submit(view.querySelector("#phrase-check")!);
    await waitFor(() => expect(mockedInvoke).toHaveBeenCalledWith("confirm_recovery_phrase", expect.anything()));
    const call = mockedInvoke.mock.calls.find((c) => c[0] === "confirm_recovery_phrase")!;
    const answers = (call[1] as { answers: { position: number; word: string }[] }).answers;
    expect(answers.map((a) => a.word)).toEqual(answers.map((a) => `word${a.position}`));
  });

  it("shows a refusal in words and keeps asking", async () => {
    mockedInvoke.mockImplementation(async (cmd) => {
      if (cmd === "recovery_phrase") return words;
      throw { code: "invalid_input", message: "Word 5 is not the word at that place.", hint: "Look at your paper again." };
    });
    const view = render(<RecoveryPhraseCard status="not_confirmed" />).container;
    fireEvent.click(view.querySelector("#show-phrase")!);
    await waitFor(() => expect(view.querySelector("#phrase-written")).toBeTruthy());
    fireEvent.click(view.querySelector("#phrase-written")!);
    fireEvent.submit(view.querySelector("#phrase-check")!);
    await waitFor(() => expect(view.querySelector("#phrase-error")?.textContent).toContain("Word 5 is not"));
    expect(view.querySelector("#phrase-check")).toBeTruthy();
  });

  it("tells an old profile what it can rely on instead", () => {
    const view = render(<RecoveryPhraseCard status="no_phrase" />).container;
    expect(view.textContent).toContain("made before recovery phrases");
    expect(view.querySelector("#show-phrase")).toBeNull();
  });

  it("asks three different positions in order", () => {
    for (let i = 0; i < 50; i++) {
      const p = pickPositions(24);
      expect(new Set(p).size).toBe(3);
      expect([...p].sort((a, b) => a - b)).toEqual(p);
      expect(p.every((n) => n >= 1 && n <= 24)).toBe(true);
    }
  });
});

describe("FirstRun", () => {
  it("creates a new identity, or restores one from a typed phrase, and shows refusals in words", async () => {
    mockedInvoke.mockImplementation(async (cmd) => {
      if (cmd === "restore_from_phrase") {
        throw { code: "invalid_input", message: "a recovery phrase has 24 words; this has 3.", hint: "Type the 24 words." };
      }
    });
    const view = render(<FirstRun profile="ana" />).container;
    fireEvent.submit(view.querySelector("#first-run-new")!.closest("form")!);
    await waitFor(() => expect(mockedInvoke.mock.calls.map((c) => c[0])).toContain("first_run_new"));
    fireEvent.click(view.querySelector("#first-run-restore")!);
    const phrase = view.querySelector<HTMLTextAreaElement>("#restore-phrase")!;
    expect(view.querySelector(`label[for="restore-phrase"]`)!.textContent).toContain("24-word recovery phrase");
    fireEvent.change(phrase, { target: { value: "one two three" } });
    fireEvent.submit(view.querySelector("#restore-form")!);
    await waitFor(() => expect(view.querySelector("#restore-error")?.textContent).toContain("has 24 words"));
    expect(mockedInvoke).toHaveBeenCalledWith("restore_from_phrase", { phrase: "one two three" });
  });
});
