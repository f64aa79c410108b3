//! Canonical, size-bounded encoding (PROTOCOL.md §1).
//!
//! Signed structures are serialised with `postcard`: field order is the struct's declaration
//! order. Decoding is strict: the input must fit the limit *before* any parsing starts, it must
//! be consumed exactly (no trailing bytes that a signature would not cover), and it must be the
//! one encoding of the value it decodes to.
//!
//! That last rule matters because postcard's decoder is lenient: it accepts over-long varints
//! (`0x81 0x00` decodes to 1 just like `0x01`). Signatures are checked over a re-encoding, so
//! without the rule anyone could make a second, different byte string of a signed record — one
//! that sorts "larger" at equal version and so replaces the owner's copy on storing nodes
//! (PROTOCOL.md §1, §3). Refusing any input that does not re-encode to itself gives every value
//! exactly one byte string.

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
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("input is {len} bytes, over the {limit}-byte limit")]
    TooLarge { len: usize, limit: usize },
    #[error("malformed encoding: {0}")]
    Malformed(String),
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    #[error("not the canonical encoding of the value (over-long integer or alternative form)")]
    NotCanonical,
}

/// Serialises `value` canonically. Serialising our own types into a `Vec` cannot fail short of
/// running out of memory, so the `postcard` error is mapped rather than propagated everywhere.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap_or_default()
}

/// Decodes exactly one `T` from `bytes`, refusing oversized input, trailing garbage and any
/// encoding but the canonical one (`encode(decode(bytes)) == bytes` for every accepted input).
pub fn decode_bounded<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
    limit: usize,
) -> Result<T, DecodeError> {
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
    if encode(&value) != bytes {
        return Err(DecodeError::NotCanonical);
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

    #[test]
    fn an_over_long_varint_is_refused() {
        let good = encode(&Sample {
            a: 1,
            b: vec![],
            c: String::new(),
        });
        assert_eq!(good, [1, 0, 0]);
        // 1 as a two-byte varint: postcard itself would accept it.
        let long = [0x81, 0x00, 0, 0];
        assert!(postcard::from_bytes::<Sample>(&long).is_ok());
        assert_eq!(
            decode_bounded::<Sample>(&long, 1024).unwrap_err(),
            DecodeError::NotCanonical
        );
        // The same for a length prefix.
        let long_len = [1, 0x80, 0x00, 0];
        assert_eq!(
            decode_bounded::<Sample>(&long_len, 1024).unwrap_err(),
            DecodeError::NotCanonical
        );
    }

    proptest! {
        /// The property every decoder of network bytes relies on: whatever is accepted is the
        /// one encoding of its value.
        #[test]
        fn every_accepted_input_re_encodes_to_itself(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(v) = decode_bounded::<Sample>(&bytes, 4096) {
                prop_assert_eq!(encode(&v), bytes);
            }
        }

        /// Stretching any varint of a valid encoding by one byte gives a refused input.
        #[test]
        fn stretched_varints_are_refused(a in any::<u64>(), b in proptest::collection::vec(any::<u8>(), 0..8)) {
            let s = Sample { a, b, c: "x".into() };
            let bytes = encode(&s);
            // `a` is the first varint: re-write it with one extra continuation byte.
            let mut n = a;
            let mut long = Vec::new();
            loop {
                long.push((n as u8 & 0x7f) | 0x80);
                n >>= 7;
                if n == 0 { break; }
            }
            long.push(0);
            let a_len = encode(&a).len();
            long.extend_from_slice(&bytes[a_len..]);
            // Over-long u64s beyond 10 bytes are malformed anyway; either way refused.
            prop_assert!(decode_bounded::<Sample>(&long, 4096).is_err());
        }

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
