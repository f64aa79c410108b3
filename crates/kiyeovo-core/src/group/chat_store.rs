//! Group messages, read cursors and our outbox in SQLite. Bodies are sealed with the storage
//! key; envelopes are stored as they travel (already end-to-end encrypted).

use crate::ids::MsgId;
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::store::hex;
use crate::codec;
use crate::delivery::inbox::Inbox;
use crate::reply::StoredRef;
use crate::storage::{seal, DbError};

fn q(e: sqlx::Error) -> DbError {
    DbError::Query(e.to_string())
}

fn body_aad(group: &str, msg_id: &MsgId) -> Vec<u8> {
    let mut aad = b"kiyeovo/v1/group-message:".to_vec();
    aad.extend_from_slice(group.as_bytes());
    aad.extend_from_slice(msg_id.as_slice());
    aad
}

/// One stored message, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub msg_id: MsgId,
    pub epoch: u32,
    pub sender: String,
    pub seq: u64,
    pub sent_at: u64,
    pub body: String,
    pub reply_to: Option<StoredRef>,
    pub outgoing: bool,
    pub published: bool,
    pub stored: bool,
}

impl super::order::Ordered for StoredMessage {
    fn epoch(&self) -> u32 {
        self.epoch
    }
    fn sender(&self) -> &str {
        &self.sender
    }
    fn seq(&self) -> u64 {
        self.seq
    }
    fn sent_at(&self) -> u64 {
        self.sent_at
    }
}

/// What identifies a message in a group.
pub struct NewMessage<'a> {
    pub group: &'a str,
    pub epoch: u32,
    pub sender: &'a str,
    pub seq: u64,
    pub msg_id: &'a MsgId,
    pub sent_at: u64,
    pub body: &'a str,
    /// A reply: the message it answers.
    pub reply_to: Option<StoredRef>,
    pub outgoing: bool,
    /// The envelope as it travelled, kept for relaying to members who missed it.
    pub envelope: &'a [u8],
}

/// Stores a message once; `false` if it was already there.
pub async fn insert_message(
    tx: &mut Transaction<'_, Sqlite>,
    key: &[u8; 32],
    m: &NewMessage<'_>,
) -> Result<bool, DbError> {
    let sealed = seal::seal(key, &body_aad(m.group, m.msg_id), m.body.as_bytes());
    let done = sqlx::query(
        "INSERT INTO group_messages (group_id, epoch, sender, seq, msg_id, sent_at, body, outgoing, read, envelope,
                                     reply_author, reply_msg_id, reply_digest)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(m.group)
    .bind(m.epoch as i64)
    .bind(m.sender)
    .bind(m.seq as i64)
    .bind(m.msg_id.as_slice())
    .bind(m.sent_at as i64)
    .bind(sealed)
    .bind(m.outgoing as i64)
    .bind(m.outgoing as i64)
    .bind(m.envelope)
    .bind(m.reply_to.as_ref().map(|r| r.author.as_str()))
    .bind(m.reply_to.as_ref().map(|r| r.msg_id.as_slice()))
    .bind(m.reply_to.as_ref().map(|r| r.digest.as_slice()))
    .execute(&mut **tx)
    .await
    .map_err(q)?;
    Ok(done.rows_affected() == 1)
}

pub async fn inbox<'e, E>(exec: E, group: &str, epoch: u32, sender: &str) -> Result<Inbox, DbError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    let row = sqlx::query(
        "SELECT inbox FROM group_inboxes WHERE group_id = ? AND epoch = ? AND sender = ?",
    )
    .bind(group)
    .bind(epoch as i64)
    .bind(sender)
    .fetch_optional(exec)
    .await
    .map_err(q)?;
    match row {
        Some(r) => codec::decode_bounded(&r.get::<Vec<u8>, _>("inbox"), 1 << 20)
            .map_err(|e| DbError::Query(format!("group inbox: {e}"))),
        None => Ok(Inbox::default()),
    }
}

pub async fn save_inbox(
    tx: &mut Transaction<'_, Sqlite>,
    group: &str,
    epoch: u32,
    sender: &str,
    inbox: &Inbox,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO group_inboxes (group_id, epoch, sender, inbox) VALUES (?, ?, ?, ?)
         ON CONFLICT(group_id, epoch, sender) DO UPDATE SET inbox = excluded.inbox",
    )
    .bind(group)
    .bind(epoch as i64)
    .bind(sender)
    .bind(codec::encode(inbox))
    .execute(&mut **tx)
    .await
    .map_err(q)?;
    Ok(())
}

pub async fn add_missed(
    tx: &mut Transaction<'_, Sqlite>,
    group: &str,
    epoch: u32,
    sender: &str,
    before_seq: u64,
    count: u64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO group_missed (group_id, epoch, sender, before_seq, count) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT DO UPDATE SET count = count + excluded.count",
    )
    .bind(group)
    .bind(epoch as i64)
    .bind(sender)
    .bind(before_seq as i64)
    .bind(count as i64)
    .execute(&mut **tx)
    .await
    .map_err(q)?;
    Ok(())
}

/// `(sender, epoch, before_seq, count)` of every known loss.
pub async fn missed(
    pool: &SqlitePool,
    group: &str,
) -> Result<Vec<(String, u32, u64, u64)>, DbError> {
    Ok(sqlx::query(
        "SELECT sender, epoch, before_seq, count FROM group_missed WHERE group_id = ? ORDER BY epoch, before_seq",
    )
    .bind(group)
    .fetch_all(pool)
    .await
    .map_err(q)?
    .iter()
    .map(|r| {
        (
            r.get("sender"),
            r.get::<i64, _>("epoch") as u32,
            r.get::<i64, _>("before_seq") as u64,
            r.get::<i64, _>("count") as u64,
        )
    })
    .collect())
}

/// Every sender's inbox for a group: `(sender, epoch, inbox)`.
pub async fn inboxes(pool: &SqlitePool, group: &str) -> Result<Vec<(String, u32, Inbox)>, DbError> {
    let rows = sqlx::query("SELECT sender, epoch, inbox FROM group_inboxes WHERE group_id = ?")
        .bind(group)
        .fetch_all(pool)
        .await
        .map_err(q)?;
    let mut out = Vec::new();
    for r in rows {
        let inbox: Inbox = codec::decode_bounded(&r.get::<Vec<u8>, _>("inbox"), 1 << 20)
            .map_err(|e| DbError::Query(format!("group inbox: {e}")))?;
        out.push((r.get("sender"), r.get::<i64, _>("epoch") as u32, inbox));
    }
    Ok(out)
}

/// Reserves our next sequence number for a group epoch.
pub async fn next_out_seq(
    tx: &mut Transaction<'_, Sqlite>,
    group: &str,
    epoch: u32,
) -> Result<u64, DbError> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO group_own (group_id, epoch, out_seq) VALUES (?, ?, 1)
         ON CONFLICT(group_id, epoch) DO UPDATE SET out_seq = out_seq + 1
         RETURNING out_seq",
    )
    .bind(group)
    .bind(epoch as i64)
    .fetch_one(&mut **tx)
    .await
    .map_err(q)?;
    Ok(seq as u64)
}

/// Whether our highest seq in a group epoch is known here (see migration 0008).
pub async fn out_seq_known(pool: &SqlitePool, group: &str, epoch: u32) -> Result<bool, DbError> {
    let known: Option<i64> =
        sqlx::query_scalar("SELECT out_seq_known FROM group_own WHERE group_id = ? AND epoch = ?")
            .bind(group)
            .bind(epoch as i64)
            .fetch_optional(pool)
            .await
            .map_err(q)?;
    match known {
        Some(k) => Ok(k != 0),
        // A restored identity may have written in an epoch the backup has no row for (one that
        // began after the backup was written).
        None => Ok(!crate::restore::identity_restored(pool).await?),
    }
}

/// Continues our numbering in each epoch above the highest seq found in our bucket, and records
/// that it is known. Never lowers it.
pub async fn raise_out_seqs(
    pool: &SqlitePool,
    group: &str,
    highest: &std::collections::BTreeMap<u32, u64>,
) -> Result<(), DbError> {
    let mut tx = crate::storage::db::write_tx(pool).await.map_err(q)?;
    for (epoch, seq) in highest {
        sqlx::query(
            "INSERT INTO group_own (group_id, epoch, out_seq, out_seq_known) VALUES (?, ?, ?, 1)
             ON CONFLICT(group_id, epoch) DO UPDATE
             SET out_seq = MAX(out_seq, excluded.out_seq), out_seq_known = 1",
        )
        .bind(group)
        .bind(i64::from(*epoch))
        .bind(i64::try_from(*seq).map_err(|_| DbError::Query("seq out of range".into()))?)
        .execute(&mut *tx)
        .await
        .map_err(q)?;
    }
    tx.commit().await.map_err(q)?;
    Ok(())
}

/// Marks our numbering in every group epoch unknown (a restore from a backup).
pub async fn forget_out_seqs(tx: &mut Transaction<'_, Sqlite>) -> Result<(), DbError> {
    sqlx::query("UPDATE group_own SET out_seq_known = 0")
        .execute(&mut **tx)
        .await
        .map_err(q)?;
    Ok(())
}

/// `(out_seq, bucket_version)` for a group epoch.
pub async fn own(pool: &SqlitePool, group: &str, epoch: u32) -> Result<(u64, u64), DbError> {
    let row = sqlx::query(
        "SELECT out_seq, bucket_version FROM group_own WHERE group_id = ? AND epoch = ?",
    )
    .bind(group)
    .bind(epoch as i64)
    .fetch_optional(pool)
    .await
    .map_err(q)?;
    Ok(row.map_or((0, 0), |r| {
        (
            r.get::<i64, _>("out_seq") as u64,
            r.get::<i64, _>("bucket_version") as u64,
        )
    }))
}

pub async fn set_bucket_version(
    pool: &SqlitePool,
    group: &str,
    epoch: u32,
    version: u64,
) -> Result<(), DbError> {
    sqlx::query("UPDATE group_own SET bucket_version = ? WHERE group_id = ? AND epoch = ?")
        .bind(version as i64)
        .bind(group)
        .bind(epoch as i64)
        .execute(pool)
        .await
        .map_err(q)?;
    Ok(())
}

pub async fn push_outbox(
    tx: &mut Transaction<'_, Sqlite>,
    group: &str,
    epoch: u32,
    seq: u64,
    envelope: &[u8],
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO group_outbox (group_id, epoch, seq, envelope) VALUES (?, ?, ?, ?)")
        .bind(group)
        .bind(epoch as i64)
        .bind(seq as i64)
        .bind(envelope)
        .execute(&mut **tx)
        .await
        .map_err(q)?;
    Ok(())
}

/// Our newest `cap` envelopes of a group epoch, oldest first.
pub async fn outbox(
    pool: &SqlitePool,
    group: &str,
    epoch: u32,
    cap: usize,
) -> Result<Vec<Vec<u8>>, DbError> {
    let mut rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT envelope FROM group_outbox WHERE group_id = ? AND epoch = ? ORDER BY seq DESC LIMIT ?",
    )
    .bind(group)
    .bind(epoch as i64)
    .bind(cap as i64)
    .fetch_all(pool)
    .await
    .map_err(q)?;
    rows.reverse();
    Ok(rows)
}

/// The (group, epoch) pairs we have written in.
pub async fn own_epochs(pool: &SqlitePool) -> Result<Vec<(String, u32)>, DbError> {
    Ok(
        sqlx::query("SELECT group_id, epoch FROM group_own WHERE out_seq > 0")
            .fetch_all(pool)
            .await
            .map_err(q)?
            .iter()
            .map(|r| (r.get("group_id"), r.get::<i64, _>("epoch") as u32))
            .collect(),
    )
}

pub async fn mark_published(
    pool: &SqlitePool,
    group: &str,
    me: &str,
    msg_id: &MsgId,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE group_messages SET published = 1 WHERE group_id = ? AND sender = ? AND msg_id = ?",
    )
    .bind(group)
    .bind(me)
    .bind(msg_id.as_slice())
    .execute(pool)
    .await
    .map_err(q)?;
    Ok(())
}

/// Our messages of an epoch up to `seq` are in our bucket. Returns how many changed.
pub async fn mark_stored_up_to(
    pool: &SqlitePool,
    group: &str,
    epoch: u32,
    me: &str,
    seq: u64,
) -> Result<u64, DbError> {
    let done = sqlx::query(
        "UPDATE group_messages SET stored = 1
         WHERE group_id = ? AND epoch = ? AND sender = ? AND seq <= ? AND stored = 0",
    )
    .bind(group)
    .bind(epoch as i64)
    .bind(me)
    .bind(seq as i64)
    .execute(pool)
    .await
    .map_err(q)?;
    Ok(done.rows_affected())
}

/// Our messages of `epoch` that reached nobody — never handed to the mesh, never in our bucket —
/// after the last one that did (so taking them out leaves no hole in our numbering): (seq, msg
/// id, sent_at, body), oldest first.
pub async fn unsent_tail(
    pool: &SqlitePool,
    key: &[u8; 32],
    group: &str,
    epoch: u32,
    me: &str,
) -> Result<Vec<(u64, MsgId, u64, String, Option<StoredRef>)>, DbError> {
    let rows = sqlx::query(
        "SELECT seq, msg_id, sent_at, body, reply_author, reply_msg_id, reply_digest FROM group_messages
         WHERE group_id = ?1 AND epoch = ?2 AND sender = ?3 AND outgoing = 1 AND deleted = 0
           AND seq > COALESCE((SELECT MAX(seq) FROM group_messages WHERE group_id = ?1
                AND epoch = ?2 AND sender = ?3 AND (published = 1 OR stored = 1)), 0)
         ORDER BY seq",
    )
    .bind(group)
    .bind(epoch as i64)
    .bind(me)
    .fetch_all(pool)
    .await
    .map_err(q)?;
    let mut out = Vec::new();
    for r in rows {
        let Ok(id) = MsgId::try_from(r.get::<Vec<u8>, _>("msg_id").as_slice()) else {
            continue;
        };
        let Ok(body) = seal::open(key, &body_aad(group, &id), &r.get::<Vec<u8>, _>("body")) else {
            continue;
        };
        out.push((
            r.get::<i64, _>("seq") as u64,
            id,
            r.get::<i64, _>("sent_at") as u64,
            String::from_utf8_lossy(&body).into_owned(),
            StoredRef::from_row(&r),
        ));
    }
    Ok(out)
}

/// Takes one of our messages back (to send it again in another epoch): its outbox envelope and
/// its row. Returns whether it was still unsent (a write that got there first keeps it).
pub async fn take_back_unsent(
    tx: &mut Transaction<'_, Sqlite>,
    group: &str,
    epoch: u32,
    seq: u64,
    msg_id: &MsgId,
) -> Result<bool, DbError> {
    let gone = sqlx::query(
        "DELETE FROM group_messages WHERE group_id = ? AND msg_id = ? AND epoch = ? AND seq = ?
           AND outgoing = 1 AND published = 0 AND stored = 0",
    )
    .bind(group)
    .bind(msg_id.as_slice())
    .bind(epoch as i64)
    .bind(seq as i64)
    .execute(&mut **tx)
    .await
    .map_err(q)?;
    if gone.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM group_outbox WHERE group_id = ? AND epoch = ? AND seq = ?")
        .bind(group)
        .bind(epoch as i64)
        .bind(seq as i64)
        .execute(&mut **tx)
        .await
        .map_err(q)?;
    Ok(true)
}

pub async fn messages(
    pool: &SqlitePool,
    key: &[u8; 32],
    group: &str,
) -> Result<Vec<StoredMessage>, DbError> {
    let rows = sqlx::query(
        "SELECT * FROM group_messages WHERE group_id = ? AND deleted = 0 ORDER BY sent_at, sender, seq",
    )
    .bind(group)
    .fetch_all(pool)
    .await
    .map_err(q)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let msg_id: Vec<u8> = r.get("msg_id");
        let Ok(id) = MsgId::try_from(msg_id.as_slice()) else {
            continue;
        };
        let body = match seal::open(key, &body_aad(group, &id), &r.get::<Vec<u8>, _>("body")) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(_) => {
                tracing::error!(group, msg = %hex(id), "a stored group message does not open");
                continue;
            }
        };
        out.push(StoredMessage {
            msg_id: id,
            epoch: r.get::<i64, _>("epoch") as u32,
            sender: r.get("sender"),
            seq: r.get::<i64, _>("seq") as u64,
            sent_at: r.get::<i64, _>("sent_at") as u64,
            body,
            reply_to: StoredRef::from_row(&r),
            outgoing: r.get::<i64, _>("outgoing") != 0,
            published: r.get::<i64, _>("published") != 0,
            stored: r.get::<i64, _>("stored") != 0,
        });
    }
    Ok(out)
}

/// The newest message of `group` in the order the chat shows (`messages`):
/// `(sender peer id, outgoing, body, sent_at)`. A body that does not open is skipped over.
pub async fn last_message(
    pool: &SqlitePool,
    key: &[u8; 32],
    group: &str,
) -> Result<Option<(String, bool, String, u64)>, DbError> {
    let newest = search(pool, key, group, 1, |_| true).await?;
    Ok(newest
        .into_iter()
        .next()
        .map(|(_, sender, outgoing, body, at)| (sender, outgoing, body, at)))
}

/// The newest `limit` messages of `group` whose body `keep` accepts, newest first: `(msg_id, sender peer id,
/// outgoing, body, sent_at)`. Each sealed body is opened here, one row at a time; no index of
/// the plaintext is kept anywhere.
pub async fn search(
    pool: &SqlitePool,
    key: &[u8; 32],
    group: &str,
    limit: usize,
    mut keep: impl FnMut(&str) -> bool,
) -> Result<Vec<(MsgId, String, bool, String, u64)>, DbError> {
    use futures::TryStreamExt;
    let mut rows = sqlx::query(
        "SELECT msg_id, sender, outgoing, body, sent_at FROM group_messages
         WHERE group_id = ? AND deleted = 0
         ORDER BY sent_at DESC, sender DESC, seq DESC",
    )
    .bind(group)
    .fetch(pool);
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(r) = rows.try_next().await.map_err(q)? else {
            break;
        };
        let Ok(id) = MsgId::try_from(r.get::<Vec<u8>, _>("msg_id").as_slice()) else {
            continue;
        };
        let Ok(body) = seal::open(key, &body_aad(group, &id), &r.get::<Vec<u8>, _>("body")) else {
            continue;
        };
        let body = String::from_utf8_lossy(&body);
        if keep(&body) {
            out.push((
                id,
                r.get("sender"),
                r.get::<i64, _>("outgoing") != 0,
                body.into_owned(),
                r.get::<i64, _>("sent_at") as u64,
            ));
        }
    }
    Ok(out)
}

/// The body and epoch of `sender`'s message `msg_id` in `group`, if it is here and not deleted
/// (what a reply to it may quote).
pub async fn quotable(
    pool: &SqlitePool,
    key: &[u8; 32],
    group: &str,
    sender: &str,
    msg_id: &MsgId,
) -> Result<Option<(String, u32)>, DbError> {
    let row: Option<(Vec<u8>, i64)> = sqlx::query_as(
        "SELECT body, epoch FROM group_messages WHERE group_id = ? AND sender = ? AND msg_id = ? AND deleted = 0",
    )
    .bind(group)
    .bind(sender)
    .bind(msg_id.as_slice())
    .fetch_optional(pool)
    .await
    .map_err(q)?;
    Ok(row.and_then(|(b, epoch)| {
        let body = seal::open(key, &body_aad(group, msg_id), &b).ok()?;
        Some((String::from_utf8_lossy(&body).into_owned(), epoch as u32))
    }))
}

/// "Delete for me" of `sender`'s message `msg_id` in `group`: its body and the envelope kept for
/// relaying are wiped and it is no longer shown, counted or found; the row stays so that its
/// number keeps counting. One of ours that has not gone out yet is refused (it would be sent
/// again from here). See `contacts::store::Deleted`.
pub async fn delete_message(
    pool: &SqlitePool,
    group: &str,
    sender: &str,
    msg_id: &MsgId,
) -> Result<crate::contacts::store::Deleted, DbError> {
    use crate::contacts::store::Deleted;
    let done = sqlx::query(
        "UPDATE group_messages SET deleted = 1, body = X'', envelope = NULL, read = 1,
             reply_author = NULL, reply_msg_id = NULL, reply_digest = NULL
         WHERE group_id = ? AND sender = ? AND msg_id = ? AND deleted = 0
           AND (outgoing = 0 OR published = 1 OR stored = 1)",
    )
    .bind(group)
    .bind(sender)
    .bind(msg_id.as_slice())
    .execute(pool)
    .await
    .map_err(q)?;
    if done.rows_affected() > 0 {
        return Ok(Deleted::after(true, false));
    }
    let pending: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM group_messages WHERE group_id = ? AND sender = ? AND msg_id = ? AND deleted = 0",
    )
    .bind(group)
    .bind(sender)
    .bind(msg_id.as_slice())
    .fetch_optional(pool)
    .await
    .map_err(q)?;
    Ok(Deleted::after(false, pending.is_some()))
}

pub async fn unread(pool: &SqlitePool, group: &str) -> Result<u32, DbError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM group_messages WHERE group_id = ? AND outgoing = 0 AND read = 0 AND deleted = 0",
    )
    .bind(group)
    .fetch_one(pool)
    .await
    .map_err(q)?;
    Ok(n as u32)
}

pub async fn mark_read(pool: &SqlitePool, group: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE group_messages SET read = 1 WHERE group_id = ? AND read = 0")
        .bind(group)
        .execute(pool)
        .await
        .map_err(q)?;
    Ok(())
}

/// The stored envelopes of `sender`'s messages `seqs` in a group epoch (for relaying).
pub async fn envelopes(
    pool: &SqlitePool,
    group: &str,
    epoch: u32,
    sender: &str,
    seqs: &[u64],
) -> Result<Vec<Vec<u8>>, DbError> {
    let mut out = Vec::new();
    for seq in seqs {
        let env: Option<Option<Vec<u8>>> = sqlx::query_scalar(
            "SELECT envelope FROM group_messages WHERE group_id = ? AND epoch = ? AND sender = ? AND seq = ?",
        )
        .bind(group)
        .bind(epoch as i64)
        .bind(sender)
        .bind(*seq as i64)
        .fetch_optional(pool)
        .await
        .map_err(q)?;
        if let Some(Some(env)) = env {
            out.push(env);
        }
    }
    Ok(out)
}
