//! Safety codes: 20 digits two people compare out of band (read aloud, side by side). Equal
//! codes mean they hold the same keys — for a group, the same key for the same member list
//! (PROTOCOL.md §5); for two contacts, each other's real keys, so nobody swapped a card on its
//! way (the one attack the card exchange itself cannot see).

use sha2::{Digest, Sha256};

use crate::identity::PublicIdentity;

/// Four groups of five digits from what `parts` hashes to under `domain`.
pub fn digits(domain: &[u8], parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    h.update(domain);
    for p in parts {
        h.update(p);
    }
    let digest = h.finalize();
    digest
        .chunks(4)
        .take(4)
        .map(|c| {
            format!(
                "{:05}",
                u32::from_be_bytes([c[0], c[1], c[2], c[3]]) % 100_000
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The code two contacts both see for each other: over both identity and both X25519 keys, in
/// an order that does not depend on who computes it.
pub fn contact_code(a: &PublicIdentity, b: &PublicIdentity) -> String {
    let (first, second) = if (a.ed25519, a.x25519) <= (b.ed25519, b.x25519) {
        (a, b)
    } else {
        (b, a)
    };
    digits(
        b"kiyeovo/v1/contact-safety-code",
        &[
            &first.ed25519,
            &first.x25519,
            &second.ed25519,
            &second.x25519,
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn both_contacts_see_the_same_code_and_any_other_key_changes_it() {
        let (ana, ben, eve) = (
            Identity::generate(),
            Identity::generate(),
            Identity::generate(),
        );
        let code = contact_code(&ana.public(), &ben.public());
        assert_eq!(code, contact_code(&ben.public(), &ana.public()));
        assert_eq!(code.len(), 23);
        assert!(code
            .split(' ')
            .all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit())));
        // Eve's card in place of Ben's (a swapped card), or Ben's with Eve's X25519 key.
        assert_ne!(code, contact_code(&ana.public(), &eve.public()));
        let mut mixed = ben.public();
        mixed.x25519 = eve.public().x25519;
        assert_ne!(code, contact_code(&ana.public(), &mixed));
    }
}
