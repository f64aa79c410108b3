//! Local storage: one SQLite database per profile ([`db`]), encrypted as a whole ([`cipher`]),
//! and the AEAD that seals bodies and keys on top ([`seal`]).

pub mod cipher;
pub mod db;
pub mod seal;
pub mod snapshot;

pub use db::{Database, DbError};
