//! Groups (PROTOCOL.md §4): invitations, the shared roster, the window and establishment.
//!
//! * [`control`] — the signed control messages and their strict decoding.
//! * [`machine`] — one group's pure state machine: every legal transition, the rest are errors.

pub mod control;
pub mod machine;
