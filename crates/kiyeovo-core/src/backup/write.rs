//! Writing a backup: a consistent copy of the database, the keys, sealed under the passphrase,
//! written to a temporary name and renamed when complete, readable only by the user.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::contents::{Contents, CONTENTS_VERSION};
use super::file::{self, BackupError, MIN_PASSPHRASE_CHARS};
use crate::identity::Identity;
use crate::storage::{snapshot, Database};

/// A backup that was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
}

/// The file name of a backup of `profile` written at `now` (UTC), e.g.
/// `kiyeovo-default-2026-12-07-041500.kiyeovo-backup`: sorts by time, says what it is.
pub fn file_name(profile: &str, now_ms: u64) -> String {
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
        "kiyeovo-{profile}-{year:04}-{month:02}-{day:02}-{:02}{:02}{:02}.kiyeovo-backup",
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
    let database = snapshot::export(db, storage_key)
        .await
        .map_err(|e| BackupError::Database(e.to_string()))?;
    let contents = Contents {
        version: CONTENTS_VERSION,
        created_at: now_ms,
        peer_id: identity.peer_id().to_string(),
        identity: identity.to_secret_bytes().to_vec(),
        storage_key: *storage_key,
        database,
    };
    let plain = contents.encode();
    drop(contents);
    let passphrase = Zeroizing::new(passphrase.to_string());
    // Argon2id over 64 MiB is a few hundred milliseconds of CPU: not on the async workers.
    let sealed = tokio::task::spawn_blocking(move || file::seal(&passphrase, &plain))
        .await
        .map_err(|e| BackupError::Io(format!("the backup was interrupted: {e}")))??;
    let path = folder.join(file_name(profile, now_ms));
    let io = |what: &str, e: std::io::Error| {
        BackupError::Io(format!("{what} {}: {e}", folder.display()))
    };
    std::fs::create_dir_all(folder).map_err(|e| io("cannot make the folder", e))?;
    let partial = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
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
            file_name("default", 0),
            "kiyeovo-default-1970-01-01-000000.kiyeovo-backup"
        );
        // 2026-12-07 04:15:09 UTC, checked with `date -u -d @1796616909`.
        assert_eq!(
            file_name("work", 1_796_616_909_000),
            "kiyeovo-work-2026-12-07-041509.kiyeovo-backup"
        );
        assert_eq!(
            file_name("p", 951_782_400_000),
            "kiyeovo-p-2000-02-29-000000.kiyeovo-backup"
        );
    }
}
