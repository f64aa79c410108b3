//! Pairwise envelopes and bucket contents from the network: decoding, opening with real keys,
//! merging and reading never panic.
#![no_main]

use std::sync::LazyLock;

use kiyeovo_core::identity::Identity;
use kiyeovo_core::delivery::bucket::{BucketContent, BucketLimits};
use kiyeovo_core::pairwise::bucket;
use kiyeovo_core::pairwise::envelope;
use kiyeovo_core::pairwise::keys::{derive, PairwiseKeys};
use libfuzzer_sys::fuzz_target;

static KEYS: LazyLock<(Identity, Identity, PairwiseKeys)> = LazyLock::new(|| {
    let (a, b) = (Identity::generate(), Identity::generate());
    let keys = derive(&b, &a.public());
    (a, b, keys)
});

fuzz_target!(|bytes: &[u8]| {
    let (a, b, keys) = &*KEYS;
    let _ = envelope::open(bytes, &b.public().ed25519, &a.public(), &keys.incoming);
    // The plaintext a contact controls behind the AEAD (chat, reply, receipts, group control).
    if let Ok(inner) = envelope::decode_inner(bytes) {
        assert_eq!(kiyeovo_core::codec::encode(&inner), bytes, "accepted a non-canonical encoding");
        let _ = inner.payload.text();
    }
    if let Ok(env) = envelope::outer(bytes) {
        assert_eq!(kiyeovo_core::codec::encode(&env), bytes, "accepted a non-canonical encoding");
    }
    if let Ok(content) = BucketContent::decode(bytes, 1 << 20) {
        assert_eq!(content.encode(), bytes, "accepted a non-canonical encoding");
        let merged = bucket::merge(&content.envelopes, &[], BucketLimits { cap: 100, max_bytes: 1 << 20 }, &keys.incoming);
        let _ = bucket::read_after(&BucketContent { envelopes: merged }, 0, &keys.incoming);
    }
});
