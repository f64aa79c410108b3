import { useEffect, useState } from "react";
import { startStore, useSnapshot } from "./lib/store";
import { StatusScreen } from "./status/StatusScreen";
import { ErrorScreen } from "./errors/ErrorScreen";
import { ContactsScreen } from "./contacts/ContactsScreen";
import { GroupsScreen } from "./groups/GroupsScreen";
import { ChatsScreen, type OpenRequest } from "./conversations/ChatsScreen";
import { api } from "./lib/api";
import { FirstRun } from "./recovery/FirstRun";
import { RecoveryPhraseCard } from "./recovery/RecoveryPhraseCard";
import { Onboarding } from "./onboarding/Onboarding";

export function App() {
  const snapshot = useSnapshot();
  const [bridgeError, setBridgeError] = useState<string | null>(null);
  // The app opens on the conversation list.
  const [tab, setTab] = useState<"chats" | "contacts" | "groups" | "settings">("chats");
  // Asked for by a notification or the tray menu; the nonce re-opens the same one twice.
  const [openRequest, setOpenRequest] = useState<OpenRequest | null>(null);
  // Set when this run began on the first-run screen: the recovery phrase is offered next.
  const [firstRun, setFirstRun] = useState(false);
  const [phraseStepDone, setPhraseStepDone] = useState(false);
  // Decided once, right after the phrase step: a profile that starts with no name (a new
  // identity, or one restored from its phrase alone) is walked through name, card, contact.
  const [onboarding, setOnboarding] = useState<"undecided" | "show" | "done">("undecided");

  useEffect(() => {
    startStore().catch((e) => setBridgeError(String(e)));
    const off = api.onShowConversation(({ key }) => {
      setTab("chats");
      setOpenRequest({ key, nonce: Date.now() });
    });
    return () => void off.then((f) => f());
  }, []);

  if (bridgeError) {
    return (
      <ErrorScreen
        error={{
          code: "invalid_input",
          message: `The window cannot reach the Kiyeovo backend: ${bridgeError}`,
          hint: "Restart Kiyeovo.",
        }}
      />
    );
  }
  if (snapshot?.phase === "first_run") {
    if (!firstRun) setFirstRun(true);
    return <FirstRun profile={snapshot.profile} />;
  }
  if (!snapshot || snapshot.phase === "starting") {
    return (
      <main className="centered" aria-busy="true">
        <p id="starting">Starting Kiyeovo…</p>
      </main>
    );
  }
  if (snapshot.phase === "failed" && snapshot.error) {
    return <ErrorScreen error={snapshot.error} profile={snapshot.profile} />;
  }
  if (firstRun && !phraseStepDone && snapshot.recovery === "not_confirmed") {
    return (
      <main className="page" id="phrase-step">
        <header>
          <h1>Your recovery phrase</h1>
        </header>
        <RecoveryPhraseCard status={snapshot.recovery} />
        <button type="button" id="phrase-skip" onClick={() => setPhraseStepDone(true)}>
          Skip for now (you will be reminded)
        </button>
      </main>
    );
  }
  if (firstRun && onboarding !== "done") {
    if (onboarding === "undecided") {
      setOnboarding(snapshot.display_name.trim() === "" ? "show" : "done");
      return null;
    }
    return <Onboarding name={snapshot.display_name} onDone={() => setOnboarding("done")} />;
  }
  const phraseDue = snapshot.recovery === "not_confirmed";
  // The views are a navigation landmark; the open one is marked current for screen readers.
  const current = (t: typeof tab) =>
    t === tab ? { className: "active", "aria-current": "page" as const } : { className: "" };
  return (
    <>
      <nav className="tabs" aria-label="Views">
        <button id="tab-chats" {...current("chats")} onClick={() => setTab("chats")}>Chats</button>
        <button id="tab-contacts" {...current("contacts")} onClick={() => setTab("contacts")}>Contacts</button>
        <button id="tab-groups" {...current("groups")} onClick={() => setTab("groups")}>Groups</button>
        <button id="tab-settings" {...current("settings")} onClick={() => setTab("settings")}>
          Settings
          {phraseDue && (
            <span className="badge" id="phrase-badge" aria-label="recovery phrase not written down yet">
              !
            </span>
          )}
        </button>
      </nav>
      {tab === "chats" && <ChatsScreen open={openRequest} />}
      {tab === "settings" && <StatusScreen snapshot={snapshot} />}
      {tab === "contacts" && <ContactsScreen />}
      {tab === "groups" && <GroupsScreen />}
    </>
  );
}
