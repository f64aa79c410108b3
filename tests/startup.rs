//! Start-up against bad input: each case gives a clear, typed error (and the words the UI shows),
//! loses no data, and never panics.

use std::net::TcpListener;

use kiyeovo_core::api::{BootstrapState, ErrorCode};
use kiyeovo_core::error::StartupError;
use kiyeovo_core::keystore::KeyringError;
use kiyeovo_core::profile::ProfileError;
use kiyeovo_core::service::App;
use kiyeovo_core::storage::DbError;
use kiyeovo_tests::{wait_for, TestProfile};

/// Starts a profile once so it has an identity, a database and keyring entries.
async fn established(tag: &str) -> (TestProfile, String) {
    let profile = TestProfile::new(tag);
    let app = App::start(profile.config(&[])).await.expect("first start");
    let peer = app.peer_id().to_string();
    app.set_display_name("Before").await.unwrap();
    app.shutdown().await;
    (profile, peer)
}

fn start_error(result: Result<App, StartupError>) -> StartupError {
    match result {
        Ok(_) => panic!("start-up should have failed"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn first_start_creates_identity_in_keyring_and_second_start_loads_it() {
    let profile = TestProfile::new("first");
    assert!(profile.keystore().load_identity().unwrap().is_none());
    let app = App::start(profile.config(&[])).await.unwrap();
    let peer = app.peer_id();
    let stored = profile
        .keystore()
        .load_identity()
        .unwrap()
        .expect("identity in keyring");
    assert_eq!(stored.peer_id(), peer);
    assert!(profile.keystore().load_storage_key().unwrap().is_some());
    app.shutdown().await;
    // Nothing secret in the database file.
    let db_bytes = std::fs::read(profile.db_path()).unwrap();
    let secret = stored.to_secret_bytes();
    assert!(!db_bytes.windows(32).any(|w| w == &secret[1..33]));

    let again = App::start(profile.config(&[])).await.unwrap();
    assert_eq!(again.peer_id(), peer);
    again.shutdown().await;
}

#[tokio::test]
async fn corrupt_database_is_reported_and_left_untouched() {
    let (profile, peer) = established("corrupt").await;
    let path = profile.db_path();
    let original = std::fs::read(&path).unwrap();
    let garbage = b"definitely not sqlite ".repeat(512);
    std::fs::write(&path, &garbage).unwrap();

    let err = start_error(App::start(profile.config(&[])).await);
    assert!(
        matches!(err, StartupError::Database(DbError::Corrupt { .. })),
        "{err}"
    );
    let ui = err.to_ui();
    assert_eq!(ui.code, ErrorCode::DatabaseCorrupt);
    assert!(ui.message.contains("damaged"), "{}", ui.message);
    assert!(ui.hint.contains("Nothing was changed"), "{}", ui.hint);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "the damaged file was modified"
    );

    // Restoring the file brings everything back, identity included.
    std::fs::write(&path, &original).unwrap();
    let app = App::start(profile.config(&[])).await.unwrap();
    assert_eq!(app.peer_id().to_string(), peer);
    assert_eq!(app.snapshot().display_name, "Before");
    app.shutdown().await;
}

#[tokio::test]
async fn missing_database_is_recreated_and_identity_kept() {
    let (profile, peer) = established("missing").await;
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", profile.db_path().display()));
    }
    let app = App::start(profile.config(&[])).await.unwrap();
    assert_eq!(app.peer_id().to_string(), peer);
    let warnings = app.snapshot().warnings;
    assert!(
        warnings.iter().any(|w| w.contains("database was missing")),
        "{warnings:?}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn keyring_without_identity_never_orphans_existing_data() {
    let (profile, peer) = established("nokey").await;
    profile.keystore().delete_all().unwrap();
    let before = std::fs::read(profile.db_path()).unwrap();

    let err = start_error(App::start(profile.config(&[])).await);
    assert!(
        matches!(&err, StartupError::IdentityMissing { peer_id, .. } if *peer_id == peer),
        "{err}"
    );
    assert_eq!(err.to_ui().code, ErrorCode::IdentityMissing);
    assert!(
        profile.keystore().load_identity().unwrap().is_none(),
        "a new identity was created"
    );
    assert_eq!(std::fs::read(profile.db_path()).unwrap(), before);
}

#[tokio::test]
async fn damaged_keyring_entry_is_reported() {
    let (profile, _) = established("badkey").await;
    keyring::Entry::new("kiyeovo", &format!("{}/identity", profile.name))
        .unwrap()
        .set_secret(b"short")
        .unwrap();
    let err = start_error(App::start(profile.config(&[])).await);
    assert!(
        matches!(err, StartupError::Keyring(KeyringError::Corrupt { .. })),
        "{err}"
    );
    assert_eq!(err.to_ui().code, ErrorCode::KeyringCorrupt);
}

#[tokio::test]
async fn second_instance_of_a_profile_is_refused() {
    let profile = TestProfile::new("twice");
    let first = App::start(profile.config(&[])).await.unwrap();
    let err = start_error(App::start(profile.config(&[])).await);
    assert!(
        matches!(
            err,
            StartupError::Profile(ProfileError::AlreadyRunning { .. })
        ),
        "{err}"
    );
    let ui = err.to_ui();
    assert_eq!(ui.code, ErrorCode::AlreadyRunning);
    assert!(ui.message.contains("already running"), "{}", ui.message);
    // The first instance is unaffected.
    first.set_display_name("still here").await.unwrap();
    first.shutdown().await;
}

#[tokio::test]
async fn unreachable_bootstrap_is_shown_and_retried() {
    let profile = TestProfile::new("unreach");
    let nobody = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    // Port 1 on loopback: nothing listens there.
    let addr = format!("/ip4/127.0.0.1/tcp/1/p2p/{nobody}");
    let app = App::start(profile.config(&[addr]))
        .await
        .expect("starts anyway");
    let mut rx = app.snapshots();
    let s = wait_for(&mut rx, "bootstrap failure", |s| {
        matches!(
            s.node.as_ref().map(|n| &n.bootstrap),
            Some(BootstrapState::Failed { .. })
        )
    })
    .await;
    let Some(BootstrapState::Failed { reason, .. }) = s.node.map(|n| n.bootstrap) else {
        unreachable!()
    };
    assert!(reason.contains("127.0.0.1/tcp/1"), "{reason}");
    // It tries again on its own (retry timer shrunk to 1 s by the test config).
    wait_for(&mut rx, "a retry", |s| {
        matches!(
            s.node.as_ref().map(|n| &n.bootstrap),
            Some(BootstrapState::Connecting)
        )
    })
    .await;
    app.shutdown().await;
}

#[tokio::test]
async fn malformed_bootstrap_address_is_a_warning() {
    let profile = TestProfile::new("badaddr");
    let app = App::start(profile.config(&["/ip4/127.0.0.1/tcp/4001".to_string()]))
        .await
        .unwrap();
    let s = app.snapshot();
    assert!(
        s.warnings.iter().any(|w| w.contains("/p2p/")),
        "{:?}",
        s.warnings
    );
    assert_eq!(s.node.unwrap().bootstrap, BootstrapState::NotConfigured);
    app.shutdown().await;
}

#[tokio::test]
async fn port_in_use_falls_back_with_a_warning() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let profile = TestProfile::new("port");
    let mut config = profile.config(&[]);
    config.listen_port = Some(port);
    let app = App::start(config).await.unwrap();
    let mut rx = app.snapshots();
    let s = wait_for(&mut rx, "a TCP listen address", |s| {
        s.node
            .as_ref()
            .is_some_and(|n| n.listen_addrs.iter().any(|a| a.contains("/tcp/")))
    })
    .await;
    let node = s.node.unwrap();
    assert!(
        node.warnings
            .iter()
            .any(|w| w.contains(&format!("TCP port {port}"))),
        "{:?}",
        node.warnings
    );
    assert!(!node
        .listen_addrs
        .iter()
        .any(|a| a.contains(&format!("/tcp/{port}/"))));
    app.shutdown().await;
}

#[tokio::test]
async fn display_name_is_validated_with_words() {
    let profile = TestProfile::new("name");
    let app = App::start(profile.config(&[])).await.unwrap();
    let err = app.set_display_name("   ").await.unwrap_err();
    let ui = err.to_ui();
    assert_eq!(ui.code, ErrorCode::InvalidInput);
    assert!(ui.message.contains("cannot be empty"));
    assert_eq!(app.set_display_name(" Bo ").await.unwrap(), "Bo");
    assert_eq!(app.snapshot().display_name, "Bo");
    app.shutdown().await;
}

/// A contact saved by an older version with a weak (low-order) X25519 key — which cards are now
/// checked for — is blocked and untrusted when the profile opens, so nothing is ever sealed with
/// a secret anyone could compute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_contact_with_a_weak_key_is_blocked_at_start() {
    use kiyeovo_core::contacts::store;
    use kiyeovo_core::contacts::ContactCard;
    use kiyeovo_core::identity::{Identity, PublicIdentity};
    use kiyeovo_core::sign::Domain;
    let (profile, _) = established("weakkey").await;
    // What an older version could have stored: a card binding a low-order point.
    let mallory = Identity::generate();
    let mut card = ContactCard::new(&mallory, "Mallory", Vec::new(), 1);
    card.identity = PublicIdentity {
        ed25519: mallory.public().ed25519,
        x25519: [0; 32],
        binding: mallory.sign(Domain::X25519Binding, &[0; 32]),
    };
    let peer = mallory.peer_id();
    {
        let key = profile.keystore().load_storage_key().unwrap().unwrap();
        let db = kiyeovo_core::storage::Database::open(&profile.db_path(), &key)
            .await
            .unwrap();
        store::upsert_card(db.pool(), &card, &peer, 1)
            .await
            .unwrap();
        let mut tx = kiyeovo_core::storage::db::write_tx(db.pool())
            .await
            .unwrap();
        store::set_trusted(&mut tx, &peer, 2).await.unwrap();
        tx.commit().await.unwrap();
        db.close().await;
    }
    let app = App::start(profile.config(&[])).await.unwrap();
    let c = app
        .channel()
        .contacts()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.peer_id == peer.to_string())
        .unwrap();
    assert!(c.blocked && c.trusted_at.is_none(), "{c:?}");
    app.shutdown().await;
}
