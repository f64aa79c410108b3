import type { AppSnapshot } from "../bindings/AppSnapshot";
import type { BootstrapState } from "../bindings/BootstrapState";
import { DisplayName } from "./DisplayName";
import { BootstrapSettings } from "./BootstrapSettings";
import { DesktopSettingsCard } from "./DesktopSettingsCard";
import { AppearanceCard } from "./AppearanceCard";
import { RecoveryPhraseCard } from "../recovery/RecoveryPhraseCard";
import { BackupCard } from "../recovery/BackupCard";
import { MyCard } from "../contacts/MyCard";

function bootstrapText(b: BootstrapState): string {
  switch (b.state) {
    case "not_configured":
      return "No bootstrap node configured (local network only)";
    case "connecting":
      return "Connecting to bootstrap nodes…";
    case "succeeded":
      return `Joined the network through ${b.peers} bootstrap node${b.peers === 1 ? "" : "s"}`;
    case "failed":
      return `Could not join: ${b.reason}. Retrying every ${b.retry_in_secs} s.`;
  }
}

export function StatusScreen({ snapshot }: { snapshot: AppSnapshot }) {
  const node = snapshot.node;
  const warnings = [...snapshot.warnings, ...(node?.warnings ?? [])];
  return (
    <main className="page">
      <header>
        <h1>Settings</h1>
        <span className="profile">profile: {snapshot.profile}</span>
      </header>
      {warnings.length > 0 && (
        <ul className="warnings" role="status" id="warnings">
          {warnings.map((w) => (
            <li key={w}>{w}</li>
          ))}
        </ul>
      )}
      {snapshot.recovery === "not_confirmed" && <RecoveryPhraseCard status={snapshot.recovery} />}
      <DisplayName current={snapshot.display_name} />
      <MyCard titled />
      {node && (
        <section className="card">
          <h2>Your node</h2>
          <dl>
            <dt>Peer id</dt>
            <dd>
              <code id="peer-id">{node.peer_id}</code>
            </dd>
            <dt>Network</dt>
            <dd id="bootstrap-state" data-state={node.bootstrap.state}>
              {bootstrapText(node.bootstrap)}
            </dd>
            <dt>Connected peers</dt>
            <dd id="connected-count">{node.connected_peers.length}</dd>
            <dt>DHT routing table</dt>
            <dd id="routing-size">
              {node.routing_table_size} peer{node.routing_table_size === 1 ? "" : "s"}
            </dd>
            <dt>DHT records held</dt>
            <dd>
              {node.stored_records} {node.dht_server ? "(serving others)" : "(client mode)"}
            </dd>
            <dt>Reachable from outside at</dt>
            <dd>
              {node.external_addrs.length === 0 ? (
                <span id="external-addrs">
                  not confirmed (behind a router: contacts reach you through a relay)
                </span>
              ) : (
                <ul className="addrs" id="external-addrs">
                  {node.external_addrs.map((a) => (
                    <li key={a}>
                      <code>{a}</code>
                    </li>
                  ))}
                </ul>
              )}
            </dd>
            <dt>Listening on</dt>
            <dd>
              <ul className="addrs" id="listen-addrs">
                {node.listen_addrs.map((a) => (
                  <li key={a}>
                    <code>{a}</code>
                  </li>
                ))}
              </ul>
            </dd>
          </dl>
        </section>
      )}
      <BootstrapSettings current={snapshot.bootstrap} />
      <DesktopSettingsCard current={snapshot.desktop} />
      <AppearanceCard />
      <BackupCard />
      {snapshot.recovery !== "not_confirmed" && <RecoveryPhraseCard status={snapshot.recovery} />}
    </main>
  );
}
