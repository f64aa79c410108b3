//! The real `kiyeovo-node` binary: prints its address, keeps its peer id across restarts, and
//! exits cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn start(dir: &std::path::Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiyeovo-node"))
        .args(["--host", "127.0.0.1", "--port", "0", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .expect("spawn kiyeovo-node");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("kiyeovo-node printed no address");
    (child, line.trim().to_string())
}

fn sigterm_and_wait(mut child: std::process::Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("kiyeovo-node did not stop on SIGTERM")
        .unwrap()
}

#[test]
fn prints_multiaddr_keeps_peer_id_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (first, addr) = start(dir.path());
    assert!(addr.starts_with("/ip4/127.0.0.1/tcp/"), "{addr}");
    let peer = addr.rsplit("/p2p/").next().unwrap().to_string();
    assert!(peer.starts_with("12D3"), "{addr}");
    let status = sigterm_and_wait(first);
    assert!(
        status.success(),
        "exit status {status:?}; stderr:\n{}",
        std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default()
    );

    let (second, addr2) = start(dir.path());
    assert!(
        addr2.ends_with(&format!("/p2p/{peer}")),
        "peer id changed: {addr2}"
    );
    assert!(sigterm_and_wait(second).success());
}
