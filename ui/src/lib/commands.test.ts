// The command layer checked against the Rust signatures: every command the window calls is a
// command the backend registers, under the same name and with the same argument names (Tauri
// turns `peer_id` into `peerId`). Renaming a Rust command or an argument fails this test, not
// the user. What the commands return is typed by the ts-rs bindings (src/bindings).
import { describe, expect, it } from "vitest";

// Read from disk (the tests run under Node, from ui/); the UI bundle never contains them.
const fsModule = "node:fs";
const fs = (await import(/* @vite-ignore */ fsModule)) as {
  readFileSync(path: string, encoding: "utf8"): string;
};
const commandsRs = fs.readFileSync("../src-tauri/commands.rs", "utf8");
const mainRs = fs.readFileSync("../src-tauri/main.rs", "utf8");
const apiTs = fs.readFileSync("src/lib/api.ts", "utf8");
const apiRs = fs.readFileSync("../crates/kiyeovo-core/src/api.rs", "utf8");

/** Splits `a: X<'_, Y>, b: Z` at the commas outside angle brackets and parentheses. */
function params(list: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of list) {
    if (ch === "<" || ch === "(") depth++;
    if (ch === ">" || ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((p) => p.trim()).filter(Boolean);
}

const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
/** Arguments Tauri fills in itself, not sent by the window. */
const injected = /^(State<|tauri::State<|tauri::AppHandle|AppHandle|tauri::Window|Window|tauri::WebviewWindow|WebviewWindow)/;

/** `#[tauri::command]` functions: name → the argument names the window must send. */
function rustCommands(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const m of commandsRs.matchAll(/#\[tauri::command\]\s*pub\s+(?:async\s+)?fn\s+(\w+)\s*\(([^)]*(?:\([^)]*\)[^)]*)*)\)/g)) {
    const args = params(m[2] ?? "")
      .map((p) => {
        const [name, ...type] = p.split(":");
        return { name: (name ?? "").trim(), type: type.join(":").trim() };
      })
      .filter((p) => !injected.test(p.type))
      .map((p) => camel(p.name));
    found.set(m[1] ?? "", args.sort());
  }
  return found;
}

function registered(): Set<string> {
  const handler = /generate_handler!\[([^\]]*)\]/.exec(mainRs)?.[1] ?? "";
  return new Set([...handler.matchAll(/commands::(\w+)/g)].map((m) => m[1] ?? ""));
}

/** `invoke<…>("name", { a, b: x })` calls in api.ts: name → the argument names it sends. */
function uiCalls(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const m of apiTs.matchAll(/invoke<[^(]*?>\(\s*"(\w+)"\s*(?:,\s*\{([^}]*)\})?\s*\)/g)) {
    const keys = (m[2] ?? "")
      .split(",")
      .map((k) => (k.split(":")[0] ?? "").trim())
      .filter(Boolean);
    found.set(m[1] ?? "", keys.sort());
  }
  return found;
}

describe("the command layer", () => {
  const rust = rustCommands();
  const reg = registered();
  const ui = uiCalls();

  it("finds the commands (the parsers still match the sources)", () => {
    expect(rust.size).toBeGreaterThan(40);
    expect(ui.size).toBeGreaterThan(40);
    expect(rust.get("send_message")).toEqual(["body", "peerId", "replyTo"]);
  });

  it("every command the window calls is registered, with the same argument names", () => {
    for (const [name, keys] of ui) {
      expect(reg.has(name), `${name} is not in generate_handler!`).toBe(true);
      expect(rust.has(name), `${name} is not a #[tauri::command] in commands.rs`).toBe(true);
      expect(keys, `arguments of ${name}`).toEqual(rust.get(name));
    }
  });

  it("every registered command is a command and is reachable from the window", () => {
    for (const name of reg) {
      expect(rust.has(name), `${name} is registered but not defined`).toBe(true);
      expect(ui.has(name), `${name} is registered but api.ts never calls it`).toBe(true);
    }
  });
});

describe("the event names", () => {
  /** `pub const NAME: &str = "event";` in api.rs's `events` module. */
  const rust = new Map(
    [...(/pub mod events \{([\s\S]*?)\n\}/.exec(apiRs)?.[1] ?? "").matchAll(/pub const (\w+): &str = "([^"]+)";/g)]
      .map((m) => [m[1] ?? "", m[2] ?? ""]),
  );
  /** `export const EVENT_NAME = "event";` in api.ts. */
  const ui = new Map(
    [...apiTs.matchAll(/export const EVENT_(\w+) = "([^"]+)";/g)].map((m) => [m[1] ?? "", m[2] ?? ""]),
  );

  it("are the backend's: the same constants with the same names, both ways", () => {
    expect(rust.size).toBeGreaterThan(4);
    expect(rust.get("SHOW_CONVERSATION")).toBe("show-conversation");
    const sorted = (m: Map<string, string>) => [...m].sort(([a], [b]) => a.localeCompare(b));
    expect(sorted(ui)).toEqual(sorted(rust));
  });

  it("are what the window listens to: every listen() names one of them", () => {
    const listened = [...apiTs.matchAll(/\blisten<[^>]*>\(\s*([^,\s]+)/g)].map((m) => m[1] ?? "");
    expect(listened.length).toBeGreaterThan(4);
    for (const name of listened) {
      expect(name, "listen() with something other than an EVENT_ constant").toMatch(/^EVENT_\w+$/);
      expect(ui.has(name.slice("EVENT_".length)), `${name} is not declared`).toBe(true);
    }
  });
});
