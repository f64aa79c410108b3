// One store for backend state, fed by pushed events (never polled).
import { useSyncExternalStore } from "react";
import type { AppSnapshot } from "../bindings/AppSnapshot";
import { api } from "./api";

let current: AppSnapshot | null = null;
const listeners = new Set<() => void>();

export function setSnapshot(s: AppSnapshot) {
  current = s;
  listeners.forEach((l) => l());
}

let started = false;
/** Subscribes to backend events first, then reads the current state, so no change is missed. */
export async function startStore() {
  if (started) return;
  started = true;
  await api.onSnapshot(setSnapshot);
  setSnapshot(await api.getSnapshot());
}

export function useSnapshot(): AppSnapshot | null {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => current,
  );
}
