//! Group envelopes from gossipsub and sender buckets: decoding, signature check, opening and
//! bucket ordering never panic.
#![no_main]

use kiyeovo_core::group::control::GroupKey;
use kiyeovo_core::group::envelope;
use kiyeovo_core::pairwise::bucket::{self, BucketContent, BucketLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = envelope::peek(bytes);
    if let Ok(env) = envelope::verify(bytes) {
        assert_eq!(kiyeovo_core::codec::encode(&env), bytes, "accepted a non-canonical encoding");
        let _ = envelope::open(bytes, &env.header.group_id, env.header.epoch, &GroupKey([7; 32]));
    }
    if let Ok(content) = BucketContent::decode(bytes, 1 << 20) {
        assert_eq!(content.encode(), bytes, "accepted a non-canonical encoding");
        let limits = BucketLimits { cap: 100, max_bytes: 1 << 20 };
        let merged = bucket::merge_with(&content.envelopes, &[], limits, envelope::peek);
        let _ = bucket::read_after_with(&BucketContent { envelopes: merged }, 0, envelope::peek);
    }
});
