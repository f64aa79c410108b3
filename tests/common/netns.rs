//! A small internet in Linux network namespaces, for the NAT test (`tests/nat.rs`):
//!
//! ```text
//!   boot 11.99.1.2 ─┐                     ┌─ r1 (NAT) 11.99.3.2 ── h1 192.168.1.10
//!   pub  11.99.2.2 ─┴── inet (router) ────┼─ r2 (NAT) 11.99.4.2 ── h2 192.168.1.10
//!                                         └─ r3 (NAT) 11.99.5.2 ── h3 192.168.1.10
//! ```
//!
//! `boot` runs the headless node (bootstrap + relay), `pub` a peer with a public address, `h1`
//! `h2` and `h3` are homes behind routers that masquerade (nftables) and drop every connection that
//! does not start at home — as a home router does. Both homes use the same LAN addresses, as
//! real homes do. A router can forward a port to its home ([`Lab::forward_port`]), as a user
//! who opened one (or UPnP) would.
//!
//! The "internet" uses global addresses (11.99.0.0/16), not private ones: AutoNAT, as deployed,
//! neither confirms nor asks peers seen at private addresses. They exist only inside the lab's
//! namespaces, which have no link to the host's network and are removed on drop; every
//! namespace name starts with a per-run prefix, so parallel runs stay apart.

use std::process::{Command, Stdio};

/// The namespaces of one lab, removed when dropped.
pub struct Lab {
    prefix: String,
    created: Vec<String>,
}

/// Why the lab could not be built: the test fails with this, it never silently passes.
#[derive(Debug)]
pub struct LabError(pub String);

impl std::fmt::Display for LabError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot build the network-namespace lab: {}. The NAT test needs root, `ip netns` \
             (iproute2) and nftables (`make test` installs them on Debian/Ubuntu)",
            self.0
        )
    }
}

fn run(args: &[&str]) -> Result<(), LabError> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError(format!("{}: {e}", args.join(" "))))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// What a home router does: masquerade out of its WAN side, and let in only what answers a
/// connection made from home.
const HOME_ROUTER: &str = "
table ip nat {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname \"wan\" masquerade
    }
}
table ip filter {
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname \"lan\" oifname \"wan\" accept
    }
}
";

impl Lab {
    pub const BOOT_IP: &'static str = "11.99.1.2";
    pub const PUB_IP: &'static str = "11.99.2.2";
    pub const HOME_IP: &'static str = "192.168.1.10";

    /// Builds the lab. Fails with a clear message when namespaces or nftables are unavailable.
    pub fn build() -> Result<Self, LabError> {
        let prefix = format!("kv{:04x}", rand::random::<u16>());
        let mut lab = Lab {
            prefix,
            created: Vec::new(),
        };
        for name in ["inet", "boot", "pub", "r1", "h1", "r2", "h2", "r3", "h3"] {
            let ns = lab.ns(name);
            run(&["ip", "netns", "add", &ns])?;
            lab.created.push(ns.clone());
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        }
        // The internet: one link per public host or home router.
        for (i, name) in [(1, "boot"), (2, "pub"), (3, "r1"), (4, "r2"), (5, "r3")] {
            lab.link(
                "inet",
                &format!("to{name}"),
                &format!("11.99.{i}.1/24"),
                name,
                "wan",
                &format!("11.99.{i}.2/24"),
            )?;
            lab.exec_ok(
                name,
                &[
                    "ip",
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("11.99.{i}.1"),
                ],
            )?;
        }
        lab.exec_ok("inet", &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        // Two homes, each behind its router, with the same LAN addresses.
        for (router, home) in [("r1", "h1"), ("r2", "h2"), ("r3", "h3")] {
            lab.link(
                router,
                "lan",
                "192.168.1.1/24",
                home,
                "eth0",
                &format!("{}/24", Self::HOME_IP),
            )?;
            lab.exec_ok(
                home,
                &["ip", "route", "add", "default", "via", "192.168.1.1"],
            )?;
            lab.exec_ok(router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
            lab.nft(router, HOME_ROUTER)?;
        }
        Ok(lab)
    }

    /// The public (WAN) address of home router `router` ("r1" …).
    pub fn router_ip(router: &str) -> String {
        let n: u8 = router[1..].parse().expect("r1, r2 or r3");
        format!("11.99.{}.2", n + 2)
    }

    /// Home router `router` forwards TCP `port` on its public address to its home's `port`.
    pub fn forward_port(&self, router: &str, port: u16) -> Result<(), LabError> {
        self.nft(
            router,
            &format!(
                "table ip nat {{
                    chain pre {{
                        type nat hook prerouting priority dstnat; policy accept;
                        iifname \"wan\" tcp dport {port} dnat to {}:{port}
                    }}
                }}
                table ip filter {{
                    chain forward {{
                        ct status dnat accept
                    }}
                }}",
                Self::HOME_IP
            ),
        )
    }

    /// Loads nftables rules into namespace `name`.
    fn nft(&self, name: &str, rules: &str) -> Result<(), LabError> {
        use std::io::Write;
        let failed = |e: std::io::Error| LabError(format!("nft in {name}: {e}"));
        let mut nft = self
            .command(name, "nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(failed)?;
        nft.stdin
            .take()
            .expect("stdin")
            .write_all(rules.as_bytes())
            .map_err(failed)?;
        let out = nft.wait_with_output().map_err(failed)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(LabError(format!(
                "nft in {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// The full name of namespace `name` of this lab.
    pub fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// A command run inside namespace `name`.
    pub fn command(&self, name: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(name), program]);
        c
    }

    fn exec_ok(&self, name: &str, args: &[&str]) -> Result<(), LabError> {
        let ns = self.ns(name);
        let mut all = vec!["ip", "netns", "exec", &ns];
        all.extend_from_slice(args);
        run(&all)
    }

    /// A veth pair between two namespaces, each end named and addressed, both up.
    fn link(
        &self,
        a: &str,
        a_if: &str,
        a_addr: &str,
        b: &str,
        b_if: &str,
        b_addr: &str,
    ) -> Result<(), LabError> {
        let (na, nb) = (self.ns(a), self.ns(b));
        run(&[
            "ip", "link", "add", a_if, "netns", &na, "type", "veth", "peer", "name", b_if, "netns",
            &nb,
        ])?;
        run(&["ip", "-n", &na, "addr", "add", a_addr, "dev", a_if])?;
        run(&["ip", "-n", &nb, "addr", "add", b_addr, "dev", b_if])?;
        run(&["ip", "-n", &na, "link", "set", a_if, "up"])?;
        run(&["ip", "-n", &nb, "link", "set", b_if, "up"])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            // Kills nothing by itself: the test ends its processes first.
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}
