//! Offline delivery, one mechanism for contacts and groups (PROTOCOL.md §2–3, §5): each sender
//! keeps its newest envelopes in a capped bucket record in the DHT that only it can sign, and
//! each reader keeps a cursor per sender.
//!
//! * [`bucket`] — the pure rules: merging before a write (nothing another session wrote is
//!   dropped), reading after a cursor, counting what was evicted unread.
//! * [`inbox`] — a reader's cursor per sender: each seq once, whether it came live, from the
//!   bucket or both, in any order; bounded.
//! * [`record`] — reading a bucket record back and writing it one version higher.
//! * [`writes`] — writes in the background, coalesced per bucket.
//!
//! What differs between the two users is only how an envelope is opened (a contact's
//! direction key; a group epoch's key and sender check) and where the outbox lives:
//! `pairwise::channel` and `group::chat` pass those in.

pub mod bucket;
pub mod inbox;
pub mod record;
pub mod writes;
