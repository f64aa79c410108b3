//! Secrets in the OS keyring (PROTOCOL.md §1).
//!
//! Each profile keeps two entries under the service `kiyeovo`: `<profile>/identity` (the
//! identity seeds) and `<profile>/storage` (the 32-byte key that seals data at rest). The same
//! code runs for users and in tests: tests use unique profile names, which gives each test node
//! its own namespace in the real keyring (Secret Service on Linux, Keychain on macOS, Credential
//! Manager on Windows).
//!
//! Keyring calls block (D-Bus round trips, possibly an unlock prompt), so async callers run them
//! on the blocking pool.

use keyring::Entry;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::identity::{Identity, IdentityError};

/// The keyring service name every entry lives under.
pub const SERVICE: &str = "kiyeovo";
const STORAGE_KEY_LEN: usize = 32;

/// Why the keyring could not give us what we asked for, in terms a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// No keyring service answered (e.g. no Secret Service provider is running).
    #[error("no system keyring is available: {0}")]
    Unavailable(String),
    /// The keyring exists but refused access (locked, or the user denied the request).
    #[error("the system keyring refused access (it may be locked): {0}")]
    Denied(String),
    /// An entry exists but does not hold what Kiyeovo wrote there.
    #[error("the keyring entry {account} is damaged: {reason}")]
    Corrupt { account: String, reason: String },
}

/// The storage key. Wiped from memory on drop.
pub type StorageKey = Zeroizing<[u8; STORAGE_KEY_LEN]>;

/// One profile's view of the keyring.
#[derive(Debug, Clone)]
pub struct Keystore {
    service: String,
    profile: String,
}

impl Keystore {
    pub fn new(profile: &str) -> Self {
        Self {
            service: SERVICE.to_string(),
            profile: profile.to_string(),
        }
    }

    fn account(&self, what: &str) -> String {
        format!("{}/{what}", self.profile)
    }

    fn entry(&self, what: &str) -> Result<Entry, KeyringError> {
        Entry::new(&self.service, &self.account(what)).map_err(map_error)
    }

    fn read(&self, what: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KeyringError> {
        retry_transient(|| match self.entry(what)?.get_secret() {
            Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_error(e)),
        })
    }

    fn write(&self, what: &str, secret: &[u8]) -> Result<(), KeyringError> {
        retry_transient(|| self.entry(what)?.set_secret(secret).map_err(map_error))
    }

    /// The stored identity, if this profile has one.
    pub fn load_identity(&self) -> Result<Option<Identity>, KeyringError> {
        let Some(bytes) = self.read("identity")? else {
            return Ok(None);
        };
        Identity::from_secret_bytes(&bytes)
            .map(Some)
            .map_err(|e: IdentityError| KeyringError::Corrupt {
                account: self.account("identity"),
                reason: e.to_string(),
            })
    }

    pub fn store_identity(&self, identity: &Identity) -> Result<(), KeyringError> {
        self.write("identity", &identity.to_secret_bytes())
    }

    /// The stored storage key, if this profile has one.
    pub fn load_storage_key(&self) -> Result<Option<StorageKey>, KeyringError> {
        let Some(bytes) = self.read("storage")? else {
            return Ok(None);
        };
        let key: [u8; STORAGE_KEY_LEN] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| KeyringError::Corrupt {
                    account: self.account("storage"),
                    reason: format!("{} bytes, expected {STORAGE_KEY_LEN}", bytes.len()),
                })?;
        Ok(Some(Zeroizing::new(key)))
    }

    /// Stores a given storage key (a restored or migrated profile; the upgrade test).
    pub fn store_storage_key(&self, key: &[u8; STORAGE_KEY_LEN]) -> Result<(), KeyringError> {
        self.write("storage", key)
    }

    /// Creates, stores and returns a fresh random storage key.
    pub fn create_storage_key(&self) -> Result<StorageKey, KeyringError> {
        let mut key = Zeroizing::new([0u8; STORAGE_KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(&mut *key);
        self.write("storage", &*key)?;
        Ok(key)
    }

    /// The passphrase automatic backups are written with, if the user turned them on.
    pub fn load_backup_passphrase(&self) -> Result<Option<Zeroizing<String>>, KeyringError> {
        let Some(bytes) = self.read("backup")? else {
            return Ok(None);
        };
        String::from_utf8(bytes.to_vec())
            .map(|s| Some(Zeroizing::new(s)))
            .map_err(|_| KeyringError::Corrupt {
                account: self.account("backup"),
                reason: "not text".into(),
            })
    }

    /// Keeps the automatic backups' passphrase beside the keys it protects: whoever can read
    /// the keyring has the identity already.
    pub fn store_backup_passphrase(&self, passphrase: &str) -> Result<(), KeyringError> {
        self.write("backup", passphrase.as_bytes())
    }

    pub fn delete_backup_passphrase(&self) -> Result<(), KeyringError> {
        match self.entry("backup")?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_error(e)),
        }
    }

    /// Removes this profile's entries (used when a profile is deleted, and by tests to clean
    /// up after themselves). Missing entries are not an error.
    pub fn delete_all(&self) -> Result<(), KeyringError> {
        for what in ["identity", "storage", "backup"] {
            match self.entry(what)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => {}
                Err(e) => return Err(map_error(e)),
            }
        }
        Ok(())
    }
}

/// Runs a blocking keyring call on the blocking pool (D-Bus round trips, maybe an unlock prompt).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KeyringError> + Send + 'static,
) -> Result<T, KeyringError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| KeyringError::Unavailable(format!("keyring task failed: {e}")))?
}

/// Platform failures are tried twice more, 200 ms apart: GNOME Keyring briefly reports its
/// collection as locked while it reloads its file after another client wrote to it (seen with
/// many profiles writing at once). A keyring that is really locked or absent still fails, after
/// less than half a second. Runs on the blocking pool (see `service::keyring`).
fn retry_transient<T>(mut op: impl FnMut() -> Result<T, KeyringError>) -> Result<T, KeyringError> {
    let mut attempt = 0;
    loop {
        match op() {
            Err(KeyringError::Unavailable(reason)) if attempt < 2 => {
                tracing::debug!(%reason, attempt, "keyring call failed; trying again");
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

fn map_error(e: keyring::Error) -> KeyringError {
    match e {
        keyring::Error::NoStorageAccess(inner) => KeyringError::Denied(inner.to_string()),
        keyring::Error::PlatformFailure(inner) => KeyringError::Unavailable(inner.to_string()),
        other => KeyringError::Unavailable(other.to_string()),
    }
}
