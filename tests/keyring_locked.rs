//! A locked keyring: start-up stops with words that say "unlock it", creates nothing and
//! changes nothing. Runs its own private D-Bus session and GNOME Keyring (its own test binary,
//! because it repoints D-Bus for the whole process), so locking it cannot disturb other tests.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kiyeovo_core::api::ErrorCode;
use kiyeovo_core::error::StartupError;
use kiyeovo_core::keystore::KeyringError;
use kiyeovo_core::service::App;
use kiyeovo_tests::TestProfile;

struct PrivateSession {
    bus: Child,
    _home: tempfile::TempDir,
}

impl Drop for PrivateSession {
    fn drop(&mut self) {
        // The keyring daemon exits with its session bus.
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

fn private_keyring() -> PrivateSession {
    // Everything a keyring daemon uses to find an already-running instance (its control socket
    // lives under XDG_RUNTIME_DIR, falling back to HOME) points into a fresh directory, so this
    // daemon can never attach to — and lock — the keyring the other tests use.
    let home = tempfile::tempdir().unwrap();
    let isolate = |cmd: &mut Command| {
        cmd.env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", home.path())
            .env("XDG_DATA_HOME", home.path())
            .env("XDG_CACHE_HOME", home.path())
            .env_remove("GNOME_KEYRING_CONTROL");
    };
    let mut bus_cmd = Command::new("dbus-daemon");
    isolate(&mut bus_cmd);
    let mut bus = bus_cmd
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-daemon");
    let mut address = String::new();
    BufReader::new(bus.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", address.trim());
    // `--unlock` returns once the daemon serves the Secret Service with the login keyring open.
    let mut daemon_cmd = Command::new("gnome-keyring-daemon");
    isolate(&mut daemon_cmd);
    let mut daemon = daemon_cmd
        .args(["--unlock", "--components=secrets"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gnome-keyring-daemon");
    daemon
        .stdin
        .take()
        .unwrap()
        .write_all(b"kiyeovo-test")
        .unwrap();
    assert!(daemon.wait().unwrap().success());
    PrivateSession { bus, _home: home }
}

fn lock_login_collection() {
    let out = Command::new("dbus-send")
        .args([
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/collection/login",
        ])
        .output()
        .expect("dbus-send");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn locked_keyring_gives_a_clear_error_and_changes_nothing() {
    let _session = private_keyring();
    let profile = TestProfile::new("locked");
    let app = App::start(profile.config(&[])).await.expect("first start");
    app.shutdown().await;
    let db_before = std::fs::read(profile.db_path()).unwrap();

    lock_login_collection();
    let result = tokio::time::timeout(Duration::from_secs(60), App::start(profile.config(&[])))
        .await
        .expect("start-up must not hang on a locked keyring");
    let err = match result {
        Ok(_) => panic!("started with a locked keyring"),
        Err(e) => e,
    };
    assert!(
        matches!(err, StartupError::Keyring(KeyringError::Denied(_))),
        "{err}"
    );
    let ui = err.to_ui();
    assert_eq!(ui.code, ErrorCode::KeyringDenied);
    assert!(ui.hint.contains("Unlock"), "{}", ui.hint);
    assert_eq!(std::fs::read(profile.db_path()).unwrap(), db_before);
}
