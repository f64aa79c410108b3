//! Pasted contact cards: any text is either refused with a typed error or yields a card that
//! passed every check; never a panic.
#![no_main]

use kiyeovo_core::contacts::ContactCard;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = ContactCard::from_text(text, None);
    let _ = ContactCard::from_text(&format!("kiyeovo1{text}"), None);
});
