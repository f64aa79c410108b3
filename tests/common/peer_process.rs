//! An app profile in its own process (`kiyeovo-test-peer`, tests/bin/peer.rs), driven line by
//! line over stdin: for kill -9 tests, and for the NAT test, where each runs in its own network
//! namespace.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);

/// One profile running in a child process.
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Every line it printed, across restarts.
    pub seen: Vec<String>,
    pub id: String,
}

impl Peer {
    /// Starts `command` (the peer binary, possibly wrapped) and waits for its `ready` line.
    pub fn spawn(command: Command) -> Peer {
        let mut peer = Self::spawn_quiet(command);
        peer.id = peer.expect("ready ").to_string();
        peer
    }

    /// Starts `command` without waiting for anything (`peer node …` says `node`, not `ready`).
    pub fn spawn_quiet(mut command: Command) -> Peer {
        // Its own process group: killing it reaches whatever wraps it or it starts (a D-Bus
        // session and keyring daemon in the NAT test), not only the first process.
        use std::os::unix::process::CommandExt;
        command.process_group(0);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("peer process starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer {
            child,
            stdin: Some(stdin),
            lines,
            seen: Vec::new(),
            id: String::new(),
        }
    }

    /// Waits for the next line starting with `prefix`; returns the rest.
    pub fn expect(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {prefix:?} line within {LIMIT:?}"));
            self.seen.push(line.clone());
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_string();
            }
        }
    }

    /// Reads lines until `count(prefix) >= n` over everything seen so far.
    pub fn until_count(&mut self, prefix: &str, n: usize) {
        while self.count(prefix) < n {
            self.expect(prefix);
        }
    }

    /// Reads lines until one `<prefix>… <total>` reports `total >= n` (the peer's database is
    /// the truth: a message stored just before a kill is never reported twice).
    pub fn until_total(&mut self, prefix: &str, n: usize) {
        loop {
            let rest = self.expect(prefix);
            let total: usize = rest.rsplit(' ').next().unwrap().parse().unwrap();
            if total >= n {
                return;
            }
        }
    }

    /// The `<prefix>` lines' first field (what was reported), to find double reports.
    pub fn reported(&self, prefix: &str) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(|rest| rest.split(' ').next().unwrap().to_string())
            .collect()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.seen.iter().filter(|l| l.starts_with(prefix)).count()
    }

    pub fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("the peer is running");
        writeln!(stdin, "{command}").expect("peer reads commands");
        stdin.flush().unwrap();
    }

    pub fn ask(&mut self, command: &str, answer: &str) -> String {
        self.send(command);
        self.expect(answer)
    }

    /// Closes its stdin, which ends it cleanly (and whatever wraps it: a D-Bus session, a
    /// keyring daemon); killed if it has not ended within 20 s.
    pub fn quit(mut self) {
        self.end(Duration::from_secs(20));
    }

    fn end(&mut self, within: Duration) {
        self.stdin = None;
        // Polled: cleanup, not a measurement; `Child` offers no wait with a timeout.
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill_group();
    }

    fn kill_group(&mut self) {
        // `kill -s KILL -- -<pgid>`: procps `kill -9 -<pgid>` reads the group as `-1` and
        // signals every process it may (it took down the whole test machine once).
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL: no destructor, no checkpoint, no goodbye.
    pub fn kill(mut self) -> Vec<String> {
        self.kill_group();
        std::mem::take(&mut self.seen)
    }
}

impl Drop for Peer {
    /// Also on a failed test: a killed wrapper would leave its D-Bus session behind.
    fn drop(&mut self) {
        self.end(Duration::from_secs(5));
    }
}
