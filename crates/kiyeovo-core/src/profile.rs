//! Profiles: several Kiyeovo users side by side on one machine, each with its own data
//! directory, keyring entries and ports, and a lock so the same profile never runs twice.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";
const MAX_NAME_LEN: usize = 32;
const LOCK_FILE: &str = "kiyeovo.lock";

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("profile name {0:?} is not allowed: use 1–32 letters, digits, '-' or '_'")]
    BadName(String),
    #[error("no data directory could be determined for this user; pass --data-dir")]
    NoDataDir,
    #[error("cannot create the data directory {path}: {reason}")]
    CreateDir { path: PathBuf, reason: String },
    #[error("Kiyeovo is already running with profile {profile:?} (data in {path})")]
    AlreadyRunning { profile: String, path: PathBuf },
    #[error("cannot lock {path}: {reason}")]
    Lock { path: PathBuf, reason: String },
}

/// A validated profile name. The name goes into a path and a keyring account, so it is
/// restricted to characters that are safe in both.
pub fn validate_name(name: &str) -> Result<(), ProfileError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ProfileError::BadName(name.to_string()))
    }
}

/// Where profile `name` keeps its data: `<base>/profiles/<name>`, with `base` the platform data
/// directory (e.g. `~/.local/share/kiyeovo` on Linux) unless overridden.
pub fn data_dir(name: &str, base_override: Option<&Path>) -> Result<PathBuf, ProfileError> {
    validate_name(name)?;
    let base = match base_override {
        Some(base) => base.to_path_buf(),
        None => directories::ProjectDirs::from("org", "Kiyeovo", "kiyeovo")
            .ok_or(ProfileError::NoDataDir)?
            .data_dir()
            .to_path_buf(),
    };
    Ok(base.join("profiles").join(name))
}

/// Held while a profile is open; the OS releases the lock if the process dies, so a crash never
/// leaves a profile locked.
#[derive(Debug)]
pub struct ProfileLock {
    _file: File,
}

impl ProfileLock {
    pub fn acquire(profile: &str, dir: &Path) -> Result<Self, ProfileError> {
        std::fs::create_dir_all(dir).map_err(|e| ProfileError::CreateDir {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| ProfileError::Lock {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(ProfileError::AlreadyRunning {
                profile: profile.to_string(),
                path: dir.to_path_buf(),
            }),
            Err(TryLockError::Error(e)) => Err(ProfileError::Lock {
                path,
                reason: e.to_string(),
            }),
        }
    }
}

/// Makes a profile's data private to its user (PROTOCOL.md §0, "local reader of the data
/// dir"): the directory 0700, every file in it 0600. Called at every start, after the database
/// is open (so its -wal and -shm files exist too): a directory restored from a backup, copied
/// with a permissive umask or made by an older version is fixed, and each fix is logged.
/// Returns the paths it changed. Failures are logged, never fatal: the keyring still guards the
/// keys, and the sealed columns their contents.
#[cfg(unix)]
pub fn make_private(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut fixed = Vec::new();
    let mut fix = |path: &Path, want: u32| {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        // A link is never followed: its target may be anybody's file.
        if meta.file_type().is_symlink() {
            return;
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode != want {
            match std::fs::set_permissions(path, std::fs::Permissions::from_mode(want)) {
                Ok(()) => {
                    tracing::warn!(path = %path.display(), was = format!("{mode:o}"), now = format!("{want:o}"), "fixed permissions of profile data");
                    fixed.push(path.to_path_buf());
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot make profile data private")
                }
            }
        }
    };
    fix(dir, 0o700);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                fix(&entry.path(), 0o600);
            }
        }
    }
    fixed
}

/// Elsewhere the data directory inherits the user's private application-data folder's access
/// rules (Windows ACLs, macOS sandbox).
#[cfg(not(unix))]
pub fn make_private(_dir: &Path) -> Vec<PathBuf> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_readable_profile_is_made_private_and_links_are_left_alone() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("p");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = dir.join("kiyeovo.db");
        std::fs::write(&db, b"x").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let outside = base.path().join("outside");
        std::fs::write(&outside, b"y").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();

        let fixed = make_private(&dir);
        assert_eq!(fixed, vec![dir.clone(), db.clone()]);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&outside), 0o644, "a link's target was changed");
        assert!(
            make_private(&dir).is_empty(),
            "second start changes nothing"
        );
    }

    #[test]
    fn names_are_restricted() {
        for good in ["default", "alice", "bob-2", "it_x"] {
            validate_name(good).unwrap();
        }
        for bad in ["", "../x", "a/b", "é", &"x".repeat(33), "a b"] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn profiles_get_separate_dirs() {
        let base = Path::new("/tmp/k");
        assert_ne!(
            data_dir("a", Some(base)).unwrap(),
            data_dir("b", Some(base)).unwrap()
        );
    }

    #[test]
    fn second_lock_on_same_profile_is_refused_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = ProfileLock::acquire("p", dir.path()).unwrap();
        let err = ProfileLock::acquire("p", dir.path()).unwrap_err();
        assert!(matches!(err, ProfileError::AlreadyRunning { .. }), "{err}");
        drop(first);
        ProfileLock::acquire("p", dir.path()).unwrap();
    }
}
