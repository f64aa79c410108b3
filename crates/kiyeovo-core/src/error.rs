//! Start-up and service errors, and how each is put to the user.

use std::path::PathBuf;

use crate::api::{ErrorCode, UiError};
use crate::keystore::KeyringError;
use crate::node::NodeError;
use crate::profile::ProfileError;
use crate::storage::DbError;

/// Everything that can stop the app from starting. None of them destroys data: each leaves the
/// database and keyring as they were so the user can fix the cause and start again.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// The database belongs to an identity whose key is not in the keyring.
    #[error("the data in {path} belongs to identity {peer_id}, but the keyring has no key for profile {profile:?}")]
    IdentityMissing {
        profile: String,
        peer_id: String,
        path: PathBuf,
    },
    /// The keyring holds a different identity than the one the database belongs to.
    #[error("the keyring holds identity {keyring} but the data in {path} belongs to {database}")]
    IdentityMismatch {
        keyring: String,
        database: String,
        path: PathBuf,
    },
    #[error("profile {profile:?} has no identity yet")]
    FirstRunNeeded { profile: String },
    #[error("the storage key for profile {profile:?} is missing from the keyring, so saved data cannot be read")]
    StorageKeyMissing { profile: String },
    #[error("the storage key in the keyring does not match the data in {path}")]
    StorageKeyMismatch { path: PathBuf },
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// Errors of a running app's actions (as opposed to start-up).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    InvalidInput(String),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl ServiceError {
    pub fn to_ui(&self) -> UiError {
        let (code, hint) = match self {
            ServiceError::InvalidInput(_) => {
                (ErrorCode::InvalidInput, "Correct the value and try again.")
            }
            ServiceError::Database(_) => (
                ErrorCode::Database,
                "Check free disk space, then try again.",
            ),
            ServiceError::Node(_) => (
                ErrorCode::Network,
                "Check your network connection, then try again.",
            ),
        };
        UiError {
            code,
            message: self.to_string(),
            hint: hint.to_string(),
        }
    }
}

impl StartupError {
    /// The message, category and next step shown in the window.
    pub fn to_ui(&self) -> UiError {
        use StartupError as E;
        let (code, hint) = match self {
            E::Profile(ProfileError::AlreadyRunning { .. }) => (
                ErrorCode::AlreadyRunning,
                "Switch to the Kiyeovo window that is already open, or start this one with another profile (--profile NAME).".to_string(),
            ),
            E::Profile(ProfileError::BadName(_)) => (
                ErrorCode::BadProfile,
                "Choose a profile name made of letters, digits, '-' or '_'.".to_string(),
            ),
            E::Profile(_) => (
                ErrorCode::DataDir,
                "Check that the data directory is writable, or pass another one with --data-dir.".to_string(),
            ),
            E::Database(DbError::Corrupt { path, .. }) => (
                ErrorCode::DatabaseCorrupt,
                format!(
                    "Nothing was changed. Restore {} from a backup, or move it aside to start this profile with empty history (your identity stays in the keyring).",
                    path.display()
                ),
            ),
            E::Database(_) => (
                ErrorCode::Database,
                "Check free disk space and file permissions of the data directory, then start again.".to_string(),
            ),
            E::Keyring(KeyringError::Unavailable(_)) => (
                ErrorCode::KeyringUnavailable,
                "Kiyeovo keeps its keys in the system keyring. On Linux, install and start a Secret Service provider (GNOME Keyring or KeePassXC), then start again.".to_string(),
            ),
            E::Keyring(KeyringError::Denied(_)) => (
                ErrorCode::KeyringDenied,
                "Unlock your keyring (it may ask for your login password) and allow Kiyeovo access, then start again.".to_string(),
            ),
            E::Keyring(KeyringError::Corrupt { .. })
            | E::StorageKeyMissing { .. }
            | E::StorageKeyMismatch { .. } => (
                ErrorCode::KeyringCorrupt,
                "Restore the 'kiyeovo' entries of your keyring from a backup. Kiyeovo did not overwrite anything.".to_string(),
            ),
            E::IdentityMissing { .. } => (
                ErrorCode::IdentityMissing,
                "Restore the 'kiyeovo' keyring entries from a backup, or start with another profile. Kiyeovo will not create a new identity over existing data.".to_string(),
            ),
            E::FirstRunNeeded { .. } => (
                ErrorCode::IdentityMissing,
                "Start Kiyeovo again to create a new identity or restore one from your recovery phrase.".to_string(),
            ),
            E::IdentityMismatch { .. } => (
                ErrorCode::IdentityMismatch,
                "The keyring and the data directory come from different installs. Use the matching profile or data directory.".to_string(),
            ),
            E::Node(_) => (
                ErrorCode::Network,
                "Check the listen port and network settings, then start again.".to_string(),
            ),
        };
        UiError {
            code,
            message: self.to_string(),
            hint,
        }
    }
}
