//! The recovery phrase (PROTOCOL.md §1): 24 words from the BIP39 English list that are the whole
//! identity.
//!
//! A profile made since phrases exist keeps 32 random bytes (the phrase's entropy) in the
//! keyring instead of its keys, and derives both keys from them: the BIP39 seed of the phrase
//! (PBKDF2-HMAC-SHA512, 2 048 rounds, empty passphrase), then HKDF-SHA256 with one label per
//! key. Typing the 24 words on another machine therefore gives back the same peer id, signing
//! key and X25519 key, and nothing else is needed to be recognised by contacts. Derivation is
//! one-way: the keys of a profile made before phrases existed cannot be turned into a phrase
//! (that profile relies on the backup file).

use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Words in a phrase: 256 bits of entropy and an 8-bit checksum.
pub const WORDS: usize = 24;
/// Longer typed text is refused before it is read (24 words are at most ~220 characters).
const MAX_TYPED: usize = 4096;
const ENTROPY_LEN: usize = 32;
/// Versioned labels: a change of derivation is a new label, never a silent change of keys.
const SALT: &[u8] = b"kiyeovo recovery v1";
const LABEL_ED25519: &[u8] = b"ed25519 identity key";
const LABEL_X25519: &[u8] = b"x25519 key";

/// Why typed words are not a recovery phrase, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhraseError {
    #[error("a recovery phrase has 24 words; this has {0}. Check for a missing or extra word.")]
    WordCount(usize),
    #[error("word {position} is not in the recovery word list. Check its spelling.")]
    UnknownWord { position: usize },
    #[error("this is far longer than a recovery phrase. Type only the 24 words.")]
    TooLong,
    #[error("these 24 words are not a recovery phrase: one of them is wrong or two are swapped (the checksum does not match). Check each word against what you wrote down.")]
    Checksum,
}

/// The entropy of a recovery phrase. Wiped from memory when dropped.
#[derive(Clone)]
pub struct RecoverySeed(Zeroizing<[u8; ENTROPY_LEN]>);

impl std::fmt::Debug for RecoverySeed {
    /// Never prints the seed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoverySeed(..)")
    }
}

impl RecoverySeed {
    /// A fresh seed from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut entropy = Zeroizing::new([0u8; ENTROPY_LEN]);
        rand::rngs::OsRng.fill_bytes(&mut *entropy);
        Self(entropy)
    }

    pub fn from_entropy(entropy: &[u8; ENTROPY_LEN]) -> Self {
        let mut own = Zeroizing::new([0u8; ENTROPY_LEN]);
        own.copy_from_slice(entropy);
        Self(own)
    }

    pub fn entropy(&self) -> &[u8; ENTROPY_LEN] {
        &self.0
    }

    /// Reads a phrase as a person types it: any case, words separated by spaces, commas or
    /// new lines, optionally numbered ("1. abandon 2. ability …") or bulleted. Errors never
    /// carry the typed words (a near miss would give a real word away in a log).
    pub fn from_phrase(text: &str) -> Result<Self, PhraseError> {
        if text.len() > MAX_TYPED {
            return Err(PhraseError::TooLong);
        }
        let words: Zeroizing<Vec<String>> = Zeroizing::new(
            text.split(|c: char| c.is_whitespace() || c == ',')
                .map(typed_word)
                .filter(|w| !w.is_empty() && !w.chars().all(|c| c.is_ascii_digit()))
                .collect(),
        );
        if words.len() != WORDS {
            return Err(PhraseError::WordCount(words.len()));
        }
        let list = bip39::Language::English;
        for (i, word) in words.iter().enumerate() {
            if list.find_word(word).is_none() {
                return Err(PhraseError::UnknownWord { position: i + 1 });
            }
        }
        let joined = Zeroizing::new(words.join(" "));
        // Count and words were checked above: what is left to fail is the checksum.
        let mnemonic = bip39::Mnemonic::parse_in_normalized(list, &joined)
            .map_err(|_| PhraseError::Checksum)?;
        let (bytes, len) = mnemonic.to_entropy_array();
        let bytes = Zeroizing::new(bytes);
        debug_assert_eq!(len, ENTROPY_LEN);
        let mut entropy = Zeroizing::new([0u8; ENTROPY_LEN]);
        entropy.copy_from_slice(&bytes[..ENTROPY_LEN]);
        Ok(Self(entropy))
    }

    /// The 24 words, in order (the list's own `&'static str`s: nothing to wipe).
    pub fn words(&self) -> Vec<&'static str> {
        bip39::Mnemonic::from_entropy_in(bip39::Language::English, &*self.0)
            .expect("32 bytes are a valid BIP39 entropy length")
            .words()
            .collect()
    }

    /// The phrase as one line of words. Wiped from memory when dropped.
    pub fn phrase(&self) -> Zeroizing<String> {
        Zeroizing::new(self.words().join(" "))
    }

    /// The two identity secrets (Ed25519 seed, X25519 secret) this phrase stands for.
    pub(crate) fn derive_keys(&self) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
        let mnemonic = bip39::Mnemonic::from_entropy_in(bip39::Language::English, &*self.0)
            .expect("32 bytes are a valid BIP39 entropy length");
        let seed = Zeroizing::new(mnemonic.to_seed_normalized(""));
        let hk = Hkdf::<Sha256>::new(Some(SALT), &*seed);
        let mut ed = Zeroizing::new([0u8; 32]);
        let mut x = Zeroizing::new([0u8; 32]);
        hk.expand(LABEL_ED25519, &mut *ed)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        hk.expand(LABEL_X25519, &mut *x)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        (ed, x)
    }
}

/// One typed word as the list spells it: lower case, without the list numbering or bullets
/// around it and without invisible characters a paste can carry (zero-width spaces, soft
/// hyphens, direction marks).
pub(crate) fn typed_word(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace() && !is_invisible(*c))
        .collect::<String>()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
}

fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use proptest::prelude::*;

    #[test]
    fn a_phrase_typed_back_gives_the_same_identity() {
        let seed = RecoverySeed::generate();
        let words = seed.words();
        assert_eq!(words.len(), WORDS);
        let typed = RecoverySeed::from_phrase(&seed.phrase()).unwrap();
        assert_eq!(typed.entropy(), seed.entropy());
        // Pasted with invisible characters and bullets around the words.
        let pasted: String = seed
            .words()
            .iter()
            .map(|w| format!("\u{2022} \u{200b}{w}\u{00ad}\n"))
            .collect();
        assert_eq!(
            RecoverySeed::from_phrase(&pasted).unwrap().entropy(),
            seed.entropy()
        );
        let (a, b) = (
            Identity::from_recovery(seed),
            Identity::from_recovery(typed),
        );
        assert_eq!(a.peer_id(), b.peer_id());
        assert_eq!(a.public(), b.public());
    }

    /// Known answer: the all-zero entropy is BIP39's test vector ("abandon" × 23, "art"), and its
    /// keys must never change (a change would make every written-down phrase useless).
    #[test]
    fn the_derivation_is_fixed() {
        let seed = RecoverySeed::from_entropy(&[0; 32]);
        // BIP39's own test vector for this phrase (passphrase "TREZOR"), and our seed and
        // HKDF outputs as an independent implementation (Python's hashlib and hmac) computed
        // them: the crate and our use of it agree with the standard.
        let mnemonic =
            bip39::Mnemonic::from_entropy_in(bip39::Language::English, &[0; 32]).unwrap();
        assert_eq!(
            data_encoding::HEXLOWER.encode(&mnemonic.to_seed_normalized("TREZOR")),
            "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd3097170af7a4d73245cafa9c3cca8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8"
        );
        let (ed, x) = seed.derive_keys();
        assert_eq!(
            data_encoding::HEXLOWER.encode(&*ed),
            "0c333e97ded40a9172615cb8320e2a8c305724ade7d39471f5cfe0ff2e0b0c91"
        );
        assert_eq!(
            data_encoding::HEXLOWER.encode(&*x),
            "01e342dcbc475cd82e23fa976e17e82ed316e8e05814e4e3fdf974a9fc138975"
        );
        assert_eq!(
            seed.phrase().as_str(),
            format!("{}art", "abandon ".repeat(23))
        );
        let id = Identity::from_recovery(seed);
        assert_eq!(
            id.peer_id().to_string(),
            "12D3KooWJKqY7GPMrLp8d81sG4X1z9YxaR2fvQPp3VDMB1TRpPVj",
            "the derivation of identity keys from a phrase changed"
        );
        assert_eq!(
            data_encoding::HEXLOWER.encode(&id.public().x25519),
            "ae91dc1cf73e165aaa0dd462862dca15a424cb1faac744f815cddf3949235a39",
            "the derivation of the X25519 key from a phrase changed"
        );
    }

    #[test]
    fn typing_is_forgiving_about_case_numbers_and_separators() {
        let seed = RecoverySeed::generate();
        let numbered: String = seed
            .words()
            .iter()
            .enumerate()
            .map(|(i, w)| format!("{}. {}\n", i + 1, w.to_uppercase()))
            .collect();
        assert_eq!(
            RecoverySeed::from_phrase(&numbered).unwrap().entropy(),
            seed.entropy()
        );
        let commas = seed.words().join(", ");
        assert_eq!(
            RecoverySeed::from_phrase(&commas).unwrap().entropy(),
            seed.entropy()
        );
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let seed = RecoverySeed::generate();
        let words = seed.words();
        assert_eq!(
            RecoverySeed::from_phrase(&words[..23].join(" ")).unwrap_err(),
            PhraseError::WordCount(23)
        );
        let mut typo: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        typo[4] = "abandonn".into();
        assert_eq!(
            RecoverySeed::from_phrase(&typo.join(" ")).unwrap_err(),
            PhraseError::UnknownWord { position: 5 }
        );
        assert!(!PhraseError::UnknownWord { position: 5 }
            .to_string()
            .contains("abandon"));
        assert_eq!(
            RecoverySeed::from_phrase(&"abandon ".repeat(1000)).unwrap_err(),
            PhraseError::TooLong
        );
        // Swapping two different words keeps every word valid but breaks the checksum (with
        // probability 255/256 for random words; this pair is chosen to differ).
        let mut swapped: Vec<&str> = words.clone();
        let j = (1..WORDS).find(|&j| words[j] != words[0]).unwrap();
        swapped.swap(0, j);
        let result = RecoverySeed::from_phrase(&swapped.join(" "));
        if let Ok(other) = &result {
            // The rare swap that still checks out gives another identity, never ours.
            assert_ne!(other.entropy(), seed.entropy());
        } else {
            assert_eq!(result.unwrap_err(), PhraseError::Checksum);
        }
        assert_eq!(
            RecoverySeed::from_phrase(&format!("{}abandon", "abandon ".repeat(23))).unwrap_err(),
            PhraseError::Checksum
        );
    }

    #[test]
    fn debug_output_has_no_word_and_no_entropy() {
        let seed = RecoverySeed::generate();
        let debug = format!("{seed:?} {:?}", Identity::from_recovery(seed.clone()));
        let hex = data_encoding::HEXLOWER.encode(seed.entropy());
        assert!(!debug.contains(&hex[..16]), "{debug}");
        // Words of four letters or more (shorter ones occur in any text by chance).
        for word in seed.words().into_iter().filter(|w| w.len() >= 4) {
            assert!(!debug.to_lowercase().contains(word), "{word} in {debug}");
        }
    }

    proptest! {
        /// Any text at all: a typed error or a seed, never a panic; a seed read back is stable.
        #[test]
        fn garbage_never_panics(text in ".{0,400}") {
            if let Ok(seed) = RecoverySeed::from_phrase(&text) {
                let again = RecoverySeed::from_phrase(&seed.phrase()).unwrap();
                prop_assert_eq!(again.entropy(), seed.entropy());
            }
        }

        #[test]
        fn every_entropy_round_trips(entropy in any::<[u8; 32]>()) {
            let seed = RecoverySeed::from_entropy(&entropy);
            let again = RecoverySeed::from_phrase(&seed.phrase()).unwrap();
            prop_assert_eq!(again.entropy(), &entropy);
        }
    }
}
