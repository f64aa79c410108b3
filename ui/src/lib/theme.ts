// Light or dark: the system's choice unless the user picked one (kept in this window's local
// storage: a display preference, nothing the backend needs). The effective theme is set as
// `data-theme` on the root element, and the stylesheet has one set of colours per theme.

export type ThemeChoice = "system" | "light" | "dark";
const KEY = "kiyeovo.theme";
const DARK = "(prefers-color-scheme: dark)";

export function savedTheme(): ThemeChoice {
  const v = globalThis.localStorage?.getItem(KEY);
  return v === "light" || v === "dark" ? v : "system";
}

/** Sets the effective theme for `choice` on the page. */
export function applyTheme(choice: ThemeChoice) {
  const systemDark = globalThis.matchMedia?.(DARK).matches ?? false;
  const dark = choice === "dark" || (choice === "system" && systemDark);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
}

/** At start: the saved choice, and the system's changes followed while it is "system". */
export function startTheme() {
  applyTheme(savedTheme());
  globalThis.matchMedia?.(DARK).addEventListener?.("change", () => applyTheme(savedTheme()));
}

export function chooseTheme(choice: ThemeChoice) {
  if (choice === "system") globalThis.localStorage?.removeItem(KEY);
  else globalThis.localStorage?.setItem(KEY, choice);
  applyTheme(choice);
}
