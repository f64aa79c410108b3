//! Encrypted backup files (issue 15): one file holds everything a profile has — identity,
//! contacts and their trust, groups with their keys, history, settings — sealed under a key
//! stretched from a passphrase ([`file`]). Writing one is [`write`]; restoring one into a new
//! profile is [`crate::restore::from_backup`].

pub mod auto;
pub mod contents;
pub mod file;
mod write;

pub use file::BackupError;
pub use write::{file_name, identity_tag, write, Written};
