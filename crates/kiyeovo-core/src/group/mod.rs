//! Groups (PROTOCOL.md §4): invitations, the shared roster, the window and establishment.
//!
//! * [`control`] — the signed control messages and their strict decoding.
//! * [`envelope`] — sealed, signed group messages (PROTOCOL.md §5).
//! * [`info`] — the group-info chain after establishment: signed, hash-chained versions with the
//!   epoch key sealed to each member.
//! * [`machine`] — one group's pure state machine: every legal transition, the rest are errors.
//! * [`membership`] — changes after establishment (rotate, remove, leave, hand over, disband) and
//!   what a new version of the chain does to a member's state.
//! * [`store`] — groups sealed in SQLite (format versioned in the sealing label), and the inbox of
//!   control messages from the channel; [`store_legacy`] reads the layouts earlier versions wrote.
//! * [`add_round`] — adding members to a running group: the admin's invitation round, and the
//!   invitee joining at the version that adds it (never with an older key).
//! * [`changes`] — the admin's commands, applying and walking the group-info chain, re-publishing.
//! * [`service`] — runs the machines against the channel, the clock and the user.
//! * [`chat`], [`chat_store`] — group messages: gossipsub live, sender buckets offline, cursors.
//! * [`pages`] — sender buckets larger than one DHT record.
//! * [`order`] — the order a conversation is shown in, and where clocks make it uncertain.

pub mod add_round;
pub mod changes;
pub mod chat;
pub mod chat_store;
pub mod control;
pub mod envelope;
pub mod info;
pub mod machine;
pub mod membership;
pub mod order;
pub mod pages;
pub mod service;
pub mod store;
pub mod store_legacy;

pub use chat::{ChatEvent, GroupChat};
pub use service::{GroupConfig, GroupEvent, Groups};
