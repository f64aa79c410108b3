//! A profile's first run, and bringing a profile back on a new machine: its identity from the
//! recovery phrase ([`from_phrase`]), or everything from a backup file ([`from_backup`]).
//!
//! All happen before [`crate::service::App::start`]: a profile that has neither an identity in
//! the keyring nor a database is new, and the window asks whether to make a new identity or to
//! restore one. A phrase restore writes the phrase's identity to the keyring; the start that
//! follows loads it like any other (and, finding no database, makes a new empty one for it). A
//! backup restore also writes the storage key and the backup's database. A profile that has
//! either is never touched: restoring over it would orphan or mix data.

use std::path::Path;

use crate::api::{ErrorCode, PhraseAnswer, RecoveryStatus, RestoreStep, RestoredBackup, UiError};
use crate::backup::contents::Contents;
use crate::backup::file::{self as backup_file, BackupError, MAX_FILE_BYTES};
use crate::identity::Identity;
use crate::keystore::{blocking as keyring, KeyringError, Keystore};
use crate::profile::{self, ProfileError};
use crate::recovery::{PhraseError, RecoverySeed};
use crate::storage::db::DB_FILE;

/// Why an identity could not be restored. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Phrase(#[from] PhraseError),
    #[error(
        "profile {profile:?} already has an identity or data, so nothing was restored into it"
    )]
    NotNew { profile: String },
    #[error("the data directory of profile {profile:?} belongs to identity {owner}, not to the one being restored ({restored}), so nothing was restored into it")]
    OtherOwner {
        profile: String,
        owner: String,
        restored: String,
    },
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

impl RestoreError {
    /// The message and next step shown on the first-run screen.
    pub fn to_ui(&self) -> UiError {
        let (code, hint) = match self {
            RestoreError::Phrase(_) => (
                ErrorCode::InvalidInput,
                "Type the 24 words in the order you wrote them down, separated by spaces.",
            ),
            RestoreError::NotNew { .. } | RestoreError::OtherOwner { .. } => (
                ErrorCode::InvalidInput,
                "Restore into a new profile (start Kiyeovo with --profile NAME) or on a machine where Kiyeovo was never used.",
            ),
            RestoreError::Backup(e) => return e.to_ui(),
            RestoreError::Keyring(_) => (
                ErrorCode::KeyringUnavailable,
                "Kiyeovo keeps its keys in the system keyring: unlock it or start a Secret Service provider (GNOME Keyring or KeePassXC), then try again.",
            ),
            RestoreError::Profile(_) => (
                ErrorCode::DataDir,
                "Check that the data directory is writable, or pass another one with --data-dir.",
            ),
        };
        UiError {
            code,
            message: self.to_string(),
            hint: hint.to_string(),
        }
    }
}

/// Whether the profile has neither an identity in the keyring nor a database: its first start.
/// A file that cannot be checked counts as there (nothing is ever written over it).
pub async fn is_new(profile: &str, data_dir: Option<&Path>) -> Result<bool, RestoreError> {
    let dir = profile::data_dir(profile, data_dir)?;
    if dir.join(DB_FILE).try_exists().unwrap_or(true) {
        return Ok(false);
    }
    let store = Keystore::new(profile);
    let stored = keyring(move || store.load_identity().map(|i| i.is_some())).await;
    match stored {
        Ok(has) => Ok(!has),
        // A damaged entry is not "new": start-up reports it and overwrites nothing.
        Err(KeyringError::Corrupt { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Writes the identity of `phrase` to the keyring of a new profile and returns its peer id.
///
/// Holds the profile's lock from the check to the write, so no start of the same profile (a
/// second window, a second instance) can make an identity in between that this would then
/// overwrite. A `peer-id` file left from deleted data must name the phrase's identity: data of
/// another identity is never adopted.
pub async fn from_phrase(
    profile: &str,
    data_dir: Option<&Path>,
    phrase: &str,
) -> Result<String, RestoreError> {
    let seed = RecoverySeed::from_phrase(phrase)?;
    let dir = profile::data_dir(profile, data_dir)?;
    let _lock = profile::ProfileLock::acquire(profile, &dir)?;
    if !is_new(profile, data_dir).await? {
        return Err(RestoreError::NotNew {
            profile: profile.to_string(),
        });
    }
    let identity = Identity::from_recovery(seed);
    let peer_id = identity.peer_id().to_string();
    if let Some(owner) = crate::service::recorded_owner(&dir).filter(|o| *o != peer_id) {
        return Err(RestoreError::OtherOwner {
            profile: profile.to_string(),
            owner,
            restored: peer_id,
        });
    }
    let store = Keystore::new(profile);
    keyring(move || store.store_identity(&identity)).await?;
    tracing::info!(%profile, %peer_id, "identity restored from a recovery phrase");
    Ok(peer_id)
}

/// Restores a profile from a backup file into a new profile: the database as it was when the
/// backup was written (brought up to this version), the identity and storage key in the keyring.
/// `progress` hears each step.
///
/// Everything is checked before anything is written: the file, the passphrase, the contents,
/// that the profile is new (under its lock) and that a `peer-id` file left in the data directory
/// names the backup's identity. The database is written under a temporary name and renamed last,
/// after the keys are stored, so an interruption leaves either a new profile or a whole one. Our
/// sequence numbers are marked unknown: what we sent since the backup is only in our buckets
/// (read back before the first send, see `Channel::highest_sent`, `GroupChat::ensure_seq_known`).
pub async fn from_backup(
    profile: &str,
    data_dir: Option<&Path>,
    file: &Path,
    passphrase: &str,
    progress: impl Fn(RestoreStep),
) -> Result<RestoredBackup, RestoreError> {
    progress(RestoreStep::Reading);
    let bytes = read_backup(file)?;
    // The outer format first: a wrong file is refused before the slow derivation.
    backup_file::parse(&bytes)?;
    progress(RestoreStep::Unlocking);
    let passphrase = zeroize::Zeroizing::new(passphrase.to_string());
    let plain = tokio::task::spawn_blocking(move || backup_file::parse(&bytes)?.open(&passphrase))
        .await
        .map_err(|e| BackupError::Io(format!("the restore was interrupted: {e}")))??;
    let (contents, identity) = Contents::decode(&plain)?;
    drop(plain);
    let peer_id = identity.peer_id().to_string();
    let dir = profile::data_dir(profile, data_dir)?;
    let _lock = profile::ProfileLock::acquire(profile, &dir)?;
    if !is_new(profile, data_dir).await? {
        return Err(RestoreError::NotNew {
            profile: profile.to_string(),
        });
    }
    if let Some(owner) = crate::service::recorded_owner(&dir).filter(|o| *o != peer_id) {
        return Err(RestoreError::OtherOwner {
            profile: profile.to_string(),
            owner,
            restored: peer_id,
        });
    }
    progress(RestoreStep::Writing);
    let partial = restoring_path(&dir);
    let summary = write_database(&partial, &contents, &peer_id).await;
    let summary = match summary {
        Ok(s) => s,
        Err(e) => {
            remove_database(&partial);
            return Err(e);
        }
    };
    progress(RestoreStep::Keys);
    let store = Keystore::new(profile);
    let storage_key = zeroize::Zeroizing::new(contents.storage_key);
    let s = store.clone();
    let stored = keyring(move || {
        s.store_storage_key(&storage_key)?;
        s.store_identity(&identity)
    })
    .await;
    // The commit point: from here a start finds a whole profile. A crash before it leaves the
    // keys and `.restoring`, which the next start finishes ([`finish_interrupted`]).
    let moved = stored.map_err(RestoreError::from).and_then(|()| {
        std::fs::rename(&partial, dir.join(DB_FILE))
            .map(|()| sync_dir(&dir))
            .map_err(|e| {
                BackupError::Io(format!("cannot write into {}: {e}", dir.display())).into()
            })
    });
    if let Err(e) = moved {
        remove_database(&partial);
        let _ = keyring(move || store.delete_all()).await;
        return Err(e);
    }
    tracing::info!(%profile, %peer_id, "profile restored from a backup file");
    Ok(RestoredBackup {
        peer_id,
        written_at: contents.created_at,
        ..summary
    })
}

fn restoring_path(dir: &Path) -> std::path::PathBuf {
    dir.join(format!("{DB_FILE}.restoring"))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Finishes a restore from a backup that was interrupted after the keys were stored and before
/// its database was moved into place (a crash, a power cut, the app quit at a keyring prompt):
/// the waiting database goes in if it opens with the keyring's storage key and belongs to the
/// keyring's identity; anything else waiting is removed (a restore that never stored its keys,
/// or one overtaken by another choice). Runs under the profile lock, before start-up reads
/// anything.
pub async fn finish_interrupted(profile: &str, dir: &Path) -> Result<(), KeyringError> {
    let partial = restoring_path(dir);
    if !partial.exists() {
        return Ok(());
    }
    let db_path = dir.join(DB_FILE);
    let store = Keystore::new(profile);
    let keys = if db_path.exists() {
        None
    } else {
        let s = store.clone();
        let identity = keyring(move || s.load_identity()).await?;
        let key = keyring(move || store.load_storage_key()).await?;
        identity.zip(key)
    };
    let adopt = match keys {
        Some((identity, key)) => match crate::storage::Database::open(&partial, &key).await {
            Ok(db) => {
                let owner = db.meta(crate::service::META_PEER_ID).await.ok().flatten();
                db.close().await;
                owner == Some(identity.peer_id().to_string())
            }
            Err(_) => false,
        },
        None => false,
    };
    if adopt && std::fs::rename(&partial, &db_path).is_ok() {
        sync_dir(dir);
        tracing::info!(%profile, "finished a restore from a backup that was interrupted");
    } else {
        remove_database(&partial);
        tracing::info!(%profile, "removed the database of a restore that did not finish");
    }
    Ok(())
}

fn read_backup(file: &Path) -> Result<Vec<u8>, BackupError> {
    let io = |e: std::io::Error| BackupError::Io(format!("cannot read {}: {e}", file.display()));
    use std::io::Read;
    // A regular file only: opening a FIFO waits for a writer, and a device (say /dev/zero) has
    // no end to read to. Asked before opening, and of what was opened.
    if !std::fs::metadata(file).map_err(io)?.is_file() {
        return Err(BackupError::NotABackup);
    }
    let opened = std::fs::File::open(file).map_err(io)?;
    if !opened.metadata().map_err(io)?.is_file() {
        return Err(BackupError::NotABackup);
    }
    let mut bytes = Vec::new();
    opened
        .take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(BackupError::TooLarge);
    }
    Ok(bytes)
}

fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(name));
    }
}

/// Writes the backup's database at `path`, opens it with its key (which also migrates a backup
/// of an earlier version), checks whose it is, marks our numbering unknown and counts what it
/// holds.
async fn write_database(
    path: &Path,
    contents: &Contents,
    peer_id: &str,
) -> Result<RestoredBackup, RestoreError> {
    use crate::storage::Database;
    let damaged = |e: crate::storage::DbError| BackupError::Damaged(format!("database: {e}"));
    remove_database(path);
    crate::service::write_private(path, &contents.database)
        .map_err(|e| BackupError::Io(format!("cannot write {}: {e}", path.display())))?;
    let db = Database::open(path, &contents.storage_key)
        .await
        .map_err(damaged)?;
    let checked = async {
        let owner = db.meta(crate::service::META_PEER_ID).await?;
        if owner.as_deref() != Some(peer_id) {
            return Err(crate::storage::DbError::Query(
                "it belongs to another identity".into(),
            ));
        }
        let mut tx = db
            .write_tx()
            .await
            .map_err(|e| crate::storage::DbError::Query(e.to_string()))?;
        crate::contacts::store::forget_out_seqs(&mut tx).await?;
        crate::group::chat_store::forget_out_seqs(&mut tx).await?;
        tx.commit()
            .await
            .map_err(|e| crate::storage::DbError::Query(e.to_string()))?;
        db.set_setting(SETTING_IDENTITY_RESTORED, &true).await?;
        // This machine's own: the other machine's backup folder and automatic backups (whose
        // passphrase is in that machine's keyring) do not come along.
        sqlx::query("DELETE FROM settings WHERE key IN (?, ?)")
            .bind(crate::backup::auto::SETTING_AUTO_BACKUP)
            .bind(crate::service::SETTING_BACKUP_FOLDER)
            .execute(db.pool())
            .await
            .map_err(|e| crate::storage::DbError::Query(e.to_string()))?;
        let count = |table: &'static str| {
            let pool = db.pool().clone();
            async move {
                sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
                    .fetch_one(&pool)
                    .await
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                    .map_err(|e| crate::storage::DbError::Query(e.to_string()))
            }
        };
        Ok(RestoredBackup {
            peer_id: peer_id.to_string(),
            written_at: 0,
            contacts: count("contacts").await?,
            groups: count("groups").await?,
            // Messages deleted for me keep their rows (their numbers count) but are not shown.
            messages: count("messages WHERE deleted = 0")
                .await?
                .saturating_add(count("group_messages WHERE deleted = 0").await?),
        })
    }
    .await;
    db.close().await;
    checked.map_err(|e| damaged(e).into())
}

/// Set on a profile whose identity was restored (from its phrase or a backup): it may have sent
/// messages from another installation, so our numbering toward a contact added here, or in a
/// group epoch we have no row for, is unknown until our own bucket was read back.
pub const SETTING_IDENTITY_RESTORED: &str = "identity_restored";

/// Whether this profile's identity was restored ([`SETTING_IDENTITY_RESTORED`]).
pub async fn identity_restored<'e, E>(exec: E) -> Result<bool, crate::storage::DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    Ok(
        crate::storage::db::read_setting::<bool, _>(exec, SETTING_IDENTITY_RESTORED)
            .await?
            .unwrap_or(false),
    )
}

/// The setting that ends the "write down your recovery phrase" reminder.
pub const SETTING_PHRASE_CONFIRMED: &str = "recovery_phrase_confirmed";

/// Where a profile's phrase stands, for the window.
pub fn status(identity: &Identity, confirmed: bool) -> RecoveryStatus {
    match (identity.recovery(), confirmed) {
        (None, _) => RecoveryStatus::NoPhrase,
        (Some(_), false) => RecoveryStatus::NotConfirmed,
        (Some(_), true) => RecoveryStatus::Confirmed,
    }
}

/// Why words typed back do not confirm the phrase was written down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("Type the {ASKED} words asked for, each once.")]
    Asked,
    #[error("Word {0} is not the word at that place. Look at what you wrote down, or show the phrase again and correct it.")]
    Wrong(u8),
}

/// Words asked back to confirm a phrase is written down.
pub const ASKED: usize = 3;

/// Whether the answers are [`ASKED`] different places of the phrase (1–24) with their words
/// (typed as [`RecoverySeed::from_phrase`] reads words: any case, spaces and dots ignored).
pub fn check_answers(seed: &RecoverySeed, answers: &[PhraseAnswer]) -> Result<(), CheckError> {
    let mut places: Vec<u8> = answers.iter().map(|a| a.position).collect();
    places.sort_unstable();
    places.dedup();
    if answers.len() != ASKED
        || places.len() != ASKED
        || places
            .iter()
            .any(|&p| p == 0 || usize::from(p) > crate::recovery::WORDS)
    {
        return Err(CheckError::Asked);
    }
    let words = seed.words();
    for a in answers {
        if crate::recovery::typed_word(&a.word) != words[usize::from(a.position) - 1] {
            return Err(CheckError::Wrong(a.position));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(position: u8, word: &str) -> PhraseAnswer {
        PhraseAnswer {
            position,
            word: word.into(),
        }
    }

    #[test]
    fn three_right_words_confirm_and_anything_else_says_why_not() {
        let seed = RecoverySeed::generate();
        let w = seed.words();
        let right = [
            answer(2, w[1]),
            answer(11, &w[10].to_uppercase()),
            answer(24, &format!(" {} ", w[23])),
        ];
        assert_eq!(check_answers(&seed, &right), Ok(()));
        let mut wrong = right.clone();
        wrong[1].word = if w[10] == "zoo" {
            "abandon".into()
        } else {
            "zoo".into()
        };
        assert_eq!(check_answers(&seed, &wrong), Err(CheckError::Wrong(11)));
        assert_eq!(check_answers(&seed, &right[..2]), Err(CheckError::Asked));
        let same_place = [answer(2, w[1]), answer(2, w[1]), answer(3, w[2])];
        assert_eq!(check_answers(&seed, &same_place), Err(CheckError::Asked));
        for out in [0, 25, 255] {
            let outside = [answer(1, w[0]), answer(2, w[1]), answer(out, "zoo")];
            assert_eq!(check_answers(&seed, &outside), Err(CheckError::Asked));
        }
    }

    #[test]
    fn status_follows_the_phrase_and_its_confirmation() {
        assert_eq!(
            status(&Identity::generate(), true),
            RecoveryStatus::NoPhrase
        );
        let id = Identity::new_with_phrase();
        assert_eq!(status(&id, false), RecoveryStatus::NotConfirmed);
        assert_eq!(status(&id, true), RecoveryStatus::Confirmed);
    }
}
