//! The profile's SQLite database: encrypted as a whole ([`super::cipher`]), WAL mode (readers
//! never block the writer, and a crash loses at most the last uncommitted transaction),
//! migrations embedded in the binary, runtime queries only (no build-time database needed).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row};

use super::cipher::pragma_key;

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

/// A setting, read through `exec` (a transaction reads its own connection: asking the pool for
/// another while holding the write lock can wait on connections that wait on that lock).
pub async fn read_setting<'e, T, E>(exec: E, key: &str) -> Result<Option<T>, DbError>
where
    T: DeserializeOwned,
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let row = sqlx::query("SELECT value FROM settings WHERE key = ?")
        .bind(key)
        .fetch_optional(exec)
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

/// Starts a write transaction. `BEGIN IMMEDIATE` takes the write lock up front, waiting up to
/// the busy timeout; a deferred transaction that reads and then writes fails at once with
/// "database is locked" whenever another connection wrote in between (its snapshot is stale).
pub async fn write_tx(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// SQLite result codes that mean "this file is not (or no longer) a database" — for an encrypted
/// file, also "not with this key".
pub(crate) fn is_corruption(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("11") | Some("26")),
        _ => false,
    }
}

#[derive(Debug, Clone)]
pub struct Database {
    pool: SqlitePool,
    /// One connection kept for write transactions ([`Database::write_tx`]). SQLite drops a
    /// connection's whole page cache whenever *another* connection has written, and every page
    /// read back into it is decrypted and authenticated again (SQLCipher): with writes spread
    /// over the pool, nearly every delivery's commit started cold. Writing through one
    /// connection keeps its cache warm; the pool serves reads (and the rare writes made outside
    /// a transaction). Measured with `make bench`: README "Benchmarks".
    writer: SqlitePool,
    path: PathBuf,
    /// Whether the file did not exist before this open.
    created: bool,
}

impl Database {
    /// Opens (creating if missing) the database at `path`, encrypted under a key derived from
    /// `storage_key`, and applies pending migrations. A plaintext file (version 0.1) is encrypted
    /// first; the caller has checked it belongs to this storage key.
    pub async fn open(path: &Path, storage_key: &[u8; 32]) -> Result<Self, DbError> {
        let created = !path.exists();
        let plaintext = !created
            && super::cipher::is_plaintext(path).map_err(|e| DbError::Open {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        if plaintext {
            super::cipher::encrypt_in_place(path, storage_key).await?;
        }
        let classify = |e: sqlx::Error| {
            if is_corruption(&e) {
                // SQLCipher cannot tell a damaged file from one encrypted under another key.
                DbError::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!("{e}: it does not open with this profile's key"),
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
            // First, before anything reads the file (sqlx runs `key` before other pragmas).
            .pragma("key", pragma_key(storage_key).to_string())
            // sqlx logs statements (at debug, and slow ones at warn): `PRAGMA key` is one.
            .disable_statement_logging()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .map_err(classify)?;
        // Without SQLCipher linked, `key` would be ignored and the file written in the clear.
        let cipher: Option<String> = sqlx::query_scalar("PRAGMA cipher_version")
            .fetch_optional(&pool)
            .await
            .map_err(classify)?;
        if cipher.is_none_or(|v| v.is_empty()) {
            return Err(DbError::Open {
                path: path.to_path_buf(),
                reason: "this build's SQLite cannot encrypt (SQLCipher is missing)".into(),
            });
        }
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
        // Opened after the migrations, so it never sees a schema older than the code's.
        let writer = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            // Never closed for being idle: its warm cache is the point.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(classify)?;
        Ok(Self {
            pool,
            writer,
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

    /// Starts a write transaction on the connection kept for writing ([`write_tx`]).
    pub async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        write_tx(&self.writer).await
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
        read_setting(&self.pool, key).await
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

    const KEY: [u8; 32] = [7; 32];

    #[tokio::test]
    async fn creates_migrates_and_persists_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let db = Database::open(&path, &KEY).await.unwrap();
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

        let again = Database::open(&path, &KEY).await.unwrap();
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

    /// Everything the file holds, WAL included.
    fn file_bytes(path: &Path) -> Vec<u8> {
        let mut all = std::fs::read(path).unwrap();
        all.extend(std::fs::read(format!("{}-wal", path.display())).unwrap_or_default());
        all
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[tokio::test]
    async fn the_file_is_encrypted_and_opens_only_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let db = Database::open(&path, &KEY).await.unwrap();
        db.set_setting("display_name", &"Alice Liddell")
            .await
            .unwrap();
        let on_disk = file_bytes(&path);
        assert!(!contains(&on_disk, b"Alice Liddell"));
        assert!(!contains(&on_disk, b"SQLite format 3"));
        assert!(!contains(&on_disk, b"display_name"));
        db.close().await;
        assert!(!super::super::cipher::is_plaintext(&path).unwrap());

        let before = std::fs::read(&path).unwrap();
        let err = Database::open(&path, &[8; 32]).await.unwrap_err();
        assert!(matches!(err, DbError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("this profile's key"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "the file was changed"
        );
        let again = Database::open(&path, &KEY).await.unwrap();
        assert_eq!(
            again
                .setting::<String>("display_name")
                .await
                .unwrap()
                .as_deref(),
            Some("Alice Liddell")
        );
    }

    /// Version 0.1 wrote a plaintext file: it is encrypted in place, rows and all, with what was
    /// still in its WAL.
    #[tokio::test]
    async fn a_plaintext_database_is_encrypted_in_place() {
        use sqlx::{ConnectOptions, Connection};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let mut plain = SqliteConnectOptions::from_str("sqlite://")
            .unwrap()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .connect()
            .await
            .unwrap();
        MIGRATOR.run(&mut plain).await.unwrap();
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('display_name', '\"Alice Liddell\"')",
        )
        .execute(&mut plain)
        .await
        .unwrap();
        // The files as a crash would leave them (the row only in the WAL): copied while the
        // connection is still open.
        let crashed = tempfile::tempdir().unwrap();
        let copy = crashed.path().join(DB_FILE);
        std::fs::copy(&path, &copy).unwrap();
        std::fs::copy(
            format!("{}-wal", path.display()),
            format!("{}-wal", copy.display()),
        )
        .unwrap();
        plain.close().await.unwrap();
        assert!(super::super::cipher::is_plaintext(&copy).unwrap());
        assert!(!contains(&std::fs::read(&copy).unwrap(), b"Alice Liddell"));
        assert!(contains(&file_bytes(&copy), b"Alice Liddell"));
        let (path, dir) = (copy, crashed);

        let db = Database::open(&path, &KEY).await.unwrap();
        assert!(!db.was_created());
        assert_eq!(
            db.setting::<String>("display_name")
                .await
                .unwrap()
                .as_deref(),
            Some("Alice Liddell")
        );
        db.close().await;
        assert!(!super::super::cipher::is_plaintext(&path).unwrap());
        assert!(!contains(&file_bytes(&path), b"Alice Liddell"));
        assert!(!dir.path().join(format!("{DB_FILE}.encrypting")).exists());
    }

    /// Everything logged anywhere in this process while the test runs (sqlx logs from its
    /// connection threads, so a thread-local subscriber would miss it).
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_database_key_is_never_logged() {
        let captured = Captured::default();
        let writer = captured.clone();
        let installed = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .try_init()
            .is_ok();
        assert!(installed, "another test installed a global subscriber");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let db = Database::open(&path, &KEY).await.unwrap();
        db.set_setting("display_name", &"Alice").await.unwrap();
        db.close().await;
        let _ = Database::open(&path, &KEY).await.unwrap();
        let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
        let key = pragma_key(&KEY);
        let hex = key
            .trim_matches('"')
            .trim_start_matches("x'")
            .trim_end_matches('\'');
        assert_eq!(hex.len(), 64);
        assert!(!logs.contains(hex), "the key is in the log");
        assert!(!logs.contains("PRAGMA key"), "{logs}");
    }

    #[tokio::test]
    async fn garbage_file_is_reported_corrupt_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let garbage = b"this is not a database, but it is the user's file".repeat(100);
        std::fs::write(&path, &garbage).unwrap();
        let err = Database::open(&path, &KEY).await.unwrap_err();
        assert!(matches!(err, DbError::Corrupt { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), garbage);
    }
}
