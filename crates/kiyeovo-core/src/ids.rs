//! Typed 16-byte ids: a group, a message, a control message (invitation, answer, change).
//!
//! They were bare `[u8; 16]` before, so a message id could be passed where a group id was
//! meant and the compiler said nothing. Each is now its own type; on the wire and on disk it is
//! still the same 16 bytes (`serde(transparent)`: postcard writes exactly the array), so no
//! stored format or signature changes.

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};

macro_rules! id16 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// A fresh id from the OS random source.
            pub fn random() -> Self {
                random_id()
            }

            pub fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }

            /// The bytes as a slice (a database column is bound this way).
            pub fn as_slice(&self) -> &[u8] {
                &self.0
            }

            /// The id from exactly 16 bytes (a database column), or `None`.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; 16]>::try_from(bytes).ok().map(Self)
            }

            /// Lower-case hex, as the UI and the database show it.
            pub fn to_hex(&self) -> String {
                hex(&self.0)
            }

            /// The id from 32 hex digits (either case), or `None`.
            pub fn from_hex(text: &str) -> Option<Self> {
                parse_hex16(text).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }

        impl From<[u8; 16]> for $name {
            fn from(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }
        }

        impl TryFrom<&[u8]> for $name {
            type Error = std::array::TryFromSliceError;
            fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
                <[u8; 16]>::try_from(bytes).map(Self)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }
    };
}

id16!(
    /// A group: derived from its creator and its first invitation's id (PROTOCOL.md §4).
    GroupId
);
id16!(
    /// One message (pairwise or group), chosen by its sender; dedup and receipts use it.
    MsgId
);
id16!(
    /// One control message (an invitation, an answer, an add round), chosen by its signer.
    ControlId
);

/// A fresh random id of whichever kind the caller needs (the type comes from where it goes).
pub fn random_id<T: From<[u8; 16]>>() -> T {
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    T::from(id)
}

/// Lower-case hex of any bytes.
pub fn hex(bytes: impl AsRef<[u8]>) -> String {
    use std::fmt::Write;
    let bytes = bytes.as_ref();
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn parse_hex16(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_encodes_as_its_sixteen_bytes_exactly() {
        // Stored groups and signed controls were written with bare arrays: the typed id must
        // encode to the very same bytes or every signature and sealed state would break.
        let raw = [7u8; 16];
        assert_eq!(
            crate::codec::encode(&GroupId(raw)),
            crate::codec::encode(&raw)
        );
        let back: MsgId = crate::codec::decode_bounded(&crate::codec::encode(&raw), 64).unwrap();
        assert_eq!(back, MsgId(raw));
    }

    #[test]
    fn hex_round_trips_and_refuses_anything_else() {
        let id = ControlId::random();
        assert_eq!(ControlId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(ControlId::from_hex(&id.to_hex().to_uppercase()), Some(id));
        assert_eq!(GroupId::from_hex("00"), None);
        assert_eq!(GroupId::from_hex(&"g".repeat(32)), None);
        assert_eq!(GroupId::from_hex(&format!("+{}", "0".repeat(31))), None);
        assert_eq!(MsgId::from_slice(&[1; 15]), None);
    }
}
