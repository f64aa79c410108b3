//! Contacts (PROTOCOL.md §2): the signed card users exchange, and (later) the trust state built
//! on the handshake.

pub mod card;
pub mod qr;
pub mod store;

pub use card::{CardError, ContactCard};
