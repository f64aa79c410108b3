//! Local storage: one SQLite database per profile ([`db`]) and the AEAD that seals anything
//! sensitive before it reaches the disk ([`seal`]).

pub mod db;
pub mod seal;

pub use db::{Database, DbError};
