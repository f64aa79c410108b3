//! The database file is encrypted as a whole with SQLCipher (the SQLite build sqlx links), under
//! a key derived from the storage key in the OS keyring. Bodies and group state are sealed on top
//! (`seal`), but sealing columns alone left the social graph readable: contact names and peer
//! ids, group ids, who wrote when. Encrypting the file hides all of it, WAL included, from a
//! reader of the data directory who does not have the keyring.
//!
//! Version 0.1 wrote a plaintext file; [`encrypt_in_place`] turns it into an encrypted one the
//! first time the profile opens (a crash midway leaves the plaintext file as it was).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use hkdf::Hkdf;
use sha2::Sha256;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection, Row};
use zeroize::Zeroizing;

use super::db::DbError;

/// The first bytes of every plaintext SQLite file (an encrypted file starts with a random salt).
const PLAINTEXT_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The value of SQLCipher's `key` pragma: a raw 256-bit key (`x'…'`, no passphrase stretching —
/// the storage key is already random), derived so the file key and the sealing key differ.
pub fn pragma_key(storage_key: &[u8; 32]) -> Zeroizing<String> {
    let hk = Hkdf::<Sha256>::new(Some(b"kiyeovo/v1/database-file"), storage_key);
    let mut key = Zeroizing::new([0u8; 32]);
    hk.expand(b"sqlcipher", &mut *key)
        .expect("32-byte HKDF output is always valid");
    // Written into one buffer of the final size: no partial copies of the key left behind.
    let mut value = Zeroizing::new(String::with_capacity(2 + 2 + 64 + 2));
    value.push_str("\"x'");
    for b in key.iter() {
        for nibble in [b >> 4, b & 0xf] {
            value.push(char::from_digit(u32::from(nibble), 16).expect("a nibble is a hex digit"));
        }
    }
    value.push_str("'\"");
    value
}

/// Whether the file at `path` is a plaintext SQLite database (written by version 0.1).
pub fn is_plaintext(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let mut file = std::fs::File::open(path)?;
    match file.read_exact(&mut head) {
        Ok(()) => Ok(&head == PLAINTEXT_MAGIC),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

fn query_err(path: &Path) -> impl Fn(sqlx::Error) -> DbError + '_ {
    move |e| {
        if super::db::is_corruption(&e) {
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
    }
}

async fn plaintext_connection(path: &Path, read_only: bool) -> Result<SqliteConnection, DbError> {
    let err = query_err(path);
    SqliteConnectOptions::from_str("sqlite://")
        .map_err(&err)?
        .filename(path)
        .read_only(read_only)
        // The file exists; ATTACH inherits the flags and must create the encrypted copy.
        .create_if_missing(!read_only)
        .connect()
        .await
        .map_err(&err)
}

/// Reads one `meta` value from a plaintext database without changing it (the start-up checks
/// run before the file is encrypted).
pub async fn plaintext_meta(path: &Path, key: &str) -> Result<Option<String>, DbError> {
    let err = query_err(path);
    let mut conn = plaintext_connection(path, true).await?;
    let value = sqlx::query("SELECT value FROM meta WHERE key = ?")
        .bind(key)
        .fetch_optional(&mut conn)
        .await
        .map_err(&err)?
        .map(|r| r.get::<String, _>(0));
    conn.close().await.map_err(&err)?;
    Ok(value)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Replaces the plaintext database at `path` by an encrypted copy of it. A damaged file is
/// reported and left as it is. The copy is written beside it and renamed over it only when
/// complete, so a crash leaves either the old file (encrypted again at the next start) or the new.
pub async fn encrypt_in_place(path: &Path, storage_key: &[u8; 32]) -> Result<(), DbError> {
    let err = query_err(path);
    let io = |e: std::io::Error| DbError::Open {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let partial = sibling(path, ".encrypting");
    for p in [&partial, &sibling(&partial, "-journal")] {
        remove_if_present(p).map_err(io)?;
    }
    let mut conn = plaintext_connection(path, false).await?;
    let check: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&mut conn)
        .await
        .map_err(&err)?;
    if check != "ok" {
        return Err(DbError::Corrupt {
            path: path.to_path_buf(),
            reason: check,
        });
    }
    // Everything into the main file first, with the WAL emptied: then the old WAL holds nothing
    // the copy could lack, and removing it below cannot lose a page. If another program holds
    // the file open (a `sqlite3` shell, a backup tool), stop here and change nothing.
    let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(&mut conn)
        .await
        .map_err(&err)?;
    if busy != 0 {
        return Err(DbError::Open {
            path: path.to_path_buf(),
            reason: "another program has the database open; close it and start again".into(),
        });
    }
    let key = pragma_key(storage_key);
    // The pragma's quoting is for statements; ATTACH takes the key as a plain value.
    let raw = Zeroizing::new(key.trim_matches('"').to_string());
    sqlx::query("ATTACH DATABASE ? AS encrypted KEY ?")
        .bind(partial.to_string_lossy().into_owned())
        .bind(raw.as_str())
        .execute(&mut conn)
        .await
        .map_err(&err)?;
    sqlx::query("SELECT sqlcipher_export('encrypted')")
        .execute(&mut conn)
        .await
        .map_err(&err)?;
    sqlx::query("DETACH DATABASE encrypted")
        .execute(&mut conn)
        .await
        .map_err(&err)?;
    conn.close().await.map_err(&err)?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    for p in [sibling(path, "-wal"), sibling(path, "-shm")] {
        remove_if_present(&p).map_err(io)?;
    }
    std::fs::rename(&partial, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    tracing::info!(path = %path.display(), "encrypted the database written by an earlier version");
    Ok(())
}
