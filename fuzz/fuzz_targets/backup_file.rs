//! Backup files handed to the restore screen: the outer format and the sealed contents never
//! panic, whatever decodes is canonical, and sealing then opening gives back the same bytes.
//! (The Argon2id derivation is skipped: a fixed file key stands in for the passphrase.)
#![no_main]

use kiyeovo_core::backup::contents::Contents;
use kiyeovo_core::backup::file;
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = [7; 32];

fuzz_target!(|bytes: &[u8]| {
    if let Ok(sealed) = file::parse(bytes) {
        let _ = sealed.open_with_key(&KEY);
    }
    if let Ok((contents, _identity)) = Contents::decode(bytes) {
        assert_eq!(contents.encode().as_slice(), bytes, "accepted a non-canonical encoding");
    }
    let sealed = file::seal_with_key(&KEY, &[1; 16], &[2; 24], bytes).unwrap();
    let opened = file::parse(&sealed).unwrap().open_with_key(&KEY).unwrap();
    assert_eq!(opened.as_slice(), bytes);
});
