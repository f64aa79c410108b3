//! Canonical, size-bounded encoding (PROTOCOL.md §1).
//!
//! Signed structures are serialised with `postcard`: field order is the struct's declaration
//! order and integers have one encoding, so the bytes that were signed are the bytes that are
//! checked. Decoding is strict: the input must fit the limit *before* any parsing starts, and it
//! must be consumed exactly (no trailing bytes that a signature would not cover).

use std::sync::LazyLock;

use data_encoding::{Encoding, Specification};
use serde::{de::DeserializeOwned, Serialize};

/// Lower-case RFC 4648 base32 without padding, strict about trailing bits so every byte string
/// has exactly one spelling. Used for DHT keys and contact cards: it survives URLs, chat apps and
/// case-insensitive copying, and upper-cases into QR alphanumeric mode.
pub static BASE32_LOWER: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = Specification::new();
    spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
    spec.check_trailing_bits = true;
    spec.encoding().expect("valid base32 specification")
});

/// Why bytes from the network were not decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("input is {len} bytes, over the {limit}-byte limit")]
    TooLarge { len: usize, limit: usize },
    #[error("malformed encoding: {0}")]
    Malformed(String),
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
}

/// Serialises `value` canonically. Serialising our own types into a `Vec` cannot fail short of
/// running out of memory, so the `postcard` error is mapped rather than propagated everywhere.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap_or_default()
}

/// Decodes exactly one `T` from `bytes`, refusing oversized input and trailing garbage.
pub fn decode_bounded<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Clone)]
    struct Sample {
        a: u64,
        b: Vec<u8>,
        c: String,
    }

    #[test]
    fn oversize_is_refused_before_parsing() {
        let err = decode_bounded::<Sample>(&[0u8; 11], 10).unwrap_err();
        assert_eq!(err, DecodeError::TooLarge { len: 11, limit: 10 });
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&Sample {
            a: 1,
            b: vec![2],
            c: "x".into(),
        });
        bytes.push(0);
        assert_eq!(
            decode_bounded::<Sample>(&bytes, 1024).unwrap_err(),
            DecodeError::TrailingBytes(1)
        );
    }

    proptest! {
        #[test]
        fn round_trips(a in any::<u64>(), b in proptest::collection::vec(any::<u8>(), 0..64), c in ".{0,16}") {
            let s = Sample { a, b, c };
            let bytes = encode(&s);
            prop_assert_eq!(decode_bounded::<Sample>(&bytes, 4096).unwrap(), s);
        }

        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_bounded::<Sample>(&bytes, 4096);
        }

        #[test]
        fn every_truncation_is_an_error(a in any::<u64>(), b in proptest::collection::vec(any::<u8>(), 1..64)) {
            let bytes = encode(&Sample { a, b, c: "tail".into() });
            for cut in 0..bytes.len() {
                prop_assert!(decode_bounded::<Sample>(&bytes[..cut], 4096).is_err());
            }
        }
    }
}
