//! Contact cards: a signed blob with a user's keys, name and addresses, passed around as a
//! `kiyeovo1…` string.
//!
//! Text form: `kiyeovo1` followed by lower-case base32 of `postcard(signed card) ‖ checksum`,
//! where the checksum is the first 4 bytes of `sha256(label ‖ payload)`. Base32 survives chat
//! apps and e-mail (no `+`, `/` or mixed case), upper-cases into QR alphanumeric mode, and the
//! checksum turns a typo or a truncated paste into "copy it again" instead of a confusing
//! signature error. Whitespace and case are ignored on input, so a wrapped line still works.

use ed25519_dalek::VerifyingKey;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec::{self, BASE32_LOWER};
use crate::identity::{serde_sig, Identity, PublicIdentity};
use crate::sign::{self, Domain};

pub const PREFIX: &str = "kiyeovo1";
/// Largest card (decoded bytes) we accept.
pub const MAX_CARD_BYTES: usize = 2048;
pub const MAX_NAME_CHARS: usize = 64;
pub const MAX_ADDRS: usize = 8;
pub const MAX_ADDR_CHARS: usize = 256;
const CHECKSUM_LEN: usize = 4;
const CHECKSUM_LABEL: &[u8] = b"kiyeovo/v1/card-checksum";

/// Why a pasted card was refused. The messages are written for the person who pasted it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CardError {
    #[error("This is not a Kiyeovo contact card: a card starts with \"kiyeovo1\".")]
    NotACard,
    #[error("The card contains characters a card cannot have; copy it again from its source.")]
    BadCharacters,
    #[error("The card is too long to be a Kiyeovo contact card.")]
    TooLong,
    #[error("The card has a typo or was cut off (its checksum does not match); copy it again.")]
    Checksum,
    #[error("The card is damaged and cannot be read ({0}).")]
    Malformed(String),
    #[error("The card was changed after it was made (its signature does not match).")]
    BadSignature,
    #[error("The card's encryption key does not belong to its owner.")]
    BadBinding,
    #[error("The card's encryption key is unsafe (a weak key no real app makes). Do not add this contact; ask them for a new card.")]
    WeakKey,
    #[error("The card's display name is not allowed: {0}")]
    BadName(String),
    #[error("The card lists too many or too long addresses.")]
    BadAddresses,
    #[error("This is your own card; add the card of the person you want to talk to.")]
    OwnCard,
}

/// What a card says about its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactCard {
    pub identity: PublicIdentity,
    pub display_name: String,
    /// Multiaddresses where the owner was listening when the card was made (hints only).
    pub addrs: Vec<String>,
    /// Milliseconds since the Unix epoch; a newer card from the same owner replaces an older one.
    pub created_at: u64,
}

#[derive(Serialize, Deserialize)]
struct SignedCard {
    card: ContactCard,
    #[serde(with = "serde_sig")]
    signature: [u8; 64],
}

fn checksum(payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::new()
        .chain_update(CHECKSUM_LABEL)
        .chain_update(payload)
        .finalize();
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
}

/// Display names: trimmed, 1–64 characters, no control or direction-override characters.
pub fn check_display_name(name: &str) -> Result<(), CardError> {
    if name.trim() != name || name.is_empty() {
        return Err(CardError::BadName(
            "it is empty or has surrounding spaces".into(),
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(CardError::BadName(format!(
            "longer than {MAX_NAME_CHARS} characters"
        )));
    }
    // Control characters and bidirectional overrides can hide or reorder text ("Ana" that
    // renders as someone else's name).
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if name.chars().any(hidden) {
        return Err(CardError::BadName(
            "it contains invisible control characters".into(),
        ));
    }
    Ok(())
}

impl ContactCard {
    /// Makes our own card.
    pub fn new(identity: &Identity, display_name: &str, addrs: Vec<String>, now_ms: u64) -> Self {
        Self {
            identity: identity.public(),
            display_name: display_name.to_string(),
            addrs,
            created_at: now_ms,
        }
    }

    pub fn peer_id(&self) -> Result<PeerId, CardError> {
        self.identity.peer_id().map_err(|_| CardError::BadSignature)
    }

    /// Signs the card with `identity` (which must be the card's owner) and encodes it as text.
    pub fn to_text(&self, identity: &Identity) -> String {
        let signature = identity.sign(Domain::ContactCard, &codec::encode(self));
        let mut bytes = codec::encode(&SignedCard {
            card: self.clone(),
            signature,
        });
        bytes.extend_from_slice(&checksum(&bytes));
        format!("{PREFIX}{}", BASE32_LOWER.encode(&bytes))
    }

    /// Parses and fully checks a pasted card. `own` is the pasting user's peer id, so pasting
    /// one's own card is caught here with a clear message.
    pub fn from_text(text: &str, own: Option<&PeerId>) -> Result<Self, CardError> {
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase();
        let body = cleaned.strip_prefix(PREFIX).ok_or(CardError::NotACard)?;
        if body.len() > (MAX_CARD_BYTES + CHECKSUM_LEN) * 8 / 5 + 8 {
            return Err(CardError::TooLong);
        }
        if body
            .bytes()
            .any(|b| !matches!(b, b'a'..=b'z' | b'2'..=b'7'))
        {
            return Err(CardError::BadCharacters);
        }
        // Only the length (or stray trailing bits) can be wrong now: characters went missing.
        let bytes = BASE32_LOWER
            .decode(body.as_bytes())
            .map_err(|_| CardError::Checksum)?;
        if bytes.len() <= CHECKSUM_LEN {
            return Err(CardError::Checksum);
        }
        let (payload, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if checksum(payload) != sum {
            return Err(CardError::Checksum);
        }
        let signed: SignedCard = codec::decode_bounded(payload, MAX_CARD_BYTES)
            .map_err(|e| CardError::Malformed(e.to_string()))?;
        let card = signed.card;
        let key = VerifyingKey::from_bytes(&card.identity.ed25519)
            .map_err(|_| CardError::BadSignature)?;
        sign::verify(
            &key,
            Domain::ContactCard,
            &codec::encode(&card),
            &signed.signature,
        )
        .map_err(|_| CardError::BadSignature)?;
        card.identity.verify().map_err(|e| match e {
            crate::identity::IdentityError::WeakX25519 => CardError::WeakKey,
            _ => CardError::BadBinding,
        })?;
        check_display_name(&card.display_name)?;
        if card.addrs.len() > MAX_ADDRS || card.addrs.iter().any(|a| a.len() > MAX_ADDR_CHARS) {
            return Err(CardError::BadAddresses);
        }
        if own.is_some_and(|own| card.peer_id().ok().as_ref() == Some(own)) {
            return Err(CardError::OwnCard);
        }
        Ok(card)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Signs `card` with any identity and encodes it with a correct checksum, so only the
    /// signature (or binding) check can refuse it.
    fn signed_text(card: &ContactCard, signer: &Identity) -> String {
        let signature = signer.sign(Domain::ContactCard, &codec::encode(card));
        let mut bytes = codec::encode(&SignedCard {
            card: card.clone(),
            signature,
        });
        bytes.extend_from_slice(&checksum(&bytes));
        format!("{PREFIX}{}", BASE32_LOWER.encode(&bytes))
    }

    fn card(identity: &Identity) -> ContactCard {
        ContactCard::new(
            identity,
            "Ana",
            vec!["/ip4/192.0.2.1/tcp/4001".into()],
            1_700_000_000_000,
        )
    }

    #[test]
    fn round_trips_and_tolerates_wrapping_and_case() {
        let id = Identity::generate();
        let text = card(&id).to_text(&id);
        assert!(text.starts_with(PREFIX));
        assert!(text.len() < 600, "card is {} chars", text.len());
        let wrapped: String = text
            .to_uppercase()
            .chars()
            .enumerate()
            .flat_map(|(i, c)| if i % 60 == 59 { vec![c, '\n'] } else { vec![c] })
            .collect();
        assert_eq!(ContactCard::from_text(&wrapped, None).unwrap(), card(&id));
    }

    /// Every way a pasted card can be wrong, with the error the user sees.
    #[test]
    fn table_of_refusals() {
        let id = Identity::generate();
        let text = card(&id).to_text(&id);
        let mut typo: Vec<char> = text.chars().collect();
        let i = 20;
        typo[i] = if typo[i] == 'a' { 'b' } else { 'a' };
        let typo: String = typo.into_iter().collect();

        // Re-sign a changed card with someone else's key, with a correct checksum: only the
        // signature can catch it.
        let other = Identity::generate();
        let mut forged = card(&id);
        forged.display_name = "Mallory".into();
        let forged_text = signed_text(&forged, &other);
        // A valid signature over a card whose X25519 key is someone else's.
        let mut swapped = card(&id);
        swapped.identity.x25519 = other.public().x25519;
        let swapped_text = signed_text(&swapped, &id);
        let mut bad_name = card(&id);
        bad_name.display_name = "evil\u{202e}name\u{0}".into();
        let bad_name_text = bad_name.to_text(&id);

        let cases: Vec<(&str, String, CardError)> = vec![
            ("empty", String::new(), CardError::NotACard),
            ("other text", "hello there".into(), CardError::NotACard),
            ("typo", typo, CardError::Checksum),
            (
                "cut off",
                text[..text.len() - 10].to_string(),
                CardError::Checksum,
            ),
            (
                "bad characters",
                format!("{text}!"),
                CardError::BadCharacters,
            ),
            ("forged", forged_text, CardError::BadSignature),
            ("swapped x25519", swapped_text, CardError::BadBinding),
            (
                "huge",
                format!("{PREFIX}{}", "a".repeat(10_000)),
                CardError::TooLong,
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                ContactCard::from_text(&input, None),
                Err(expected),
                "case: {name}"
            );
        }
        assert!(matches!(
            ContactCard::from_text(&bad_name_text, None),
            Err(CardError::BadName(_))
        ));
        assert_eq!(
            ContactCard::from_text(&text, Some(&id.peer_id())),
            Err(CardError::OwnCard)
        );
    }

    proptest! {
        #[test]
        fn garbage_never_panics(s in "kiyeovo1[a-z2-7]{0,400}") {
            let _ = ContactCard::from_text(&s, None);
        }

        #[test]
        fn any_single_character_change_is_refused(pos in 8usize..200, c in "[a-z2-7]") {
            let id = Identity::generate();
            let text = card(&id).to_text(&id);
            prop_assume!(pos < text.len());
            let mut chars: Vec<char> = text.chars().collect();
            let new = c.chars().next().unwrap();
            prop_assume!(chars[pos] != new);
            chars[pos] = new;
            let changed: String = chars.into_iter().collect();
            prop_assert!(ContactCard::from_text(&changed, None).is_err());
        }
    }
}
