//! A consistent copy of the open database as one file, encrypted under the same key: what a
//! backup carries. SQLCipher's `sqlcipher_export` copies schema, rows and `user_version` into an
//! attached database, inside one read transaction so the copy is one moment of the profile even
//! while messages keep arriving.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::cipher::pragma_key;
use super::db::{Database, DbError};

fn snapshot_path(db: &Database) -> PathBuf {
    let mut name = db.path().as_os_str().to_owned();
    name.push(".snapshot");
    PathBuf::from(name)
}

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
    let mut journal = path.as_os_str().to_owned();
    journal.push("-journal");
    let _ = std::fs::remove_file(PathBuf::from(journal));
}

/// The bytes of a copy of `db`, encrypted under `storage_key` like the file itself. The copy is
/// written beside the database (in the private data directory) and removed again.
pub async fn export(db: &Database, storage_key: &[u8; 32]) -> Result<Vec<u8>, DbError> {
    let path = snapshot_path(db);
    remove(&path);
    let err = |e: sqlx::Error| DbError::Query(format!("copying the database: {e}"));
    let mut conn = db.pool().acquire().await.map_err(err)?;
    let key = pragma_key(storage_key);
    let raw = Zeroizing::new(key.trim_matches('"').to_string());
    sqlx::query("ATTACH DATABASE ? AS snapshot KEY ?")
        .bind(path.to_string_lossy().into_owned())
        .bind(raw.as_str())
        .execute(&mut *conn)
        .await
        .map_err(err)?;
    let copied = async {
        sqlx::query("BEGIN").execute(&mut *conn).await?;
        let exported = sqlx::query("SELECT sqlcipher_export('snapshot')")
            .execute(&mut *conn)
            .await;
        let end = if exported.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        sqlx::query(end).execute(&mut *conn).await?;
        exported.map(|_| ())
    }
    .await;
    let detached = sqlx::query("DETACH DATABASE snapshot")
        .execute(&mut *conn)
        .await;
    let bytes = copied.and(detached).map_err(err).and_then(|_| {
        std::fs::read(&path).map_err(|e| DbError::Query(format!("reading the copy: {e}")))
    });
    remove(&path);
    bytes
}
