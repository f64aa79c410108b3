//! DHT records (PROTOCOL.md §3).
//!
//! Every value Kiyeovo puts in the DHT sits under a *self-certifying* key: the key names the
//! hash of the Ed25519 public key allowed to write it. Storing nodes can therefore check every
//! write with no idea whose bucket or group it is.
//!
//! * [`key`] — parsing and formatting `/kiyeovo/<kind>/<hash>[/<version>]`.
//! * [`signed`] — the signed envelope around every value.
//! * [`validate`] — the pure rule every node applies before storing or believing a record.
//! * [`budget`] — how many bytes a storing node keeps in all and for each peer that writes.

pub mod budget;
pub mod key;
pub mod signed;
pub mod validate;

pub use key::{KeyError, RecordKey, RecordKind};
pub use signed::SignedRecord;
pub use validate::{best_of, validate, Copies, RecordError, Verdict};
