import { useEffect, useState } from "react";
import { startStore, useSnapshot } from "./lib/store";
import { StatusScreen } from "./status/StatusScreen";
import { ErrorScreen } from "./errors/ErrorScreen";
import { ContactsScreen } from "./contacts/ContactsScreen";
import { GroupsScreen } from "./groups/GroupsScreen";
import { api } from "./lib/api";

export function App() {
  const snapshot = useSnapshot();
  const [bridgeError, setBridgeError] = useState<string | null>(null);
  const [tab, setTab] = useState<"contacts" | "groups" | "status">("status");
  // Asked for by a notification or the tray menu; the nonce re-opens the same group twice.
  const [openGroup, setOpenGroup] = useState<{ id: string; nonce: number } | null>(null);

  useEffect(() => {
    startStore().catch((e) => setBridgeError(String(e)));
    const off = api.onOpenGroup(({ group_id }) => {
      setTab("groups");
      setOpenGroup({ id: group_id, nonce: Date.now() });
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
  return (
    <>
      <nav className="tabs">
        <button id="tab-status" className={tab === "status" ? "active" : ""} onClick={() => setTab("status")}>Status</button>
        <button id="tab-contacts" className={tab === "contacts" ? "active" : ""} onClick={() => setTab("contacts")}>Contacts</button>
        <button id="tab-groups" className={tab === "groups" ? "active" : ""} onClick={() => setTab("groups")}>Groups</button>
      </nav>
      {tab === "status" && <StatusScreen snapshot={snapshot} />}
      {tab === "contacts" && <ContactsScreen />}
      {tab === "groups" && <GroupsScreen open={openGroup} />}
    </>
  );
}
