//! Group-info records from the DHT or pushed by anyone (PROTOCOL.md §4.8): whatever the bytes,
//! the member's check never panics, and it accepts only what re-encodes to itself. Three
//! depths: the raw record; a payload correctly signed by the admin's chain key; content sealed
//! under a key boxed to the member (so the inner decoding and roster rules are reached). Each
//! record is also offered as a joiner's first version (`check_join`).
#![no_main]

use std::sync::LazyLock;

use kiyeovo_core::codec;
use kiyeovo_core::group::control::{GroupKey, Member};
use kiyeovo_core::group::info::{self, Head, InfoRecord, KeyBox, INFO_FORMAT};
use kiyeovo_core::group::machine::bucket_public;
use kiyeovo_core::identity::Identity;
use kiyeovo_core::ids::{ControlId, GroupId};
use kiyeovo_core::records::SignedRecord;
use libfuzzer_sys::fuzz_target;

struct World {
    me: Identity,
    chain_seed: GroupKey,
    head: Head,
    /// A valid key box for `me` and the key in it.
    key_box: KeyBox,
    key: GroupKey,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let admin = Identity::generate();
    let me = Identity::generate();
    let chain_seed = GroupKey::random();
    let member = |i: &Identity, seed: &GroupKey| Member {
        id: i.public().ed25519,
        name: "m".into(),
        bucket_pub: bucket_public(seed),
        x25519: i.public().x25519,
        response: Vec::new(),
    };
    let members = vec![member(&admin, &chain_seed), member(&me, &GroupKey::random())];
    let head = Head {
        group_id: GroupId([2; 16]),
        creator: admin.public().ed25519,
        version: 1,
        hash: [1; 32],
        admin: admin.public().ed25519,
        chain_pub: bucket_public(&chain_seed),
        epoch: 1,
        members: members.clone(),
        rounds: Vec::new(),
    };
    // A real record to the member, to lift a valid key box from.
    let key = GroupKey::random();
    let info = info::GroupInfo {
        group_id: GroupId([2; 16]),
        creator: admin.public().ed25519,
        version: 2,
        prev_hash: head.hash,
        admin: admin.public().ed25519,
        epoch: 2,
        members: vec![members[1].clone()],
        boundaries: Vec::new(),
        change: info::Change::Rotated,
        made_at: 1,
    };
    let (_, bytes) = info::write(&admin, &chain_seed, info, &key);
    let record = SignedRecord::decode(&bytes, info::MAX_INFO_BYTES).unwrap();
    let payload: InfoRecord = codec::decode_bounded(&record.payload, info::MAX_INFO_BYTES).unwrap();
    World {
        me,
        chain_seed,
        head,
        key_box: payload.boxes[0].clone(),
        key,
    }
});

fn signed(w: &World, payload: Vec<u8>) -> Vec<u8> {
    let chain = ed25519_dalek::SigningKey::from_bytes(&w.chain_seed.0);
    let key = info::record_key(&w.head.chain_pub, 2);
    SignedRecord::sign(&chain, &key, 2, 1, payload).encode()
}

fuzz_target!(|bytes: &[u8]| {
    let w = &*WORLD;
    let Some((mode, rest)) = bytes.split_first() else {
        return;
    };
    let record = match mode % 3 {
        0 => rest.to_vec(),
        1 => signed(w, rest.to_vec()),
        _ => {
            let (nonce, sealed) = kiyeovo_core::storage::seal::seal_parts(
                &w.key.0,
                &info::content_aad(2, &w.head.hash),
                rest,
            );
            signed(
                w,
                codec::encode(&InfoRecord {
                    format: INFO_FORMAT,
                    prev_hash: w.head.hash,
                    boxes: vec![w.key_box.clone()],
                    nonce,
                    sealed,
                }),
            )
        }
    };
    if let Ok(info::Next::Member { info, .. }) = info::check_next(&w.head, &w.me, &record) {
        assert_eq!(info.version, 2);
        assert!(info.members.iter().any(|m| m.id == w.me.public().ed25519));
    }
    let _ = info::is_fork(&w.head.chain_pub, 2, &[0; 32], &record);
    // The same bytes offered to someone joining in an add round (its first version).
    let join = info::JoinPoint {
        group_id: GroupId([2; 16]),
        creator: w.head.admin,
        min_epoch: 0,
        admin: w.head.admin,
        chain_pub: w.head.chain_pub,
        version: 1,
        round: ControlId([3; 16]),
        bucket_pub: w.head.members[1].bucket_pub,
    };
    if let Ok(info::Next::Member { info, .. }) = info::check_join(&join, &w.me, &record) {
        let info::Change::Added { round, .. } = &info.change else {
            panic!("a joiner's first version must add it");
        };
        assert_eq!(*round, ControlId([3; 16]));
        assert!(info.members.iter().any(|m| m.id == w.me.public().ed25519));
    }
});
