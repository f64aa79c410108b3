import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { AppearanceCard } from "./AppearanceCard";
import { applyTheme, startTheme } from "../lib/theme";

function systemPrefers(dark: boolean) {
  const listeners: (() => void)[] = [];
  const mq = { matches: dark, addEventListener: (_: string, l: () => void) => listeners.push(l) };
  vi.stubGlobal("matchMedia", vi.fn(() => mq));
  return { change(to: boolean) { mq.matches = to; listeners.forEach((l) => l()); } };
}

beforeEach(() => localStorage.clear());
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("appearance", () => {
  it("follows the system by default, also when it changes", () => {
    const system = systemPrefers(true);
    startTheme();
    expect(document.documentElement.dataset.theme).toBe("dark");
    system.change(false);
    expect(document.documentElement.dataset.theme).toBe("light");
  });

  it("a choice in the card wins over the system and is kept; 'like the system' forgets it", () => {
    systemPrefers(false);
    applyTheme("system");
    render(<AppearanceCard />);
    expect((screen.getByLabelText("Like the system") as HTMLInputElement).checked).toBe(true);
    fireEvent.click(screen.getByLabelText("Dark"));
    expect(document.documentElement.dataset.theme).toBe("dark");
    cleanup();
    render(<AppearanceCard />);
    expect((screen.getByLabelText("Dark") as HTMLInputElement).checked).toBe(true);
    startTheme();
    expect(document.documentElement.dataset.theme).toBe("dark");
    fireEvent.click(screen.getByLabelText("Like the system"));
    expect(document.documentElement.dataset.theme).toBe("light");
    expect(localStorage.length).toBe(0);
  });
});
