//! Any (key, value, stored) triple from the network: validation returns a verdict or a typed
//! error, never panics, never accepts something `check` alone would refuse, and whatever it
//! accepts is the one canonical encoding of its record (PROTOCOL.md §1).
#![no_main]

use kiyeovo_core::config::Limits;
use kiyeovo_core::records;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&[u8], &[u8], Option<&[u8]>)| {
    let (key, value, stored) = input;
    let limits = Limits {
        max_record_bytes: 4096,
        ..Limits::default()
    };
    if let Ok((_, record)) = records::validate(key, value, stored, &limits) {
        let (_, checked) = records::validate::check(key, value, &limits).expect("valid implies checked");
        assert_eq!(checked, record);
        assert_eq!(record.encode(), value, "accepted a non-canonical encoding");
    }
});
