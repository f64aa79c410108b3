//! The pairwise channel between two trusted contacts (PROTOCOL.md §2).
//!
//! * [`keys`] — per-direction message keys and bucket signing keys, derived from the X25519
//!   shared secret with HKDF, so both sides can compute both directions from the cards alone.
//! * [`envelope`] — a sealed, sender-signed payload with a per-direction sequence number.
//! * [`bucket`] — a contact's offline bucket: the shared rules of [`crate::delivery`] with
//!   this direction's envelope order.

pub mod bucket;
pub mod channel;
pub mod envelope;
pub mod keys;
