//! Group control messages from the network (through a contact's pairwise envelope): strict
//! decoding, signature and bound checks, and the state machine fed with whatever decodes never
//! panic.
#![no_main]

use std::sync::LazyLock;

use kiyeovo_core::group::control::{random_id, Body, SignedControl};
use kiyeovo_core::group::machine::Group;
use kiyeovo_core::identity::Identity;
use libfuzzer_sys::fuzz_target;

static ME: LazyLock<Identity> = LazyLock::new(Identity::generate);

fuzz_target!(|bytes: &[u8]| {
    let Ok(signed) = SignedControl::decode(bytes) else {
        return;
    };
    assert_eq!(signed.encode(), bytes, "accepted a non-canonical encoding");
    let me = ME.public().ed25519;
    let group = match signed.control.body {
        Body::Invite(_) => Group::from_invite(me, &signed, random_id(), 1),
        Body::Add(_) => Group::from_add(me, &signed, random_id(), 1),
        _ => return,
    };
    if let Ok(mut group) = group {
        let _ = group.receive(&signed, bytes, &mut random_id, 2);
        let _ = group.tick(u64::MAX);
    }
});
