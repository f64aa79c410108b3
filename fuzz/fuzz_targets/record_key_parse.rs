//! DHT keys from the network: parsing never panics, and whatever parses formats back to the
//! exact same bytes (one key, one spelling).
#![no_main]

use kiyeovo_core::records::RecordKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(key) = RecordKey::parse(bytes) {
        assert_eq!(key.to_bytes(), bytes);
    }
});
