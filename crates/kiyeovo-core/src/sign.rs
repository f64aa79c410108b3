//! Domain-separated Ed25519 signatures (PROTOCOL.md §1).
//!
//! Every signature covers `label ‖ 0x00 ‖ message`, with one label per structure, so a signature
//! made for one purpose (say, a DHT record) can never be replayed as another (say, an invite).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// The signing contexts of the protocol. Adding a structure means adding a label here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    X25519Binding,
    Record,
    ContactCard,
    PairwiseEnvelope,
    GroupControl,
    GroupMessage,
    /// A group message in the v3 layout (a reply): its own domain, so no v3 signature is ever
    /// also a valid v2 one (a member holding the epoch key re-wraps freely).
    GroupReply,
    GroupInfo,
}

impl Domain {
    pub fn label(self) -> &'static [u8] {
        match self {
            Domain::X25519Binding => b"kiyeovo/v1/x25519-binding",
            Domain::Record => b"kiyeovo/v1/record",
            Domain::ContactCard => b"kiyeovo/v1/contact-card",
            Domain::PairwiseEnvelope => b"kiyeovo/v2/pairwise-envelope",
            Domain::GroupControl => b"kiyeovo/v1/group-control",
            Domain::GroupMessage => b"kiyeovo/v2/group-message",
            Domain::GroupReply => b"kiyeovo/v3/group-reply",
            Domain::GroupInfo => b"kiyeovo/v2/group-info",
        }
    }
}

/// The signature did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("signature does not verify")]
pub struct BadSignature;

fn framed(domain: Domain, msg: &[u8]) -> Vec<u8> {
    let label = domain.label();
    let mut out = Vec::with_capacity(label.len() + 1 + msg.len());
    out.extend_from_slice(label);
    out.push(0);
    out.extend_from_slice(msg);
    out
}

pub fn sign(key: &SigningKey, domain: Domain, msg: &[u8]) -> [u8; 64] {
    key.sign(&framed(domain, msg)).to_bytes()
}

/// Strict verification (rejects small-order keys and non-canonical signatures), because a
/// malleable signature would let one record appear under two different byte strings.
pub fn verify(
    key: &VerifyingKey,
    domain: Domain,
    msg: &[u8],
    sig: &[u8; 64],
) -> Result<(), BadSignature> {
    let sig = Signature::from_bytes(sig);
    key.verify_strict(&framed(domain, msg), &sig)
        .map_err(|_| BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn signature_for_one_domain_fails_in_another() {
        let key = SigningKey::generate(&mut OsRng);
        let sig = sign(&key, Domain::Record, b"hello");
        verify(&key.verifying_key(), Domain::Record, b"hello", &sig).unwrap();
        assert_eq!(
            verify(&key.verifying_key(), Domain::X25519Binding, b"hello", &sig),
            Err(BadSignature)
        );
    }
}
