import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, waitFor } from "@testing-library/react";
import { invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import { open as openDialog } from "@tauri-apps/plugin-dialog";
import { FirstRun } from "./FirstRun";
import { BackupCard } from "./BackupCard";
import { RecoveryPhraseCard, pickPositions } from "./RecoveryPhraseCard";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));
vi.mock("@tauri-apps/plugin-dialog", () => ({ open: vi.fn() }));
const mockedDialog = vi.mocked(openDialog);
const mockedInvoke = vi.mocked(invoke);
const mockedListen = vi.mocked(listen);

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

describe("Restore from a backup file", () => {
  it("sends the path and passphrase, shows each step while it works, and a refusal in words", async () => {
    let progress: ((e: { payload: unknown }) => void) | undefined;
    mockedListen.mockImplementation(async (_event, cb) => {
      progress = cb as (e: { payload: unknown }) => void;
      return () => {};
    });
    let reject: (e: unknown) => void = () => {};
    mockedInvoke.mockImplementation(
      (cmd) =>
        new Promise((_resolve, no) => {
          if (cmd === "restore_from_backup") reject = no;
        }),
    );
    const view = render(<FirstRun profile="ana" />).container;
    fireEvent.click(view.querySelector("#first-run-backup")!);
    expect(view.querySelector(`label[for="restore-backup-path"]`)!.textContent).toContain("backup file");
    expect(view.querySelector<HTMLInputElement>("#restore-backup-passphrase")!.type).toBe("password");
    expect(view.querySelector<HTMLButtonElement>("#restore-backup-submit")!.disabled).toBe(true);
    fireEvent.change(view.querySelector("#restore-backup-path")!, { target: { value: "/tmp/a.kiyeovo-backup" } });
    fireEvent.change(view.querySelector("#restore-backup-passphrase")!, { target: { value: "otter lantern" } });
    fireEvent.submit(view.querySelector("#restore-backup-form")!);
    await waitFor(() =>
      expect(mockedInvoke).toHaveBeenCalledWith("restore_from_backup", {
        path: "/tmp/a.kiyeovo-backup",
        passphrase: "otter lantern",
      }),
    );
    await waitFor(() => expect(progress).toBeDefined());
    progress!({ payload: "unlocking" });
    await waitFor(() => expect(view.querySelector("#restore-progress")!.textContent).toContain("Checking the passphrase"));
    reject({
      code: "invalid_input",
      message: "the passphrase is wrong, or the file was changed after it was written",
      hint: "Type the passphrase again (capitals count).",
    });
    await waitFor(() =>
      expect(view.querySelector("#restore-backup-error")?.textContent).toBe(
        "the passphrase is wrong, or the file was changed after it was written. Type the passphrase again (capitals count).",
      ),
    );
    expect(view.querySelector("#restore-progress")!.textContent).toBe("");
    expect(view.querySelector("#restore-backup-form")).toBeTruthy();
  });
});

describe("BackupCard", () => {
  it("writes a backup into the suggested folder once the passphrase is typed twice, and says where", async () => {
    mockedInvoke.mockImplementation(async (cmd) => {
      if (cmd === "auto_backup") return { enabled: false, folder: "/home/ana/Documents/Kiyeovo backups", keep: 7, last_at: null, last_error: null };
      if (cmd === "backup_folder") return "/home/ana/Documents/Kiyeovo backups";
      if (cmd === "back_up_now") return { path: "/home/ana/Documents/Kiyeovo backups/k.kiyeovo-backup", bytes: 3 * 1024 * 1024 };
    });
    const view = render(<BackupCard />).container;
    const folder = view.querySelector<HTMLInputElement>("#backup-folder")!;
    await waitFor(() => expect(folder.value).toBe("/home/ana/Documents/Kiyeovo backups"));
    const button = view.querySelector<HTMLButtonElement>("#backup-now")!;
    fireEvent.change(view.querySelector("#backup-passphrase")!, { target: { value: "otter lantern seventeen" } });
    fireEvent.change(view.querySelector("#backup-passphrase-again")!, { target: { value: "otter lantern" } });
    expect(view.textContent).toContain("The two passphrases differ.");
    expect(button.disabled).toBe(true);
    fireEvent.change(view.querySelector("#backup-passphrase-again")!, { target: { value: "otter lantern seventeen" } });
    expect(button.disabled).toBe(false);
    fireEvent.submit(view.querySelector("#backup-form")!);
    await waitFor(() => expect(view.querySelector("#backup-written")?.textContent).toContain("k.kiyeovo-backup"));
    expect(view.querySelector("#backup-written")!.textContent).toContain("3.0 MB");
    expect(mockedInvoke).toHaveBeenCalledWith("back_up_now", {
      folder: "/home/ana/Documents/Kiyeovo backups",
      passphrase: "otter lantern seventeen",
    });
    // The passphrase does not stay on the page.
    expect(view.querySelector<HTMLInputElement>("#backup-passphrase")!.value).toBe("");
  });

  it("shows a refusal with its next step", async () => {
    mockedInvoke.mockImplementation(async (cmd) => {
      if (cmd === "auto_backup") return { enabled: false, folder: "/nope", keep: 7, last_at: null, last_error: null };
      if (cmd === "backup_folder") return "/nope";
      if (cmd === "back_up_now") throw { code: "data_dir", message: "cannot make the folder /nope", hint: "Check that the folder exists." };
    });
    const view = render(<BackupCard />).container;
    await waitFor(() => expect(view.querySelector<HTMLInputElement>("#backup-folder")!.value).toBe("/nope"));
    for (const id of ["#backup-passphrase", "#backup-passphrase-again"]) {
      fireEvent.change(view.querySelector(id)!, { target: { value: "0123456789" } });
    }
    fireEvent.submit(view.querySelector("#backup-form")!);
    await waitFor(() => expect(view.querySelector("#backup-error")?.textContent).toContain("Check that the folder exists."));
  });
});

describe("Automatic backups", () => {
  it("turn on with the passphrase typed twice, then say how the last one went", async () => {
    let saved: unknown;
    mockedInvoke.mockImplementation(async (cmd, args) => {
      if (cmd === "backup_folder") return "/b";
      if (cmd === "auto_backup") return { enabled: false, folder: "/b", keep: 7, last_at: null, last_error: null };
      if (cmd === "set_auto_backup") {
        saved = args;
        return { enabled: true, folder: "/b", keep: 3, last_at: null, last_error: null };
      }
    });
    const view = render(<BackupCard />).container;
    await waitFor(() => expect(view.querySelector("#auto-backup-status")!.textContent).toContain("off"));
    fireEvent.click(view.querySelector("#auto-backup-enabled")!);
    const save = view.querySelector<HTMLButtonElement>("#auto-backup-save")!;
    expect(save.textContent).toContain("type the passphrase above twice");
    expect(save.disabled).toBe(true);
    fireEvent.change(view.querySelector("#auto-backup-keep")!, { target: { value: "3" } });
    for (const id of ["#backup-passphrase", "#backup-passphrase-again"]) {
      fireEvent.change(view.querySelector(id)!, { target: { value: "otter lantern seventeen" } });
    }
    expect(save.disabled).toBe(false);
    fireEvent.submit(view.querySelector("#auto-backup-form")!);
    await waitFor(() => expect(view.querySelector("#auto-backup-status")!.textContent).toContain("first automatic backup"));
    expect(saved).toEqual({ enabled: true, folder: "/b", keep: 3, passphrase: "otter lantern seventeen" });
  });

  it("show a failed automatic backup in words", async () => {
    mockedInvoke.mockImplementation(async (cmd) => {
      if (cmd === "backup_folder") return "/b";
      if (cmd === "auto_backup") return { enabled: true, folder: "/b", keep: 7, last_at: 1, last_error: "cannot make the folder /b: permission denied" };
    });
    const view = render(<BackupCard />).container;
    await waitFor(() =>
      expect(view.querySelector("#auto-backup-status")!.textContent).toContain("The last automatic backup failed: cannot make the folder"),
    );
    expect(view.querySelector<HTMLInputElement>("#auto-backup-enabled")!.checked).toBe(true);
  });
});

describe("File choosers", () => {
  it("fill the backup file and the folder from the system's chooser, and leave them on cancel", async () => {
    mockedInvoke.mockImplementation(async (cmd) => {
      if (cmd === "backup_folder") return "/b";
      if (cmd === "auto_backup") return { enabled: false, folder: "/b", keep: 7, last_at: null, last_error: null };
    });
    mockedDialog.mockResolvedValueOnce("/media/usb/kiyeovo-ana.kiyeovo-backup");
    const first = render(<FirstRun profile="ana" />).container;
    fireEvent.click(first.querySelector("#first-run-backup")!);
    fireEvent.click(first.querySelector("#restore-backup-choose")!);
    await waitFor(() =>
      expect(first.querySelector<HTMLInputElement>("#restore-backup-path")!.value).toBe("/media/usb/kiyeovo-ana.kiyeovo-backup"),
    );
    expect(mockedDialog.mock.calls[0]![0]).toMatchObject({ multiple: false, directory: false });
    cleanup();
    mockedDialog.mockResolvedValueOnce("/media/usb");
    const card = render(<BackupCard />).container;
    await waitFor(() => expect(card.querySelector<HTMLInputElement>("#backup-folder")!.value).toBe("/b"));
    fireEvent.click(card.querySelector("#backup-folder-choose")!);
    await waitFor(() => expect(card.querySelector<HTMLInputElement>("#backup-folder")!.value).toBe("/media/usb"));
    expect(mockedDialog.mock.calls[1]![0]).toMatchObject({ directory: true, defaultPath: "/b" });
    mockedDialog.mockResolvedValueOnce(null);
    fireEvent.click(card.querySelector("#backup-folder-choose")!);
    await waitFor(() => expect(mockedDialog).toHaveBeenCalledTimes(3));
    expect(card.querySelector<HTMLInputElement>("#backup-folder")!.value).toBe("/media/usb");
  });
});
