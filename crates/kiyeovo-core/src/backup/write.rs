//! Writing a backup: a consistent copy of the database, the keys, sealed under the passphrase,
//! checked by opening it again, written to a temporary name and renamed when complete, readable
//! only by the user. One backup at a time: a manual one and an automatic one never interleave.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::contents::{Contents, CONTENTS_VERSION};
use super::file::{self, BackupError, MIN_PASSPHRASE_CHARS};
use crate::identity::Identity;
use crate::storage::{snapshot, Database};

/// Held while a backup is written.
static WRITING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A backup that was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
}

/// The last six characters of a peer id: in a backup's name, so backups of different identities
/// that share a profile name (two computers syncing into one folder) are told apart.
pub fn identity_tag(peer_id: &str) -> &str {
    &peer_id[peer_id.len().saturating_sub(6)..]
}

/// The file name of a backup of `profile` (identity `tag`, see [`identity_tag`]) written at
/// `now` (UTC), e.g. `kiyeovo-default-2026-12-07-041500-Xy3kP9.kiyeovo-backup`: sorts by time,
/// says what it is.
pub fn file_name(profile: &str, tag: &str, now_ms: u64) -> String {
    let secs = now_ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil: the proleptic Gregorian date of a day count.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "kiyeovo-{profile}-{year:04}-{month:02}-{day:02}-{:02}{:02}{:02}-{tag}.kiyeovo-backup",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Writes a backup of the open profile into `folder` (made if missing) and returns where.
pub async fn write(
    db: &Database,
    identity: &Identity,
    storage_key: &[u8; 32],
    profile: &str,
    folder: &Path,
    passphrase: &str,
    now_ms: u64,
) -> Result<Written, BackupError> {
    // Before the copy: a refusal should cost nothing.
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(BackupError::PassphraseTooShort);
    }
    let _one_at_a_time = WRITING.lock().await;
    let database = snapshot::export(db, storage_key)
        .await
        .map_err(|e| BackupError::Database(e.to_string()))?;
    let peer_id = identity.peer_id().to_string();
    let contents = Contents {
        version: CONTENTS_VERSION,
        created_at: now_ms,
        peer_id: peer_id.clone(),
        identity: identity.to_secret_bytes().to_vec(),
        storage_key: *storage_key,
        database,
    };
    let plain = contents.encode();
    drop(contents);
    let passphrase = Zeroizing::new(passphrase.to_string());
    // Argon2id over 64 MiB is a few hundred milliseconds of CPU: not on the async workers. What
    // was sealed is opened again before it is written: a backup that would not restore is an
    // error now, not a surprise on the day it is needed.
    let expect = peer_id.clone();
    let sealed = tokio::task::spawn_blocking(move || {
        let (sealed, key) = file::seal_keeping_key(&passphrase, &plain)?;
        let opened = file::parse(&sealed)?.open_with_key(&key)?;
        let (back, _) = super::contents::Contents::decode(&opened)?;
        if back.peer_id != expect || opened.as_slice() != plain.as_slice() {
            return Err(BackupError::Damaged(
                "the backup did not open as written".into(),
            ));
        }
        Ok(sealed)
    })
    .await
    .map_err(|e| BackupError::Io(format!("the backup was interrupted: {e}")))??;
    let path = folder.join(file_name(profile, identity_tag(&peer_id), now_ms));
    let io = |what: &str, e: std::io::Error| {
        BackupError::Io(format!("{what} {}: {e}", folder.display()))
    };
    std::fs::create_dir_all(folder).map_err(|e| io("cannot make the folder", e))?;
    let partial = folder.join(format!(
        ".kiyeovo-backup-{:016x}.partial",
        rand::random::<u64>()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&partial).and_then(|mut f| {
        f.write_all(&sealed)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&partial, &path)) {
        let _ = std::fs::remove_file(&partial);
        return Err(io("cannot write the backup into", e));
    }
    if let Ok(dir) = std::fs::File::open(folder) {
        let _ = dir.sync_all();
    }
    tracing::info!(path = %path.display(), bytes = sealed.len(), "backup written");
    Ok(Written {
        path,
        bytes: sealed.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_time_and_say_what_they_are() {
        assert_eq!(
            file_name("default", "abcdef", 0),
            "kiyeovo-default-1970-01-01-000000-abcdef.kiyeovo-backup"
        );
        // 2026-12-07 04:15:09 UTC, checked with `date -u -d @1796616909`.
        assert_eq!(
            file_name("work", "Xy3kP9", 1_796_616_909_000),
            "kiyeovo-work-2026-12-07-041509-Xy3kP9.kiyeovo-backup"
        );
        assert_eq!(
            file_name("p", "t", 951_782_400_000),
            "kiyeovo-p-2000-02-29-000000-t.kiyeovo-backup"
        );
        assert_eq!(identity_tag("12D3KooWAbcXy3kP9"), "Xy3kP9");
        assert_eq!(identity_tag("abc"), "abc");
    }
}
