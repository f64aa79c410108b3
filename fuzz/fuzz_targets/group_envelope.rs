//! Group envelopes from gossipsub and sender buckets: decoding, opening (decryption, signature
//! check) and bucket ordering never panic; whatever decodes is canonical.
#![no_main]

use kiyeovo_core::group::control::GroupKey;
use kiyeovo_core::group::envelope;
use kiyeovo_core::delivery::bucket::{self, BucketContent, BucketLimits};
use libfuzzer_sys::fuzz_target;

const KEY: GroupKey = GroupKey([7; 32]);

fuzz_target!(|bytes: &[u8]| {
    let _ = envelope::peek(bytes, &KEY);
    // The plaintext a member controls behind the AEAD, in both layouts still read (v3 with the
    // reply reference, v2 without).
    if let Ok(inner) = envelope::decode_inner(envelope::GROUP_ENVELOPE_VERSION, bytes) {
        assert_eq!(kiyeovo_core::codec::encode(&inner), bytes, "accepted a non-canonical encoding");
    }
    let _ = envelope::decode_inner(2, bytes);
    if let Ok(env) = envelope::outer(bytes) {
        assert_eq!(kiyeovo_core::codec::encode(&env), bytes, "accepted a non-canonical encoding");
        let _ = envelope::open(bytes, &kiyeovo_core::ids::GroupId([0; 16]), 1, &KEY);
    }
    if let Ok(content) = BucketContent::decode(bytes, 1 << 20) {
        assert_eq!(content.encode(), bytes, "accepted a non-canonical encoding");
        let limits = BucketLimits { cap: 100, max_bytes: 1 << 20 };
        let merged = bucket::merge(&content.envelopes, &[], limits, |e| envelope::peek(e, &KEY));
        let _ = bucket::read_after(&merged, 0, |e| envelope::peek(e, &KEY));
    }
});
