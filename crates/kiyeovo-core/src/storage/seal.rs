//! Sealing data at rest with the profile's storage key (PROTOCOL.md §1): XChaCha20-Poly1305
//! with a random 24-byte nonce (large enough that random nonces never collide in practice) and
//! the row's identity as associated data, so a sealed value cannot be moved to another row.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed value is too short")]
    TooShort,
    #[error("sealed value failed authentication (wrong key, wrong row or tampered)")]
    Unauthentic,
}

/// Encrypts with a fresh random nonce; returns the nonce and `ciphertext‖tag` apart, for formats
/// that carry them in separate fields (the network envelopes).
pub fn seal_parts(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> ([u8; NONCE_LEN], Vec<u8>) {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
    (nonce, ct)
}

/// The inverse of [`seal_parts`].
pub fn open_parts(
    key: &[u8; 32],
    aad: &[u8],
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
) -> Result<Vec<u8>, SealError> {
    XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| SealError::Unauthentic)
}

/// `nonce ‖ ciphertext‖tag`.
pub fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let (nonce, ct) = seal_parts(key, aad, plaintext);
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

pub fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(SealError::TooShort);
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::TooShort)?;
    open_parts(key, aad, nonce, ct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding_to_row() {
        let key = [9u8; 32];
        let sealed = seal(&key, b"row:1", b"secret");
        assert_eq!(open(&key, b"row:1", &sealed).unwrap(), b"secret");
        assert_eq!(open(&key, b"row:2", &sealed), Err(SealError::Unauthentic));
        assert_eq!(
            open(&[8u8; 32], b"row:1", &sealed),
            Err(SealError::Unauthentic)
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(open(&key, b"row:1", &tampered), Err(SealError::Unauthentic));
        assert_eq!(
            open(&key, b"row:1", &sealed[..10]),
            Err(SealError::TooShort)
        );
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }
}
