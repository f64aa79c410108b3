//! A consistent copy of the open database as one file, encrypted under the same key: what a
//! backup carries. SQLCipher's `sqlcipher_export` copies schema, rows and `user_version` into an
//! attached database, inside one read transaction so the copy is one moment of the profile even
//! while messages keep arriving.
//!
//! The copy runs on a connection of its own, opened for it and closed after: whatever goes wrong
//! midway (an error, a cancelled backup), no pooled connection is left inside a transaction or
//! with the copy attached.

use std::path::{Path, PathBuf};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use zeroize::Zeroizing;

use super::cipher::pragma_key;
use super::db::{Database, DbError};

/// What a copy's file name starts with, beside the database.
const PREFIX: &str = ".snapshot-";

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
    let mut journal = path.as_os_str().to_owned();
    journal.push("-journal");
    let _ = std::fs::remove_file(PathBuf::from(journal));
}

/// Removes copies a crash left in the data directory (encrypted, but not to be kept).
pub fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&format!("{}{PREFIX}", super::db::DB_FILE)))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The bytes of a copy of `db`, encrypted under `storage_key` like the file itself. The copy is
/// written beside the database (in the private data directory) under a name of its own, and
/// removed again.
pub async fn export(db: &Database, storage_key: &[u8; 32]) -> Result<Vec<u8>, DbError> {
    let mut name = db.path().as_os_str().to_owned();
    name.push(format!("{PREFIX}{:016x}", rand::random::<u64>()));
    let path = PathBuf::from(name);
    let copied = copy_into(db.path(), &path, storage_key).await;
    let bytes = copied.and_then(|()| {
        std::fs::read(&path).map_err(|e| DbError::Query(format!("reading the copy: {e}")))
    });
    remove(&path);
    bytes
}

async fn copy_into(from: &Path, to: &Path, storage_key: &[u8; 32]) -> Result<(), DbError> {
    let err = |e: sqlx::Error| DbError::Query(format!("copying the database: {e}"));
    let key = pragma_key(storage_key);
    let mut conn = SqliteConnectOptions::new()
        .filename(from)
        .pragma("key", key.to_string())
        .disable_statement_logging()
        // The main file exists; ATTACH inherits the flags and must create the copy.
        .create_if_missing(true)
        .busy_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .map_err(err)?;
    let raw = Zeroizing::new(key.trim_matches('"').to_string());
    let result = async {
        sqlx::query("ATTACH DATABASE ? AS snapshot KEY ?")
            .bind(to.to_string_lossy().into_owned())
            .bind(raw.as_str())
            .execute(&mut conn)
            .await?;
        // One read transaction: the copy is one moment of the profile.
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT sqlcipher_export('snapshot')")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        sqlx::query("DETACH DATABASE snapshot")
            .execute(&mut conn)
            .await?;
        Ok::<_, sqlx::Error>(())
    }
    .await;
    // Closed either way: nothing of the copy stays on any connection.
    let _ = conn.close().await;
    result.map_err(err)
}
