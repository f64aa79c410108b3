//! The profile's SQLite database: WAL mode (readers never block the writer, and a crash loses at
//! most the last uncommitted transaction), migrations embedded in the binary, runtime queries
//! only (no build-time database needed).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;

/// The database file inside a profile's data directory.
pub const DB_FILE: &str = "kiyeovo.db";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The file exists but is not a readable SQLite database. It is left untouched.
    #[error("the database {path} is damaged ({reason}); it was left untouched")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot open the database {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("cannot upgrade the database {path}: {reason}")]
    Migrate { path: PathBuf, reason: String },
    #[error("database error: {0}")]
    Query(String),
    #[error("setting {key} holds unreadable data: {reason}")]
    BadSetting { key: String, reason: String },
}

/// SQLite result codes that mean "this file is not (or no longer) a database".
fn is_corruption(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("11") | Some("26")),
        _ => false,
    }
}

#[derive(Debug, Clone)]
pub struct Database {
    pool: SqlitePool,
    path: PathBuf,
    /// Whether the file did not exist before this open.
    created: bool,
}

impl Database {
    /// Opens (creating if missing) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, DbError> {
        let created = !path.exists();
        let classify = |e: sqlx::Error| {
            if is_corruption(&e) {
                DbError::Corrupt {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                }
            } else {
                DbError::Open {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                }
            }
        };
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(classify)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(classify)?;
        // A damaged file sometimes opens fine and only fails on first read: check it now, before
        // anything writes, so a bad file is reported instead of half-migrated.
        let check: Result<String, _> = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_one(&pool)
            .await;
        match check {
            Ok(s) if s == "ok" => {}
            Ok(s) => {
                return Err(DbError::Corrupt {
                    path: path.to_path_buf(),
                    reason: s,
                })
            }
            Err(e) => return Err(classify(e)),
        }
        MIGRATOR.run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) if is_corruption(&inner) => {
                DbError::Corrupt {
                    path: path.to_path_buf(),
                    reason: inner.to_string(),
                }
            }
            other => DbError::Migrate {
                path: path.to_path_buf(),
                reason: other.to_string(),
            },
        })?;
        Ok(Self {
            pool,
            path: path.to_path_buf(),
            created,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this open created the file (first start, or the file had gone missing).
    pub fn was_created(&self) -> bool {
        self.created
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| DbError::Query(e.to_string()))?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), DbError> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(|e| DbError::Query(e.to_string()))?;
        Ok(())
    }

    pub async fn setting<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DbError> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| DbError::Query(e.to_string()))?;
        row.map(|r| {
            serde_json::from_str(&r.get::<String, _>(0)).map_err(|e| DbError::BadSetting {
                key: key.to_string(),
                reason: e.to_string(),
            })
        })
        .transpose()
    }

    pub async fn set_setting<T: Serialize>(&self, key: &str, value: &T) -> Result<(), DbError> {
        let json = serde_json::to_string(value).map_err(|e| DbError::Query(e.to_string()))?;
        sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(json)
            .execute(&self.pool)
            .await
            .map_err(|e| DbError::Query(e.to_string()))?;
        Ok(())
    }

    /// Moves everything from the WAL into the main file, then closes the pool, so a closed
    /// profile is one self-contained file (safe to back up or copy).
    pub async fn close(&self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "could not checkpoint the database on close");
        }
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creates_migrates_and_persists_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let db = Database::open(&path).await.unwrap();
        assert!(db.was_created());
        db.set_setting("display_name", &"Alice").await.unwrap();
        db.set_meta("peer_id", "12D3").await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        db.close().await;
        // Closed cleanly: everything is in the main file.
        let wal = std::fs::metadata(dir.path().join(format!("{DB_FILE}-wal")))
            .map(|m| m.len())
            .unwrap_or(0);
        assert_eq!(wal, 0);

        let again = Database::open(&path).await.unwrap();
        assert!(!again.was_created());
        assert_eq!(
            again
                .setting::<String>("display_name")
                .await
                .unwrap()
                .as_deref(),
            Some("Alice")
        );
        assert_eq!(
            again.meta("peer_id").await.unwrap().as_deref(),
            Some("12D3")
        );
    }

    #[tokio::test]
    async fn garbage_file_is_reported_corrupt_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let garbage = b"this is not a database, but it is the user's file".repeat(100);
        std::fs::write(&path, &garbage).unwrap();
        let err = Database::open(&path).await.unwrap_err();
        assert!(matches!(err, DbError::Corrupt { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), garbage);
    }
}
