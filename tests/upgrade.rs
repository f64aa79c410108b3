//! Data survives upgrades: a profile written by the previous version (v0.1, before protocol v2;
//! `tests/fixtures/profile-v0.1/`, made by `tests/fixtures/generate_profile_v0_1.rs` at commit
//! f655f78) opens with this version with its identity, contacts, 1:1 history and group history.

use std::path::Path;

use kiyeovo_core::api::GroupStatus;
use kiyeovo_core::identity::Identity;
use kiyeovo_core::service::App;
use kiyeovo_core::PeerId;
use kiyeovo_tests::TestProfile;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/profile-v0.1");

fn unhex(text: &str) -> Vec<u8> {
    let t = text.trim();
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).expect("hex"))
        .collect()
}

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURE).join(name)).expect("fixture file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_written_by_the_previous_version_opens_with_everything() {
    let profile = TestProfile::new("upgrade");
    // The old profile as a user would have it: the database in the data dir (copied with the
    // permissive mode a backup tool might leave), the two secrets in the keyring.
    let db = profile.db_path();
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::copy(Path::new(FIXTURE).join("kiyeovo.db"), &db).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(db.parent().unwrap(), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    let identity = Identity::from_secret_bytes(&unhex(&read("identity.hex"))).unwrap();
    let keystore = profile.keystore();
    keystore.store_identity(&identity).unwrap();
    let storage: [u8; 32] = unhex(&read("storage.hex")).try_into().unwrap();
    keystore.store_storage_key(&storage).unwrap();

    let app = App::start(profile.config(&[]))
        .await
        .expect("old profile opens");

    let expected = read("expected.txt");
    let mut chats = Vec::new();
    let mut gchats = Vec::new();
    let (mut contact, mut group) = (None, None);
    for line in expected.lines() {
        let (kind, rest) = line.split_once(' ').unwrap();
        match kind {
            "peer_id" => assert_eq!(app.peer_id().to_string(), rest, "identity kept"),
            "contact" => contact = Some(rest.split_once(' ').unwrap()),
            "chat" => chats.push(rest.split_once(' ').unwrap()),
            "group" => group = Some(rest.split_once(' ').unwrap()),
            "gchat" => gchats.push(rest.split_once(' ').unwrap()),
            other => panic!("unknown fixture line {other}"),
        }
    }

    let (peer, name) = contact.expect("fixture has a contact");
    let contacts = app.channel().contacts().await.unwrap();
    let c = contacts
        .iter()
        .find(|c| c.peer_id == peer)
        .expect("contact kept");
    assert_eq!(c.display_name, name);
    assert!(c.trusted_at.is_some(), "still trusted");
    let peer: PeerId = peer.parse().unwrap();
    let history: Vec<(String, String)> = app
        .channel()
        .messages(&peer)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.outgoing.to_string(), m.body))
        .collect();
    let want: Vec<(String, String)> = chats
        .iter()
        .map(|(o, b)| (o.to_string(), b.to_string()))
        .collect();
    assert_eq!(history, want, "1:1 history kept, in order");

    let (id, gname) = group.expect("fixture has a group");
    let view = app.groups().get(id).await.expect("group kept");
    assert_eq!(view.name, gname);
    assert_eq!(view.status, GroupStatus::Active);
    let ghistory: Vec<(String, String)> = app
        .chat()
        .chat(id)
        .await
        .unwrap()
        .messages
        .into_iter()
        .map(|m| (m.outgoing.to_string(), m.body))
        .collect();
    let gwant: Vec<(String, String)> = gchats
        .iter()
        .map(|(o, b)| (o.to_string(), b.to_string()))
        .collect();
    assert_eq!(ghistory, gwant, "group history kept");

    // And the profile is private now (it was readable by others).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(db.parent().unwrap()), 0o700);
        assert_eq!(mode(&db), 0o600);
    }
    app.shutdown().await;

    // The plaintext file v0.1 wrote is encrypted now: the contact's name and peer id, the group's
    // id are nowhere in it.
    let fixture = std::fs::read(Path::new(FIXTURE).join("kiyeovo.db")).unwrap();
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    let now = std::fs::read(&db).unwrap();
    assert!(!kiyeovo_core::storage::cipher::is_plaintext(&db).unwrap());
    // (The group's name was sealed already.)
    for secret in [peer.to_string().as_str(), name, id] {
        assert!(
            contains(&fixture, secret),
            "the fixture had {secret:?} in the clear"
        );
        // A name of a few bytes ("Ben") turns up in random ciphertext by chance now and then
        // (once per 16 MiB for 3 bytes): only what is long enough to mean something is looked for.
        if secret.len() >= 8 {
            assert!(!contains(&now, secret), "{secret:?} still readable");
        }
    }
    assert!(!contains(&now, gname));

    // It opens again, encrypted, with everything.
    let again = App::start(profile.config(&[])).await.expect("reopens");
    assert_eq!(again.groups().get(id).await.unwrap().name, gname);
    again.shutdown().await;
}
