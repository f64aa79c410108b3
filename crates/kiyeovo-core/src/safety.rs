//! Safety codes: digits two people compare out of band (read aloud, side by side). Equal codes
//! mean they hold the same keys — for a group (40 digits), the same key for the same member list
//! (PROTOCOL.md §5); for two contacts (60 digits, 30 per person), each other's real keys, so
//! nobody swapped a card on its way (the one attack the card exchange itself cannot see).

use sha2::{Digest, Sha512};

use crate::identity::PublicIdentity;

/// `groups` groups of five digits (at most 12) from 64 hash bytes, five bytes per group.
fn five_digit_groups(hash: &[u8; 64], groups: usize) -> String {
    hash.chunks(5)
        .take(groups.min(12))
        .map(|c| {
            let n = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", n % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A group's code: 40 digits (about 133 bits) from what `parts` hash to under `domain`. The
/// one who shapes a group's inputs (its creator or admin: roster and key) controls every part,
/// so showing two members different rosters with equal codes is a collision search — half the
/// code's bits: 20 digits (66 bits, 2^33 work) were within reach, 40 are not.
pub fn digits(domain: &[u8], parts: &[&[u8]]) -> String {
    let mut h = Sha512::new();
    h.update(domain);
    for p in parts {
        h.update(p);
    }
    five_digit_groups(&h.finalize().into(), 8)
}

/// How many times each party's fingerprint is hashed: what a search for a key pair with a
/// matching fingerprint costs, per try.
const FINGERPRINT_ROUNDS: usize = 1024;

/// One party's half of a contact code: 30 digits from its own identity and X25519 keys only.
fn fingerprint(p: &PublicIdentity) -> String {
    let mut h: [u8; 64] = Sha512::new()
        .chain_update(b"kiyeovo/v1/contact-fingerprint")
        .chain_update(p.ed25519)
        .chain_update(p.x25519)
        .finalize()
        .into();
    for _ in 0..FINGERPRINT_ROUNDS {
        h = Sha512::new()
            .chain_update(h)
            .chain_update(p.ed25519)
            .chain_update(p.x25519)
            .finalize()
            .into();
    }
    five_digit_groups(&h, 6)
}

/// The code two contacts both see for each other: each one's own fingerprint (30 digits), the
/// lower first, so it does not depend on who computes it. Halves that depend on one party each
/// (not one hash over both) mean someone who swaps both cards must find, for each side, a key
/// pair whose fingerprint equals the real one's — a second preimage of 100 bits, each try
/// hashed 1 024 times — not merely two swaps that collide with each other.
pub fn contact_code(a: &PublicIdentity, b: &PublicIdentity) -> String {
    let (fa, fb) = (fingerprint(a), fingerprint(b));
    if fa <= fb {
        format!("{fa} {fb}")
    } else {
        format!("{fb} {fa}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn a_group_code_is_forty_digits_and_any_part_changes_it() {
        let code = digits(b"d", &[b"roster", b"key"]);
        assert_eq!(code.split(' ').count(), 8, "{code}");
        assert!(code
            .split(' ')
            .all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit())));
        assert_eq!(code, digits(b"d", &[b"roster", b"key"]));
        assert_ne!(code, digits(b"d", &[b"roster", b"other key"]));
        assert_ne!(code, digits(b"e", &[b"roster", b"key"]));
    }

    #[test]
    fn both_contacts_see_the_same_code_and_any_other_key_changes_it() {
        let (ana, ben, eve) = (
            Identity::generate(),
            Identity::generate(),
            Identity::generate(),
        );
        let code = contact_code(&ana.public(), &ben.public());
        assert_eq!(code, contact_code(&ben.public(), &ana.public()));
        assert_eq!(code.split(' ').count(), 12, "{code}");
        assert!(code
            .split(' ')
            .all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit())));
        // Each half is one party's own: Ana's half is the same in her code with anyone.
        let ana_half = fingerprint(&ana.public());
        assert!(code.contains(&ana_half));
        assert!(contact_code(&ana.public(), &eve.public()).contains(&ana_half));
        // Eve's card in place of Ben's (a swapped card), or Ben's with Eve's X25519 key.
        assert_ne!(code, contact_code(&ana.public(), &eve.public()));
        let mut mixed = ben.public();
        mixed.x25519 = eve.public().x25519;
        assert_ne!(code, contact_code(&ana.public(), &mixed));
    }
}
