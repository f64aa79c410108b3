import { describe, expect, it } from "vitest";
import { render, screen, within } from "@testing-library/react";
import { StatusScreen } from "./StatusScreen";
import { ErrorScreen } from "../errors/ErrorScreen";
import type { AppSnapshot } from "../bindings/AppSnapshot";

const snapshot: AppSnapshot = {
  profile: "alice",
  phase: "running",
  display_name: "Alice",
  block_invites: false,
  rotate_days: 7,
  bootstrap: ["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWBoot"],
  error: null,
  warnings: ["The database was missing, so a new empty one was created."],
  desktop: { do_not_disturb: false, expiry_reminder_minutes: 30, autostart: false, muted_groups: [], muted_contacts: [] },
  recovery: "confirmed",
  node: {
    peer_id: "12D3KooWExample",
    listen_addrs: ["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWExample"],
    external_addrs: [],
    connected_peers: ["12D3KooWA", "12D3KooWB"],
    routing_table_size: 5,
    stored_records: 1,
    bootstrap: { state: "failed", reason: "could not reach any bootstrap node", retry_in_secs: 30 },
    dht_server: false,
    warnings: ["TCP port 4001 is not available"],
  },
};

describe("StatusScreen", () => {
  it("shows the node's identity, peers and every warning", () => {
    render(<StatusScreen snapshot={snapshot} />);
    expect(screen.getByText("12D3KooWExample").id).toBe("peer-id");
    expect(document.getElementById("connected-count")?.textContent).toBe("2");
    expect(document.getElementById("bootstrap-state")?.textContent).toContain("could not reach");
    expect(screen.getByText(/TCP port 4001/)).toBeTruthy();
    expect(screen.getByText(/database was missing/)).toBeTruthy();
    const boot = document.getElementById("bootstrap-addrs") as HTMLTextAreaElement;
    expect(boot.value).toBe("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWBoot");
  });

  it("is the Settings view: the name, then the contact card with what it is for, then the node", () => {
    const view = within(render(<StatusScreen snapshot={snapshot} />).container);
    expect(view.getByRole("heading", { level: 1 }).textContent).toBe("Settings");
    const card = view.getByRole("region", { name: "Your contact card" });
    expect(card.textContent).toContain("nothing secret");
    expect(within(card).getByRole("button", { name: "My contact card" }).id).toBe("my-card-button");
    const headings = view.getAllByRole("heading", { level: 2 }).map((h) => h.textContent);
    expect(headings.indexOf("Your contact card")).toBeLessThan(headings.indexOf("Your node"));
  });

  it("says whether we are confirmed reachable from outside, and where", () => {
    const behindRouter = render(<StatusScreen snapshot={snapshot} />).container;
    expect(behindRouter.textContent).toContain("Reachable from outside atnot confirmed");
    const addr = "/ip4/11.99.4.2/tcp/4002/p2p/12D3KooWExample";
    const reachable = render(
      <StatusScreen snapshot={{ ...snapshot, node: { ...snapshot.node!, external_addrs: [addr] } }} />,
    ).container;
    expect(reachable.textContent).toContain(`Reachable from outside at${addr}Listening on`);
  });
});

describe("StatusScreen and the recovery phrase", () => {
  it("puts the reminder first until the phrase is written down, then keeps it at the end", () => {
    const due = render(<StatusScreen snapshot={{ ...snapshot, recovery: "not_confirmed" }} />).container;
    const cards = Array.from(due.querySelectorAll("main > section, main > form"));
    expect(cards[0]!.id).toBe("recovery-phrase");
    expect(cards[0]!.textContent).toContain("Write down your recovery phrase");
    const done = render(<StatusScreen snapshot={snapshot} />).container;
    const last = Array.from(done.querySelectorAll("main > section, main > form")).pop()!;
    expect(last.id).toBe("recovery-phrase");
    expect(last.textContent).toContain("Written down");
  });
});

describe("ErrorScreen", () => {
  it("says what happened and what to do", () => {
    render(
      <ErrorScreen
        profile="bob"
        error={{ code: "already_running", message: "Kiyeovo is already running", hint: "Use the open window." }}
      />,
    );
    const card = document.getElementById("startup-error");
    expect(card?.dataset.code).toBe("already_running");
    expect(card?.textContent).toContain("Kiyeovo is already running");
    expect(card?.textContent).toContain("Use the open window.");
  });
});
