//! A storing node's records kept across restarts (issue: "a headless node that keeps what it
//! stores"). Without this, a restarted bootstrap/storage node comes back empty and every bucket
//! it held for members who are away is gone until its owner re-publishes it.
//!
//! The Kademlia store stays in memory (it is what serves queries); every change to it is
//! mirrored to a SQLite file by a background task, so the event loop never waits on the disk.
//! Changes waiting to be written are kept per key, newest only: a bucket rewritten a hundred
//! times in a burst costs one row write, and what waits is bounded by the store itself.
//! A crash loses at most the changes of the last moment, which owners re-publish anyway.
//!
//! On start the file is read back: rows whose expiry (this node's own TTL, in wall-clock time)
//! has passed are deleted, the rest are validated again like any inbound record and loaded.
//! The records are public (signed, and opaque where they hold anything private), so the file
//! is not encrypted; it is still made readable by the owner only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::kad::{Record, RecordKey};
use libp2p::PeerId;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::Limits;

/// The layout of the file; a file from a newer layout is refused, not guessed at.
pub const LAYOUT: i64 = 1;
/// The file's name inside the node's data directory.
pub const FILE_NAME: &str = "records.sqlite3";

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot open the record file {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("the record file {path} was written by a newer version (layout {found}, this one reads {LAYOUT})")]
    NewerLayout { path: PathBuf, found: i64 },
}

/// One change waiting to be written: the record now, or `None` for gone.
type Change = Option<Stored>;

#[derive(Debug, Clone)]
struct Stored {
    value: Vec<u8>,
    publisher: Option<Vec<u8>>,
    /// Unix milliseconds.
    expires_at: Option<u64>,
}

#[derive(Debug, Default)]
struct Pending {
    changes: HashMap<Vec<u8>, Change>,
    closing: bool,
}

/// The store's side: hand over each change, never wait. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Mirror {
    pending: Arc<Mutex<Pending>>,
    wake: Arc<Notify>,
}

impl Mirror {
    /// `record` is now stored (a new key or a new version).
    pub fn put(&self, record: &Record) {
        let row = Stored {
            value: record.value.clone(),
            publisher: record.publisher.map(|p| p.to_bytes()),
            expires_at: record.expires.map(wall_clock),
        };
        self.change(record.key.to_vec(), Some(row));
    }

    /// `key` left the store.
    pub fn remove(&self, key: &RecordKey) {
        self.change(key.to_vec(), None);
    }

    fn change(&self, key: Vec<u8>, change: Change) {
        if let Ok(mut p) = self.pending.lock() {
            p.changes.insert(key, change);
        }
        self.wake.notify_one();
    }
}

/// An `Instant` deadline as wall-clock Unix milliseconds (an `Instant` means nothing after a
/// restart).
fn wall_clock(at: Instant) -> u64 {
    let now = Instant::now();
    let unix_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let unix = if at >= now {
        unix_now + (at - now)
    } else {
        unix_now.saturating_sub(now - at)
    };
    u64::try_from(unix.as_millis()).unwrap_or(u64::MAX)
}

/// Wall-clock Unix milliseconds as an `Instant` deadline; `None` if already past.
fn deadline(unix_ms: u64) -> Option<Instant> {
    let unix_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::from_millis(unix_ms).checked_sub(unix_now)?;
    Instant::now().checked_add(left)
}

/// The record file as the node's config carries it (cheap to clone).
#[derive(Debug, Clone)]
pub struct Kept {
    mirror: Mirror,
    loaded: Arc<Mutex<Vec<Record>>>,
}

impl Kept {
    pub fn mirror(&self) -> Mirror {
        self.mirror.clone()
    }

    /// The records read back at open, once: the store takes them when it is built.
    pub fn take_loaded(&self) -> Vec<Record> {
        self.loaded
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

/// The open record file and its writer task.
#[derive(Debug)]
pub struct RecordFile {
    mirror: Mirror,
    writer: JoinHandle<()>,
    /// Records read back at open, for the store to start with (taken once).
    loaded: Vec<Record>,
}

impl RecordFile {
    /// Opens (or creates) `dir/records.sqlite3`, drops what expired while we were down and reads
    /// back what is left, each record validated again under `limits`.
    pub async fn open(dir: &Path, limits: &Limits) -> Result<Self, PersistError> {
        let path = dir.join(FILE_NAME);
        let open_err = |reason: String| PersistError::Open {
            path: path.clone(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        create_private(&path).map_err(|e| open_err(e.to_string()))?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        let q = |e: sqlx::Error| open_err(e.to_string());
        let layout: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&pool)
            .await
            .map_err(q)?;
        match layout {
            0 => {
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS records (
                        key BLOB PRIMARY KEY NOT NULL,
                        value BLOB NOT NULL,
                        publisher BLOB,
                        expires_at INTEGER
                    )",
                )
                .execute(&pool)
                .await
                .map_err(q)?;
                sqlx::query(&format!("PRAGMA user_version = {LAYOUT}"))
                    .execute(&pool)
                    .await
                    .map_err(q)?;
            }
            LAYOUT => {}
            found => return Err(PersistError::NewerLayout { path, found }),
        }
        let now_ms = wall_clock(Instant::now()) as i64;
        let expired =
            sqlx::query("DELETE FROM records WHERE expires_at IS NOT NULL AND expires_at <= ?")
                .bind(now_ms)
                .execute(&pool)
                .await
                .map_err(q)?
                .rows_affected();
        let rows = sqlx::query("SELECT key, value, publisher, expires_at FROM records")
            .fetch_all(&pool)
            .await
            .map_err(q)?;
        let mut loaded = Vec::new();
        let mut refused = Vec::new();
        let mut charged = 0usize;
        for row in rows {
            let key: Vec<u8> = row.get("key");
            let value: Vec<u8> = row.get("value");
            let expires_at: Option<i64> = row.get("expires_at");
            let publisher: Option<Vec<u8>> = row.get("publisher");
            // Validated again: the limits may have changed since, and the file is only as
            // trustworthy as the disk it sits on.
            if crate::records::validate(&key, &value, None, limits).is_err() {
                refused.push(key);
                continue;
            }
            let expires = match expires_at {
                Some(ms) => match deadline(u64::try_from(ms).unwrap_or(0)) {
                    Some(at) => Some(at),
                    None => {
                        refused.push(key);
                        continue;
                    }
                },
                None => None,
            };
            // Within today's budget (it may have been lowered since): what does not fit goes.
            let cost = crate::records::budget::charge(key.len(), value.len());
            if charged + cost > limits.store_budget_bytes {
                refused.push(key);
                continue;
            }
            charged += cost;
            let mut record = Record::new(key, value);
            record.publisher = publisher.and_then(|p| PeerId::from_bytes(&p).ok());
            record.expires = expires;
            loaded.push(record);
        }
        for key in &refused {
            let _ = sqlx::query("DELETE FROM records WHERE key = ?")
                .bind(key)
                .execute(&pool)
                .await;
        }
        tracing::info!(
            path = %path.display(),
            loaded = loaded.len(),
            expired,
            refused = refused.len(),
            "record file read back"
        );
        let mirror = Mirror {
            pending: Arc::new(Mutex::new(Pending::default())),
            wake: Arc::new(Notify::new()),
        };
        let writer = tokio::spawn(write_loop(pool, mirror.clone()));
        Ok(Self {
            mirror,
            writer,
            loaded,
        })
    }

    /// What the node's config carries to its record store: the mirror, and the records read
    /// back (moved out of here; a second call hands over none).
    pub fn kept(&mut self) -> Kept {
        Kept {
            mirror: self.mirror.clone(),
            loaded: Arc::new(Mutex::new(std::mem::take(&mut self.loaded))),
        }
    }

    /// Writes what is still waiting and closes the file.
    pub async fn close(self) {
        if let Ok(mut p) = self.mirror.pending.lock() {
            p.closing = true;
        }
        self.mirror.wake.notify_one();
        let _ = self.writer.await;
    }
}

/// Takes the waiting changes in batches, one transaction each, until closed and drained.
async fn write_loop(pool: SqlitePool, mirror: Mirror) {
    loop {
        mirror.wake.notified().await;
        loop {
            let (batch, closing) = match mirror.pending.lock() {
                Ok(mut p) => (std::mem::take(&mut p.changes), p.closing),
                Err(_) => return,
            };
            if batch.is_empty() {
                if closing {
                    pool.close().await;
                    return;
                }
                break;
            }
            if let Err(e) = write_batch(&pool, &batch).await {
                // Put back what did not get written (a newer change of a key wins), and try
                // again after a pause: a lost deletion would serve a stale copy after a restart.
                tracing::warn!(error = %e, "record file not updated; retrying");
                if closing {
                    return;
                }
                if let Ok(mut p) = mirror.pending.lock() {
                    for (key, change) in batch {
                        p.changes.entry(key).or_insert(change);
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn write_batch(
    pool: &SqlitePool,
    batch: &HashMap<Vec<u8>, Change>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for (key, change) in batch {
        match change {
            Some(row) => {
                sqlx::query(
                    "INSERT INTO records (key, value, publisher, expires_at) VALUES (?, ?, ?, ?)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value,
                        publisher = excluded.publisher, expires_at = excluded.expires_at",
                )
                .bind(key.as_slice())
                .bind(row.value.as_slice())
                .bind(row.publisher.as_deref())
                .bind(row.expires_at.map(|t| t.min(i64::MAX as u64) as i64))
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM records WHERE key = ?")
                    .bind(key.as_slice())
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    tx.commit().await
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{RecordKey as DhtKey, RecordKind, SignedRecord};
    use ed25519_dalek::SigningKey;
    use rand::rngs::OsRng;

    fn valid(version: u64, payload: &[u8], expires_in: Duration) -> Record {
        let key = SigningKey::generate(&mut OsRng);
        let dht =
            DhtKey::for_public_key(RecordKind::PairwiseBucket, &key.verifying_key().to_bytes());
        let value = SignedRecord::sign(&key, &dht, version, 1, payload.to_vec()).encode();
        let mut r = Record::new(dht.to_bytes(), value);
        r.publisher = Some(PeerId::random());
        r.expires = Some(Instant::now() + expires_in);
        r
    }

    async fn reopen(dir: &Path) -> Vec<Record> {
        let mut file = RecordFile::open(dir, &Limits::default()).await.unwrap();
        let kept = file.kept();
        let loaded = kept.take_loaded();
        assert!(kept.take_loaded().is_empty(), "handed over once");
        file.close().await;
        loaded
    }

    #[tokio::test]
    async fn what_was_stored_comes_back_and_what_was_removed_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (kept, gone) = (valid(1, b"kept", HOUR), valid(1, b"gone", HOUR));
        let file = RecordFile::open(dir.path(), &Limits::default())
            .await
            .unwrap();
        let mirror = file.mirror.clone();
        mirror.put(&gone);
        // A bucket rewritten many times in a burst: the last write is what the file holds.
        for v in 1..=50u8 {
            let mut earlier = kept.clone();
            earlier.value.push(v);
            mirror.put(&earlier);
        }
        mirror.put(&kept);
        mirror.remove(&gone.key);
        file.close().await;

        let back = reopen(dir.path()).await;
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].key, kept.key);
        assert_eq!(back[0].value, kept.value);
        assert_eq!(back[0].publisher, kept.publisher);
        let left = back[0].expires.unwrap() - Instant::now();
        assert!(
            left > HOUR - Duration::from_secs(60) && left <= HOUR,
            "{left:?}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "owner only");
        }
    }

    #[tokio::test]
    async fn expired_and_invalid_rows_are_dropped_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let good = valid(1, b"good", HOUR);
        let mut expired = valid(1, b"old", HOUR);
        expired.expires = Some(Instant::now() - Duration::from_millis(1));
        let mut tampered = valid(1, b"tampered", HOUR);
        let last = tampered.value.len() - 1;
        tampered.value[last] ^= 1;
        let file = RecordFile::open(dir.path(), &Limits::default())
            .await
            .unwrap();
        for r in [&good, &expired, &tampered] {
            file.mirror.put(r);
        }
        file.close().await;
        let back = reopen(dir.path()).await;
        assert_eq!(
            back.iter().map(|r| &r.key).collect::<Vec<_>>(),
            vec![&good.key]
        );
        // And they are gone from the file, not only skipped.
        let back = reopen(dir.path()).await;
        assert_eq!(back.len(), 1);
    }

    #[tokio::test]
    async fn no_more_is_read_back_than_the_storing_budget_takes() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<Record> = (0..10).map(|_| valid(1, &[7; 1000], HOUR)).collect();
        let file = RecordFile::open(dir.path(), &Limits::default())
            .await
            .unwrap();
        for r in &records {
            file.mirror.put(r);
        }
        file.close().await;
        let one =
            crate::records::budget::charge(records[0].key.to_vec().len(), records[0].value.len());
        let small = Limits::with_budget(one * 4 + one / 2, one);
        let mut file = RecordFile::open(dir.path(), &small).await.unwrap();
        assert_eq!(file.kept().take_loaded().len(), 4);
        file.close().await;
    }

    #[tokio::test]
    async fn a_file_from_a_newer_layout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        RecordFile::open(dir.path(), &Limits::default())
            .await
            .unwrap()
            .close()
            .await;
        let pool = SqlitePoolOptions::new()
            .connect_with(SqliteConnectOptions::new().filename(dir.path().join(FILE_NAME)))
            .await
            .unwrap();
        sqlx::query("PRAGMA user_version = 2")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let err = RecordFile::open(dir.path(), &Limits::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, PersistError::NewerLayout { found: 2, .. }),
            "{err}"
        );
    }

    const HOUR: Duration = Duration::from_secs(3600);
}
