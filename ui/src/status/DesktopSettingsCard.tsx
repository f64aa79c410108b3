import { useState } from "react";
import type { DesktopSettings } from "../bindings/DesktopSettings";
import type { UiError } from "../bindings/UiError";
import { api, asUiError } from "../lib/api";

const REMINDERS: { minutes: number; label: string }[] = [
  { minutes: 0, label: "Never" },
  { minutes: 15, label: "15 minutes before" },
  { minutes: 30, label: "30 minutes before" },
  { minutes: 60, label: "1 hour before" },
  { minutes: 120, label: "2 hours before" },
];

/** Notifications and start-up: saved at once, the snapshot brings the saved values back. */
export function DesktopSettingsCard({ current }: { current: DesktopSettings }) {
  const [error, setError] = useState<UiError | null>(null);
  const [busy, setBusy] = useState(false);

  async function change(patch: Partial<DesktopSettings>) {
    setBusy(true);
    setError(null);
    try {
      await api.setDesktopSettings({ ...current, ...patch });
    } catch (e) {
      setError(asUiError(e));
    } finally {
      setBusy(false);
    }
  }

  const reminderChoices = REMINDERS.some((r) => r.minutes === current.expiry_reminder_minutes)
    ? REMINDERS
    : [...REMINDERS, { minutes: current.expiry_reminder_minutes, label: `${current.expiry_reminder_minutes} minutes before` }];

  return (
    <section className="card" id="desktop-settings">
      <h2>Notifications and start-up</h2>
      <label className="check">
        <input type="checkbox" id="do-not-disturb" checked={current.do_not_disturb} disabled={busy}
          onChange={() => void change({ do_not_disturb: !current.do_not_disturb })} />
        Do not disturb (no notifications; the tray still counts invitations and messages)
      </label>
      <label className="row" htmlFor="reminder-minutes">
        Remind me of an unanswered invitation
        <select id="reminder-minutes" value={current.expiry_reminder_minutes} disabled={busy}
          onChange={(e) => void change({ expiry_reminder_minutes: Number(e.target.value) })}>
          {reminderChoices.map((r) => (
            <option key={r.minutes} value={r.minutes}>{r.label}</option>
          ))}
        </select>
      </label>
      <label className="check">
        <input type="checkbox" id="autostart" checked={current.autostart} disabled={busy}
          onChange={() => void change({ autostart: !current.autostart })} />
        Start Kiyeovo in the tray when I log in
      </label>
      <p className="muted">Closing the window keeps Kiyeovo running in the tray; quit it from the tray menu.</p>
      {error && (
        <p className="error-text" role="alert">
          {error.message} {error.hint}
        </p>
      )}
    </section>
  );
}
