//! Automatic backups: when the user turns them on (with a passphrase, kept in the keyring), a
//! backup is written into their folder once per interval (a day by default) while the app runs,
//! and only the newest `keep` of this profile's backups there are kept. The rules (what is due,
//! which files go) are pure; [`run`] is the timer around them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::api::AutoBackup;
use crate::identity::Identity;
use crate::keystore::{blocking as keyring, Keystore, StorageKey};
use crate::storage::Database;

/// The setting that holds [`AutoBackup`].
pub const SETTING_AUTO_BACKUP: &str = "auto_backup";
/// Backups kept when the user does not say.
pub const DEFAULT_KEEP: u32 = 7;
/// Most backups kept.
pub const MAX_KEEP: u32 = 100;

/// Whether a backup is due: never written, or the last one is `every` old (a clock that went
/// back counts as due too: better one backup too many than none for a long time).
pub fn due(last_at: Option<u64>, now_ms: u64, every: Duration) -> bool {
    match last_at {
        None => true,
        Some(last) => now_ms < last || now_ms - last >= every.as_millis() as u64,
    }
}

/// Whether `name` is a backup of `profile` and identity `tag` as [`super::file_name`] writes it
/// (another profile's, say `work-2` beside `work`, or another identity's, is not).
fn is_backup_of(name: &str, profile: &str, tag: &str) -> bool {
    let Some(rest) = name
        .strip_prefix("kiyeovo-")
        .and_then(|n| n.strip_prefix(profile))
        .and_then(|n| n.strip_prefix('-'))
        .and_then(|n| n.strip_suffix(".kiyeovo-backup"))
        .and_then(|n| n.strip_suffix(tag))
        .and_then(|n| n.strip_suffix('-'))
    else {
        return false;
    };
    // YYYY-MM-DD-HHMMSS
    rest.len() == 17
        && rest.char_indices().all(|(i, c)| match i {
            4 | 7 | 10 => c == '-',
            _ => c.is_ascii_digit(),
        })
}

/// Of the file names in a folder, the backups of `profile` and identity `tag` beyond the newest
/// `keep` (names sort by time), oldest first; never `written` (the one just made, even if a
/// clock that went back makes it sort first). Nothing else in the folder is ever touched.
pub fn to_prune(
    names: &[String],
    profile: &str,
    tag: &str,
    keep: usize,
    written: &str,
) -> Vec<String> {
    let mut ours: Vec<&String> = names
        .iter()
        .filter(|n| n.as_str() != written && is_backup_of(n, profile, tag))
        .collect();
    ours.sort();
    // The one just written counts as one of those kept.
    let extra = ours.len().saturating_sub(keep.max(1) - 1);
    ours.into_iter().take(extra).cloned().collect()
}

fn prune(folder: &Path, profile: &str, tag: &str, keep: u32, written: &Path) {
    let written = written
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    for name in to_prune(&names, profile, tag, keep as usize, written) {
        match std::fs::remove_file(folder.join(&name)) {
            Ok(()) => tracing::info!(%name, "older automatic backup removed"),
            Err(e) => tracing::warn!(%name, error = %e, "cannot remove an older backup"),
        }
    }
}

/// What the timer needs of the running profile.
pub struct Parts {
    pub db: Database,
    pub identity: Arc<Identity>,
    pub storage_key: Arc<StorageKey>,
    pub profile: String,
    pub every: Duration,
    /// Wakes the timer when the setting changed.
    pub changed: Arc<tokio::sync::Notify>,
}

/// Writes a backup whenever one is due, until the app stops.
pub async fn run(parts: Parts) {
    // Checked often enough that a day's backup is at most an hour late, and at once after a change.
    let tick = (parts.every / 4).clamp(Duration::from_millis(100), Duration::from_secs(3600));
    loop {
        once(&parts).await;
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = parts.changed.notified() => {}
        }
    }
}

async fn once(parts: &Parts) {
    let setting = match parts.db.setting::<AutoBackup>(SETTING_AUTO_BACKUP).await {
        Ok(Some(setting)) => setting,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the automatic backup setting");
            return;
        }
    };
    let now = crate::time::now_ms();
    if !setting.enabled || !due(setting.last_at, now, parts.every) {
        return;
    }
    let store = Keystore::new(&parts.profile);
    let outcome = match keyring(move || store.load_backup_passphrase()).await {
        Ok(Some(passphrase)) => {
            let folder = PathBuf::from(&setting.folder);
            super::write(
                &parts.db,
                &parts.identity,
                &parts.storage_key,
                &parts.profile,
                &folder,
                &passphrase,
                now,
            )
            .await
            .map(|w| {
                let peer = parts.identity.peer_id().to_string();
                let tag = super::write::identity_tag(&peer);
                prune(&folder, &parts.profile, tag, setting.keep, &w.path)
            })
            .map_err(|e| e.to_string())
        }
        Ok(None) => Err(
            "the passphrase is no longer in the keyring: turn automatic backups off and on again"
                .into(),
        ),
        Err(e) => Err(e.to_string()),
    };
    // Recorded into the setting as it is now: the user may have changed it while the backup
    // was written (then this outcome is about a setting that is gone, and is dropped). A failure
    // leaves `last_at` as it was, so it is tried again at the next tick (within the hour).
    let Ok(Some(mut current)) = parts.db.setting::<AutoBackup>(SETTING_AUTO_BACKUP).await else {
        return;
    };
    if !current.enabled || current.folder != setting.folder {
        return;
    }
    match outcome {
        Ok(()) => {
            current.last_at = Some(now);
            current.last_error = None;
        }
        Err(error) => {
            tracing::warn!(%error, "automatic backup failed");
            current.last_error = Some(error);
        }
    }
    if let Err(e) = parts.db.set_setting(SETTING_AUTO_BACKUP, &current).await {
        tracing::warn!(error = %e, "cannot record the automatic backup");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_is_due_when_never_written_or_an_interval_old() {
        let day = Duration::from_secs(86_400);
        assert!(due(None, 5, day));
        assert!(!due(Some(1_000), 1_000 + 86_399_999, day));
        assert!(due(Some(1_000), 1_000 + 86_400_000, day));
        assert!(due(Some(9_000), 1_000, day), "a clock that went back");
    }

    #[test]
    fn only_this_profiles_oldest_backups_beyond_keep_are_removed() {
        let names: Vec<String> = [
            "kiyeovo-work-2026-12-05-010000-AAAAAA.kiyeovo-backup",
            "kiyeovo-work-2026-12-07-010000-AAAAAA.kiyeovo-backup",
            "kiyeovo-work-2026-12-06-010000-AAAAAA.kiyeovo-backup",
            "kiyeovo-work-2026-12-04-010000-BBBBBB.kiyeovo-backup",
            "kiyeovo-work-2-2026-12-01-010000-AAAAAA.kiyeovo-backup",
            ".kiyeovo-backup-0123456789abcdef.partial",
            "kiyeovo-work-notes.kiyeovo-backup",
            "holiday.jpg",
        ]
        .map(String::from)
        .to_vec();
        let written = "kiyeovo-work-2026-12-07-010000-AAAAAA.kiyeovo-backup";
        assert_eq!(
            to_prune(&names, "work", "AAAAAA", 2, written),
            ["kiyeovo-work-2026-12-05-010000-AAAAAA.kiyeovo-backup"]
        );
        assert_eq!(
            to_prune(&names, "work", "AAAAAA", 5, written),
            Vec::<String>::new()
        );
        // Keep 1 (or 0): only the one just written stays.
        assert_eq!(to_prune(&names, "work", "AAAAAA", 0, written).len(), 2);
        // The clock went back: the one just written sorts first and still stays.
        let early = "kiyeovo-work-2020-01-01-000000-AAAAAA.kiyeovo-backup";
        let mut with_early = names.clone();
        with_early.push(early.into());
        assert!(!to_prune(&with_early, "work", "AAAAAA", 1, early).contains(&early.to_string()));
        // Another identity's backups of a profile of the same name are never touched.
        assert!(to_prune(&names, "work", "AAAAAA", 1, written)
            .iter()
            .all(|n| n.ends_with("-AAAAAA.kiyeovo-backup") && n.starts_with("kiyeovo-work-2026")));
        let name = super::super::file_name("work", "AAAAAA", 1_796_616_909_000);
        assert!(is_backup_of(&name, "work", "AAAAAA"));
        assert!(!is_backup_of(&name, "wor", "AAAAAA"));
        assert!(!is_backup_of(&name, "work", "BBBBBB"));
    }
}
