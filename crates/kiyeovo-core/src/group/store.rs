//! Groups in SQLite. A group's whole state — keys included — is one sealed blob (storage key,
//! the group id as associated data), so nothing about a group is readable from the file but its
//! random id and timestamps.

use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use zeroize::Zeroizing;

use super::control::GroupId;
use super::machine::Group;
use super::store_legacy::{GroupV1, GroupV2, GroupV3, GroupV4};
use crate::codec;
use crate::storage::{seal, DbError};

/// A sealed group is at most a few KiB; this bounds a damaged row.
const MAX_GROUP_BYTES: usize = 1 << 20;

fn q(e: sqlx::Error) -> DbError {
    DbError::Query(e.to_string())
}

pub use crate::ids::hex;

pub fn parse_group_id(text: &str) -> Option<GroupId> {
    GroupId::from_hex(text)
}

/// The format version is part of the sealed blob's associated data: a row says, authenticated,
/// which layout its plaintext has (postcard is positional, so a layout change is a new version).
fn aad(version: u8, id: &GroupId) -> Vec<u8> {
    let mut aad = format!("kiyeovo/v{version}/group:").into_bytes();
    aad.extend_from_slice(id.as_slice());
    aad
}

/// The layout [`save`] writes.
const FORMAT: u8 = 5;

/// Opens a sealed state; the plaintext (it holds the group's keys) is wiped when dropped.
fn open_state(
    key: &[u8; 32],
    version: u8,
    id: &GroupId,
    sealed: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    seal::open(key, &aad(version, id), sealed)
        .ok()
        .map(Zeroizing::new)
}

fn open_row(key: &[u8; 32], r: &sqlx::sqlite::SqliteRow) -> Result<Group, DbError> {
    let id_text: String = r.get("group_id");
    let bad = |what: &str| DbError::Query(format!("group {id_text}: {what}"));
    let id = parse_group_id(&id_text).ok_or_else(|| bad("id"))?;
    let sealed = r.get::<Vec<u8>, _>("state");
    let group: Group = if let Some(plain) = open_state(key, FORMAT, &id, &sealed) {
        codec::decode_bounded(&plain, MAX_GROUP_BYTES).map_err(|_| bad("state"))?
    } else if let Some(plain) = open_state(key, 4, &id, &sealed) {
        codec::decode_bounded::<GroupV4>(&plain, MAX_GROUP_BYTES)
            .map_err(|_| bad("state (v4)"))?
            .into()
    } else if let Some(plain) = open_state(key, 3, &id, &sealed) {
        codec::decode_bounded::<GroupV3>(&plain, MAX_GROUP_BYTES)
            .map_err(|_| bad("state (v3)"))?
            .into()
    } else if let Some(plain) = open_state(key, 2, &id, &sealed) {
        codec::decode_bounded::<GroupV2>(&plain, MAX_GROUP_BYTES)
            .map_err(|_| bad("state (v2)"))?
            .into()
    } else {
        // Written by v0.1: the oldest layout, converted.
        let plain = open_state(key, 1, &id, &sealed)
            .ok_or_else(|| bad("does not open with the storage key"))?;
        codec::decode_bounded::<GroupV1>(&plain, MAX_GROUP_BYTES)
            .map_err(|_| bad("state (v1)"))?
            .into()
    };
    if group.group_id != id {
        return Err(bad("id mismatch"));
    }
    Ok(group)
}

pub async fn load<'e, E>(exec: E, key: &[u8; 32], id: &GroupId) -> Result<Option<Group>, DbError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query("SELECT group_id, state FROM groups WHERE group_id = ?")
        .bind(hex(id))
        .fetch_optional(exec)
        .await
        .map_err(q)?
        .map(|r| open_row(key, &r))
        .transpose()
}

/// Every group, newest first.
pub async fn all<'e, E>(exec: E, key: &[u8; 32]) -> Result<Vec<Group>, DbError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    let rows = sqlx::query("SELECT group_id, state FROM groups ORDER BY created_at DESC")
        .fetch_all(exec)
        .await
        .map_err(q)?;
    let mut out = Vec::new();
    for r in &rows {
        match open_row(key, r) {
            Ok(g) => out.push(g),
            // One damaged row must not hide every other group.
            Err(e) => tracing::error!(error = %e, "skipping an unreadable group"),
        }
    }
    Ok(out)
}

pub async fn save(
    tx: &mut Transaction<'_, Sqlite>,
    key: &[u8; 32],
    group: &Group,
) -> Result<(), DbError> {
    let plain = Zeroizing::new(codec::encode(group));
    let sealed = seal::seal(key, &aad(FORMAT, &group.group_id), &plain);
    sqlx::query(
        "INSERT INTO groups (group_id, state, created_at, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(group_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
    )
    .bind(hex(group.group_id))
    .bind(sealed)
    .bind(group.invite.created_at as i64)
    .bind(group.updated_at as i64)
    .execute(&mut **tx)
    .await
    .map_err(q)?;
    Ok(())
}

/// The oldest unprocessed control messages: (row id, sender, sealed bytes).
pub async fn inbox(pool: &SqlitePool, limit: u32) -> Result<Vec<(i64, String, Vec<u8>)>, DbError> {
    Ok(
        sqlx::query("SELECT id, peer_id, control FROM group_inbox ORDER BY id LIMIT ?")
            .bind(limit as i64)
            .fetch_all(pool)
            .await
            .map_err(q)?
            .iter()
            .map(|r| (r.get("id"), r.get("peer_id"), r.get("control")))
            .collect(),
    )
}

/// Removes an inbox row; `false` if another worker already took it.
pub async fn remove_inbox(tx: &mut Transaction<'_, Sqlite>, id: i64) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM group_inbox WHERE id = ?")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(q)?;
    Ok(done.rows_affected() == 1)
}
