use proptest::prelude::*;

use super::*;
use crate::group::control::random_id;

/// Ana (admin) with Ben and Carol at version 1 (establishment).
struct World {
    ana: Identity,
    ben: Identity,
    carol: Identity,
    /// Each member's group-bucket seed (Ana's is the chain key).
    seeds: Vec<GroupKey>,
    group_id: GroupId,
    head: Head,
}

fn member(i: &Identity, seed: &GroupKey, name: &str) -> Member {
    Member {
        id: i.public().ed25519,
        name: name.into(),
        bucket_pub: crate::group::machine::bucket_public(seed),
        x25519: i.public().x25519,
        response: Vec::new(),
    }
}

impl World {
    fn new() -> World {
        let (ana, ben, carol) = (
            Identity::generate(),
            Identity::generate(),
            Identity::generate(),
        );
        let seeds: Vec<GroupKey> = (0..3).map(|_| GroupKey::random()).collect();
        let members = vec![
            member(&ana, &seeds[0], "Ana"),
            member(&ben, &seeds[1], "Ben"),
            member(&carol, &seeds[2], "Carol"),
        ];
        let group_id = random_id();
        let head = Head {
            group_id,
            creator: ana.public().ed25519,
            version: 1,
            hash: genesis_hash(&group_id, &ana.public().ed25519, &[7; 32]),
            admin: ana.public().ed25519,
            chain_pub: members[0].bucket_pub,
            epoch: 1,
            members,
            rounds: Vec::new(),
        };
        World {
            ana,
            ben,
            carol,
            seeds,
            group_id,
            head,
        }
    }

    /// The next version as an honest Ana writes it.
    fn next(&self, change: Change, members: Vec<Member>, admin: MemberKey) -> GroupInfo {
        GroupInfo {
            group_id: self.group_id,
            creator: self.ana.public().ed25519,
            version: self.head.version + 1,
            prev_hash: self.head.hash,
            admin,
            epoch: self.head.epoch + 1,
            members,
            boundaries: Vec::new(),
            change,
            made_at: 1_000,
        }
    }

    fn rotated(&self) -> GroupInfo {
        self.next(Change::Rotated, self.head.members.clone(), self.head.admin)
    }

    fn written(&self, info: GroupInfo) -> (GroupKey, Vec<u8>) {
        let key = GroupKey::random();
        let (_, bytes) = write(&self.ana, &self.seeds[0], info, &key);
        (key, bytes)
    }
}

#[test]
fn every_member_opens_the_next_version_and_gets_the_new_key() {
    let w = World::new();
    let info = w.rotated();
    let (key, bytes) = w.written(info.clone());
    for who in [&w.ana, &w.ben, &w.carol] {
        match check_next(&w.head, who, &bytes).unwrap() {
            Next::Member {
                info: got,
                key: k,
                hash,
            } => {
                assert_eq!(*got, info);
                assert_eq!(k, key);
                let record = SignedRecord::decode(&bytes, MAX_INFO_BYTES).unwrap();
                assert_eq!(hash, version_hash(2, &record.payload));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_removed_member_learns_it_was_removed_and_gets_no_key() {
    let w = World::new();
    let carol_id = w.carol.public().ed25519;
    let mut info = w.next(
        Change::Removed(carol_id),
        w.head.members[..2].to_vec(),
        w.head.admin,
    );
    info.boundaries = vec![(carol_id, 4)];
    let (key, bytes) = w.written(info);
    assert!(matches!(
        check_next(&w.head, &w.carol, &bytes),
        Ok(Next::Excluded { version: 2, .. })
    ));
    assert!(matches!(
        check_next(&w.head, &w.ben, &bytes),
        Ok(Next::Member { .. })
    ));
    // Nothing in the record is the key in the clear.
    assert!(!bytes.windows(32).any(|x| x == key.0));
}

#[test]
fn a_storing_node_sees_no_member_no_group_and_no_key() {
    let w = World::new();
    let (key, bytes) = w.written(w.rotated());
    let mut secrets: Vec<Vec<u8>> = vec![w.group_id.0.to_vec(), key.0.to_vec()];
    for i in [&w.ana, &w.ben, &w.carol] {
        secrets.push(i.public().ed25519.to_vec());
        secrets.push(i.public().x25519.to_vec());
    }
    for m in &w.head.members[1..] {
        secrets.push(m.bucket_pub.to_vec());
    }
    for s in secrets {
        assert!(!bytes.windows(s.len()).any(|x| x == s.as_slice()));
    }
}

#[test]
fn older_and_skipping_versions_are_refused() {
    let mut w = World::new();
    let (_, v2) = w.written(w.rotated());
    // A version 3 written on top of version 2 (which this member has not applied yet).
    let Next::Member { info, hash, .. } = check_next(&w.head, &w.ben, &v2).unwrap() else {
        panic!()
    };
    let before = w.head.clone();
    w.head.version = 2;
    w.head.hash = hash;
    w.head.epoch = info.epoch;
    let (_, v3) = w.written(w.rotated());
    assert_eq!(
        check_next(&before, &w.ben, &v3),
        Err(ChainError::Skips { got: 3, have: 1 })
    );
    // Rollback: version 2 again once at 2.
    assert_eq!(
        check_next(&w.head, &w.ben, &v2),
        Err(ChainError::Stale { got: 2, have: 2 })
    );
    assert!(matches!(
        check_next(&w.head, &w.ben, &v3),
        Ok(Next::Member { .. })
    ));
}

#[test]
fn a_version_not_written_by_the_admin_is_refused() {
    let w = World::new();
    // Ben writes a version under his own bucket key: not the chain location.
    let info = w.rotated();
    let key = GroupKey::random();
    let (_, by_ben) = write(&w.ben, &w.seeds[1], info.clone(), &key);
    assert_eq!(
        check_next(&w.head, &w.carol, &by_ben),
        Err(ChainError::NotAdmin)
    );
    // Someone holding the chain key but not the admin's identity (content signed by Ben).
    let (_, wrong_signer) = write(&w.ben, &w.seeds[0], info, &key);
    assert_eq!(
        check_next(&w.head, &w.carol, &wrong_signer),
        Err(ChainError::NotAdmin)
    );
}

#[test]
fn a_version_on_another_previous_hash_is_a_fork_and_two_versions_n_are_seen() {
    let w = World::new();
    let mut info = w.rotated();
    info.prev_hash = [9; 32];
    let (_, forked) = w.written(info);
    assert_eq!(
        check_next(&w.head, &w.ben, &forked),
        Err(ChainError::Fork { version: 2 })
    );
    // Two different honest-looking versions 2: whoever applied one recognises the other.
    let (_, a) = w.written(w.rotated());
    let (_, b) = w.written(w.rotated());
    let Next::Member { hash, .. } = check_next(&w.head, &w.ben, &a).unwrap() else {
        panic!()
    };
    assert!(is_fork(&w.head.chain_pub, 2, &hash, &b));
    assert!(!is_fork(&w.head.chain_pub, 2, &hash, &a));
}

#[test]
fn the_roster_may_change_only_as_the_change_says() {
    let w = World::new();
    let ana = w.ana.public().ed25519;
    let ben = w.ben.public().ed25519;
    let carol = w.carol.public().ed25519;
    let all = w.head.members.clone();
    let without_carol = all[..2].to_vec();
    let mut renamed = all.clone();
    renamed[2].name = "Mallory".into();
    let mut swapped_key = all.clone();
    swapped_key[1].bucket_pub = [3; 32];
    let eve = Identity::generate();
    // Eve joins with her own signed acceptance of round 5 (checked by every member).
    let round = crate::ids::ControlId([5; 16]);
    let mut eve_entry = member(&eve, &GroupKey::random(), "Eve");
    eve_entry.response = crate::group::control::Control {
        id: random_id(),
        group_id: w.group_id,
        sent_at: 0,
        body: crate::group::control::Body::Response(crate::group::control::Response {
            invite_id: round,
            accept: true,
            list_hash: [0; 32],
            bucket_pub: Some(eve_entry.bucket_pub),
            window_bucket_pub: None,
            x25519: eve_entry.x25519,
            responded_at: 0,
        }),
    }
    .sign(&eve)
    .encode();
    let mut with_eve = all.clone();
    with_eve.push(eve_entry);
    let cases: Vec<(&str, GroupInfo, bool)> = vec![
        ("rotate", w.next(Change::Rotated, all.clone(), ana), true),
        (
            "rotate that drops someone",
            w.next(Change::Rotated, without_carol.clone(), ana),
            false,
        ),
        (
            "remove",
            w.next(Change::Removed(carol), without_carol.clone(), ana),
            true,
        ),
        (
            "remove someone else than who is gone",
            w.next(Change::Removed(ben), without_carol.clone(), ana),
            false,
        ),
        (
            "remove the admin",
            w.next(Change::Removed(ana), all[1..].to_vec(), ana),
            false,
        ),
        (
            "leave",
            w.next(Change::Left(carol), without_carol.clone(), ana),
            true,
        ),
        (
            "add",
            w.next(
                Change::Added {
                    who: vec![eve.public().ed25519],
                    round,
                },
                with_eve.clone(),
                ana,
            ),
            true,
        ),
        (
            "add without saying so",
            w.next(Change::Rotated, with_eve, ana),
            false,
        ),
        (
            "hand over",
            w.next(Change::AdminTo(ben), all.clone(), ben),
            true,
        ),
        (
            "hand over to someone not named",
            w.next(Change::AdminTo(ben), all.clone(), carol),
            false,
        ),
        (
            "hand over to a non-member",
            w.next(
                Change::AdminTo(eve.public().ed25519),
                all.clone(),
                eve.public().ed25519,
            ),
            false,
        ),
        (
            "admin changes without a hand-over",
            w.next(Change::Rotated, all.clone(), ben),
            false,
        ),
        (
            "a member renamed",
            w.next(Change::Rotated, renamed, ana),
            false,
        ),
        (
            "a member's bucket key swapped",
            w.next(Change::Rotated, swapped_key, ana),
            false,
        ),
        ("disband", w.next(Change::Disbanded, all.clone(), ana), true),
        (
            "the epoch jumps",
            GroupInfo {
                epoch: 5,
                ..w.next(Change::Rotated, all.clone(), ana)
            },
            false,
        ),
        (
            "a boundary for someone who stays",
            GroupInfo {
                boundaries: vec![(ben, 3)],
                ..w.next(Change::Rotated, all.clone(), ana)
            },
            false,
        ),
        (
            "a boundary for who left",
            GroupInfo {
                boundaries: vec![(carol, 3)],
                ..w.next(Change::Left(carol), without_carol, ana)
            },
            true,
        ),
        (
            "a member's key weak",
            w.next(
                Change::Rotated,
                {
                    let mut weak = all.clone();
                    weak[1].x25519 = [0; 32];
                    weak
                },
                ana,
            ),
            false,
        ),
        (
            "a member twice",
            w.next(
                Change::Rotated,
                [all.clone(), all[..1].to_vec()].concat(),
                ana,
            ),
            false,
        ),
    ];
    for (what, info, ok) in cases {
        assert_eq!(check_change(&w.head, &info, &ana).is_ok(), ok, "{what}");
    }
}

#[test]
fn a_box_for_us_with_us_missing_from_the_roster_is_refused() {
    let w = World::new();
    // Ana seals a key to Carol but lists only Ana and Ben: Carol must not act on it.
    let mut info = w.rotated();
    let carol_entry = info.members.pop().unwrap();
    info.change = Change::Removed(carol_entry.id);
    let key = GroupKey::random();
    let (_, bytes) = write(&w.ana, &w.seeds[0], info.clone(), &key);
    // Rewrite with an extra box for Carol by writing for all three and swapping the content.
    let mut with_carol = info.clone();
    with_carol.members.push(carol_entry);
    let (_, all_boxes) = write(&w.ana, &w.seeds[0], with_carol, &key);
    let take = |b: &[u8]| {
        let r = SignedRecord::decode(b, MAX_INFO_BYTES).unwrap();
        let p: InfoRecord = codec::decode_bounded(&r.payload, MAX_INFO_BYTES).unwrap();
        p
    };
    let mut payload = take(&bytes);
    payload.boxes = take(&all_boxes).boxes;
    let chain = ed25519_dalek::SigningKey::from_bytes(&w.seeds[0].0);
    let dht_key = record_key(&w.head.chain_pub, 2);
    let forged = SignedRecord::sign(&chain, &dht_key, 2, 0, codec::encode(&payload)).encode();
    assert!(check_next(&w.head, &w.carol, &forged).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any change to a record's bytes: refused or, if it still decodes to the very same record,
    /// the same result; never a panic, never another key.
    #[test]
    fn altered_records_never_yield_another_key(pos in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let w = World::new();
        let (key, mut bytes) = w.written(w.rotated());
        let i = pos.index(bytes.len());
        bytes[i] ^= xor;
        match check_next(&w.head, &w.ben, &bytes) {
            Ok(Next::Member { key: k, .. }) => prop_assert_eq!(k, key),
            Ok(Next::Excluded { .. }) | Err(_) => {}
        }
    }

    /// Random bytes at the chain location never panic the reader.
    #[test]
    fn random_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let w = World::new();
        prop_assert!(check_next(&w.head, &w.ben, &bytes).is_err());
    }
}
