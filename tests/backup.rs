//! The encrypted backup file on real parts (issue 15): written by a running profile, restored
//! into a new profile directory and keyring namespace on a "new machine", online with real nodes.

use std::sync::Mutex;

use kiyeovo_core::api::{GroupStatus, RestoreStep};
use kiyeovo_core::backup::file::{self, BackupError};
use kiyeovo_core::pairwise::channel::ChannelEvent;
use kiyeovo_core::restore::{self, RestoreError};
use kiyeovo_tests::{
    bootstrap_node, group_of, start_online, wait_bodies, wait_connected, wait_event, wait_group,
    wait_stored_messages, TestProfile,
};

const PASSPHRASE: &str = "otter lantern seventeen";

/// Waits until `app`'s bucket for `peer` holds everything it numbered (receipts too): a write
/// is asked for now and must cover the last seq.
async fn wait_bucket_holds_all(app: &kiyeovo_core::service::App, peer: &libp2p::PeerId) {
    let mut rx = app.channel().subscribe();
    let last = kiyeovo_core::contacts::store::contact(app.database().pool(), peer)
        .await
        .unwrap()
        .unwrap()
        .out_seq;
    app.channel().republish_all().await;
    wait_event(
        &mut rx,
        "the bucket written up to the last seq",
        |e| matches!(e, ChannelEvent::BucketWritten { peer: p, seq } if p == peer && *seq >= last),
    )
    .await;
}

/// Names the test looks for in the backup file's bytes: long enough that random ciphertext does
/// not contain them by chance (a 3-byte "Ana" is expected once per 16 MiB of random bytes, so
/// across many runs of a file this size it turns up — CI once failed on exactly that).
const ANA_NAME: &str = "Ana Lindqvist";
const BEN_NAME: &str = "Benjamin Okafor";

/// Backup → the original keeps sending → its machine is lost → restore the older backup on a
/// new machine: contacts trusted, the group active, the history as it was, and the restored
/// profile's new 1:1 and group messages are taken by everyone, each once, and theirs reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_brings_back_everything_and_the_restored_profile_is_heard() {
    let (_boot, addr) = bootstrap_node().await;
    let (profiles, apps, id) = group_of("bk", 3, &addr).await;
    wait_connected(&apps).await;
    let (ana, ben, cai) = (&apps[0], &apps[1], &apps[2]);
    let (ana_id, ben_id) = (ana.peer_id(), ben.peer_id());
    ana.set_display_name(ANA_NAME).await.unwrap();
    ana.channel().rename(&ben_id, BEN_NAME).await.unwrap();

    ana.channel()
        .send_chat(&ben_id, "1:1 before")
        .await
        .unwrap();
    ben.channel()
        .send_chat(&ana_id, "reply before")
        .await
        .unwrap();
    ana.chat().send(&id, "group before").await.unwrap();
    wait_stored_messages(ben, &ana_id, "1:1 before", 1).await;
    wait_stored_messages(ana, &ben_id, "reply before", 1).await;
    wait_bodies(cai, &id, &["group before"]).await;

    let folder = tempfile::tempdir().unwrap();
    let written = ana.back_up(folder.path(), PASSPHRASE).await.unwrap();
    assert!(written.path.starts_with(folder.path()));
    let bytes = std::fs::read(&written.path).unwrap();
    assert_eq!(bytes.len() as u64, written.bytes);
    // Nothing readable but the format: no name, no message, no peer id.
    for secret in [
        ANA_NAME,
        BEN_NAME,
        "1:1 before",
        "group before",
        &ana_id.to_string(),
    ] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} readable in the file"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&written.path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the backup is readable by others");
    }

    // The original goes on after the backup: these are in nobody's backup, only with the others.
    ana.channel()
        .send_chat(&ben_id, "1:1 after backup")
        .await
        .unwrap();
    ana.chat().send(&id, "group after backup").await.unwrap();
    wait_stored_messages(ben, &ana_id, "1:1 after backup", 1).await;
    wait_bodies(cai, &id, &["group before", "group after backup"]).await;
    wait_bodies(ben, &id, &["group before", "group after backup"]).await;
    wait_bucket_holds_all(ana, &ben_id).await;
    kiyeovo_tests::wait_all_stored(ana, &id).await;
    let history_at_backup = 2; // "1:1 before", "reply before"

    // Ana's machine is lost: data directory and keyring entries gone.
    let mut apps = apps;
    let ana = apps.remove(0);
    ana.shutdown().await;
    let (ben, cai) = (&apps[0], &apps[1]);
    profiles[0].keystore().delete_all().unwrap();
    std::fs::remove_dir_all(profiles[0].base.path().join("profiles")).unwrap();

    let elsewhere = TestProfile::new("bk-restored");
    let steps = Mutex::new(Vec::new());
    let restored = restore::from_backup(
        &elsewhere.name,
        Some(elsewhere.base.path()),
        &written.path,
        PASSPHRASE,
        |s| steps.lock().unwrap().push(s),
    )
    .await
    .unwrap();
    assert_eq!(
        *steps.lock().unwrap(),
        [
            RestoreStep::Reading,
            RestoreStep::Unlocking,
            RestoreStep::Writing,
            RestoreStep::Keys
        ]
    );
    assert_eq!(restored.peer_id, ana_id.to_string());
    assert_eq!((restored.contacts, restored.groups), (2, 1));
    let mut config = elsewhere.config(std::slice::from_ref(&addr));
    config.group = kiyeovo_tests::group_config();
    let back = start_online(config).await;
    assert_eq!(back.peer_id(), ana_id);
    assert!(
        back.snapshot().warnings.is_empty(),
        "{:?}",
        back.snapshot().warnings
    );
    assert_eq!(back.display_name(), ANA_NAME);
    let contacts = back.channel().contacts().await.unwrap();
    assert_eq!(contacts.len(), 2);
    assert!(
        contacts.iter().all(|c| c.trusted_at.is_some()),
        "{contacts:?}"
    );
    assert!(
        contacts.iter().any(|c| c.display_name == BEN_NAME),
        "{contacts:?}"
    );
    let history = kiyeovo_tests::chat_bodies(&back, &ben_id, None).await;
    assert_eq!(
        &history[..history_at_backup],
        ["1:1 before", "reply before"]
    );
    wait_group(&back, &id, "active", |v| v.status == GroupStatus::Active).await;

    // New messages from the restored profile: taken by everyone, each once, no gap.
    back.channel()
        .send_chat(&ben_id, "1:1 after restore")
        .await
        .unwrap();
    back.chat().send(&id, "group after restore").await.unwrap();
    wait_stored_messages(ben, &ana_id, "1:1 after restore", 1).await;
    let at_ben = kiyeovo_tests::chat_bodies(ben, &ana_id, Some(false)).await;
    assert_eq!(
        at_ben,
        ["1:1 before", "1:1 after backup", "1:1 after restore"]
    );
    let group_all = ["group before", "group after backup", "group after restore"];
    wait_bodies(ben, &id, &group_all).await;
    wait_bodies(cai, &id, &group_all).await;
    for app in [ben, cai] {
        let view = app.chat().chat(&id).await.unwrap();
        assert!(view.gaps.is_empty(), "{}: {:?}", app.profile(), view.gaps);
    }
    // And theirs reach the restored profile, with what it missed since the backup.
    ben.channel()
        .send_chat(&ana_id, "welcome back")
        .await
        .unwrap();
    cai.chat().send(&id, "cai says hi").await.unwrap();
    wait_stored_messages(&back, &ben_id, "welcome back", 1).await;
    // Restored Ana's 1:1 history: the backup's, what she wrote after it from the lost machine
    // (read from her bucket before her first send), and the new.
    let mine = kiyeovo_tests::chat_bodies(&back, &ben_id, Some(true)).await;
    assert_eq!(
        mine,
        ["1:1 before", "1:1 after backup", "1:1 after restore"]
    );
    wait_bodies(
        &back,
        &id,
        &[
            "group before",
            "group after backup",
            "group after restore",
            "cai says hi",
        ],
    )
    .await;
    back.shutdown().await;
    for app in apps {
        app.shutdown().await;
    }
}

/// Wrong passphrase, a file cut short, a changed byte, a newer format, another file: each is
/// refused in words, writes nothing (the profile stays new) and never panics; and a backup is
/// never restored over an existing profile.
#[tokio::test]
async fn a_bad_backup_or_passphrase_is_refused_in_words_and_writes_nothing() {
    let source = TestProfile::new("bk-bad-src");
    let app = kiyeovo_core::service::App::start(source.config(&[]))
        .await
        .unwrap();
    let folder = tempfile::tempdir().unwrap();
    assert_eq!(
        app.back_up(folder.path(), "too short").await.unwrap_err(),
        BackupError::PassphraseTooShort
    );
    let good = std::fs::read(app.back_up(folder.path(), PASSPHRASE).await.unwrap().path).unwrap();
    let source_peer = app.peer_id().to_string();
    app.shutdown().await;

    let cut = good[..good.len() - 100].to_vec();
    let mut changed = good.clone();
    let middle = changed.len() / 2;
    changed[middle] ^= 0x20;
    let mut newer = good.clone();
    newer[file::MAGIC.len()] = file::FORMAT + 1;
    let cases: Vec<(&str, Vec<u8>, &str, BackupError)> = vec![
        (
            "wrong passphrase",
            good.clone(),
            "otter lantern seventeen!",
            BackupError::WrongPassphraseOrChanged,
        ),
        (
            "cut short",
            cut,
            PASSPHRASE,
            BackupError::Truncated { missing: 100 },
        ),
        (
            "a changed byte",
            changed,
            PASSPHRASE,
            BackupError::WrongPassphraseOrChanged,
        ),
        (
            "a newer format",
            newer,
            PASSPHRASE,
            BackupError::NewerFormat(file::FORMAT + 1),
        ),
        (
            "another file",
            b"PK\x03\x04 a zip file".to_vec(),
            PASSPHRASE,
            BackupError::NotABackup,
        ),
    ];
    let target = TestProfile::new("bk-bad-dst");
    for (what, bytes, passphrase, want) in cases {
        let path = folder.path().join(format!("{what}.kiyeovo-backup"));
        std::fs::write(&path, bytes).unwrap();
        let err = restore::from_backup(
            &target.name,
            Some(target.base.path()),
            &path,
            passphrase,
            |_| {},
        )
        .await
        .unwrap_err();
        match &err {
            RestoreError::Backup(e) => assert_eq!(*e, want, "{what}"),
            other => panic!("{what}: {other:?}"),
        }
        let ui = err.to_ui();
        assert!(
            !ui.message.is_empty() && !ui.hint.is_empty(),
            "{what}: {ui:?}"
        );
        assert!(
            !ui.message.contains(PASSPHRASE),
            "{what}: the passphrase in an error"
        );
        assert!(
            restore::is_new(&target.name, Some(target.base.path()))
                .await
                .unwrap(),
            "{what}: something was written"
        );
        assert!(!target.db_path().exists(), "{what}");
    }
    // A missing file: in words too.
    let missing = restore::from_backup(
        &target.name,
        Some(target.base.path()),
        &folder.path().join("nothing-here"),
        PASSPHRASE,
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(missing.to_ui().message.contains("cannot read"), "{missing}");
    // Never over an existing profile, even its own: the original is still there.
    let path = folder.path().join("good.kiyeovo-backup");
    std::fs::write(&path, &good).unwrap();
    let over = restore::from_backup(
        &source.name,
        Some(source.base.path()),
        &path,
        PASSPHRASE,
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(over, RestoreError::NotNew { .. }), "{over:?}");
    // And the good file restores.
    restore::from_backup(
        &target.name,
        Some(target.base.path()),
        &path,
        PASSPHRASE,
        |_| {},
    )
    .await
    .unwrap();
    assert!(target.db_path().exists());

    // A restore interrupted after the keys were stored, before its database was moved into
    // place: the next start finishes it (no empty profile, no "database was missing").
    let waiting = target.db_path().with_file_name("kiyeovo.db.restoring");
    std::fs::rename(target.db_path(), &waiting).unwrap();
    assert!(!restore::is_new(&target.name, Some(target.base.path()))
        .await
        .unwrap());
    let app = kiyeovo_core::service::App::start(target.config(&[]))
        .await
        .unwrap();
    assert!(
        app.snapshot().warnings.is_empty(),
        "{:?}",
        app.snapshot().warnings
    );
    assert!(!waiting.exists());
    assert_eq!(app.peer_id().to_string(), source_peer);
    app.shutdown().await;
    // One that never stored its keys is removed, and the profile is new again.
    let fresh = TestProfile::new("bk-bad-fresh");
    let dir = fresh.db_path().parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("kiyeovo.db.restoring"), b"left by a crash").unwrap();
    assert!(restore::is_new(&fresh.name, Some(fresh.base.path()))
        .await
        .unwrap());
    let mut config = fresh.config(&[]);
    config.create_identity = false;
    assert!(kiyeovo_core::service::App::start(config).await.is_err());
    assert!(!dir.join("kiyeovo.db.restoring").exists());
    // Not a regular file: refused before reading (a FIFO would never end).
    let fifo = folder.path().join("fifo.kiyeovo-backup");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let not_file = restore::from_backup(
        &fresh.name,
        Some(fresh.base.path()),
        &fifo,
        PASSPHRASE,
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(
        matches!(not_file, RestoreError::Backup(BackupError::NotABackup)),
        "{not_file:?}"
    );
}

/// Automatic backups: off until turned on with a passphrase (kept in the keyring); then one per
/// interval into the folder, only this profile's newest `keep` left there, each opening with the
/// passphrase; other files are never touched; turning them off removes the passphrase.
#[tokio::test]
async fn automatic_backups_are_written_each_interval_and_only_the_newest_kept() {
    use kiyeovo_core::backup::contents::Contents;
    let profile = TestProfile::new("bk-auto");
    let mut config = profile.config(&[]);
    config.auto_backup_every = std::time::Duration::from_millis(1500);
    let app = kiyeovo_core::service::App::start(config).await.unwrap();
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().display().to_string();
    assert!(!app.auto_backup().await.enabled);
    assert_eq!(
        app.set_auto_backup(true, &path, 2, None).await.unwrap_err(),
        BackupError::PassphraseTooShort
    );
    assert!(app
        .set_auto_backup(true, "relative/folder", 2, Some(PASSPHRASE))
        .await
        .is_err());
    let others = [
        "holiday.jpg",
        "kiyeovo-other-2020-01-01-000000.kiyeovo-backup",
    ];
    for name in others {
        std::fs::write(folder.path().join(name), b"not ours").unwrap();
    }
    app.set_auto_backup(true, &path, 2, Some(PASSPHRASE))
        .await
        .unwrap();
    assert_eq!(
        profile
            .keystore()
            .load_backup_passphrase()
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some(PASSPHRASE)
    );
    // Three backups written, one interval apart.
    let mut tries = std::collections::BTreeSet::new();
    tokio::time::timeout(kiyeovo_tests::WAIT, async {
        while tries.len() < 3 {
            let setting = app.auto_backup().await;
            assert_eq!(setting.last_error, None);
            tries.extend(setting.last_at);
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("three automatic backups");
    let mut ours: Vec<_> = std::fs::read_dir(folder.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !others.contains(&n.as_str()) && n.ends_with(".kiyeovo-backup"))
        .collect();
    ours.sort();
    assert!(ours.len() == 2 || ours.len() == 3, "{ours:?}"); // the third may be pruned next
    for name in &ours {
        let bytes = std::fs::read(folder.path().join(name)).unwrap();
        let plain = file::parse(&bytes).unwrap().open(PASSPHRASE).unwrap();
        let (_, identity) = Contents::decode(&plain).unwrap();
        assert_eq!(identity.peer_id(), app.peer_id());
    }
    for name in others {
        assert_eq!(
            std::fs::read(folder.path().join(name)).unwrap(),
            b"not ours"
        );
    }
    app.set_auto_backup(false, &path, 2, None).await.unwrap();
    assert!(profile
        .keystore()
        .load_backup_passphrase()
        .unwrap()
        .is_none());
    app.shutdown().await;
    let left = std::fs::read_dir(folder.path()).unwrap().count() - others.len();
    assert!(left <= 3, "{left}");
}
