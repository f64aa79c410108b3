//! Contacts, messages and the outbox in SQLite. Message bodies are sealed with the storage key;
//! cards and envelopes are stored as they travel (cards are public, envelopes already
//! end-to-end encrypted).

use libp2p::PeerId;
use sqlx::{Row, Sqlite, Transaction};

use crate::api::{ContactView, MessageState, MessageView};
use crate::codec;
use crate::contacts::card::{ContactCard, MAX_CARD_BYTES};
use crate::delivery::inbox::Inbox;
use crate::pairwise::envelope::MsgId;
use crate::reply::{Quotes, StoredRef};
use crate::storage::{seal, DbError};

fn q(e: sqlx::Error) -> DbError {
    DbError::Query(e.to_string())
}

/// A contact row, decoded.
#[derive(Debug, Clone)]
pub struct ContactRow {
    pub peer_id: PeerId,
    pub card: ContactCard,
    pub trusted_at: Option<u64>,
    pub blocked: bool,
    /// Group invitations from this contact are dropped unseen.
    pub invites_blocked: bool,
    pub out_seq: u64,
    /// `out_seq` is known to be the highest we ever sent this contact (see [`raise_out_seq`]).
    pub out_seq_known: bool,
    pub bucket_version: u64,
    pub inbox: Inbox,
    /// The user's own name for this contact, if they gave one.
    pub petname: Option<String>,
    /// When their card came back with another X25519 key (not yet acknowledged).
    pub key_changed_at: Option<u64>,
}

impl ContactRow {
    /// The name the app shows for this contact: the user's own, else the one on their card.
    pub fn shown_name(&self) -> &str {
        self.petname.as_deref().unwrap_or(&self.card.display_name)
    }
}

/// What adding a card did to an existing contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardUpdate {
    New,
    /// Same keys (name or addresses may differ).
    Refreshed,
    /// Another X25519 key: trust was reset and the change recorded.
    KeyChanged,
}

fn state_text(s: MessageState) -> &'static str {
    match s {
        MessageState::Pending => "pending",
        MessageState::Stored => "stored",
        MessageState::Sent => "sent",
        MessageState::Delivered => "delivered",
        MessageState::Received => "received",
    }
}

fn state_from(s: &str) -> MessageState {
    match s {
        "stored" => MessageState::Stored,
        "sent" => MessageState::Sent,
        "delivered" => MessageState::Delivered,
        "received" => MessageState::Received,
        _ => MessageState::Pending,
    }
}

/// Order of states an outgoing message moves through; a state never goes backwards.
fn rank(s: MessageState) -> u8 {
    match s {
        MessageState::Pending => 0,
        MessageState::Stored => 1,
        MessageState::Sent => 2,
        MessageState::Delivered => 3,
        MessageState::Received => 4,
    }
}

fn body_aad(peer: &PeerId, msg_id: &MsgId) -> Vec<u8> {
    let mut aad = b"kiyeovo/v1/message:".to_vec();
    aad.extend_from_slice(&peer.to_bytes());
    aad.extend_from_slice(msg_id.as_slice());
    aad
}

fn row_to_contact(r: &sqlx::sqlite::SqliteRow) -> Result<ContactRow, DbError> {
    let peer_text: String = r.get("peer_id");
    let bad = |what: &str| DbError::Query(format!("contact {peer_text}: {what}"));
    let card: ContactCard = codec::decode_bounded(&r.get::<Vec<u8>, _>("card"), MAX_CARD_BYTES)
        .map_err(|_| bad("card"))?;
    let inbox: Inbox =
        codec::decode_bounded(&r.get::<Vec<u8>, _>("inbox"), 1 << 20).map_err(|_| bad("inbox"))?;
    Ok(ContactRow {
        peer_id: peer_text.parse().map_err(|_| bad("peer id"))?,
        card,
        trusted_at: r.get::<Option<i64>, _>("trusted_at").map(|t| t as u64),
        blocked: r.get::<i64, _>("blocked") != 0,
        invites_blocked: r.get::<i64, _>("invites_blocked") != 0,
        out_seq: r.get::<i64, _>("out_seq") as u64,
        out_seq_known: r.get::<i64, _>("out_seq_known") != 0,
        bucket_version: r.get::<i64, _>("bucket_version") as u64,
        inbox,
        petname: r.get("petname"),
        key_changed_at: r.get::<Option<i64>, _>("key_changed_at").map(|t| t as u64),
    })
}

pub async fn contact<'e, E>(exec: E, peer: &PeerId) -> Result<Option<ContactRow>, DbError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query("SELECT * FROM contacts WHERE peer_id = ?")
        .bind(peer.to_string())
        .fetch_optional(exec)
        .await
        .map_err(q)?
        .map(|r| row_to_contact(&r))
        .transpose()
}

pub async fn contacts(pool: &sqlx::SqlitePool) -> Result<Vec<ContactRow>, DbError> {
    sqlx::query("SELECT * FROM contacts ORDER BY added_at")
        .fetch_all(pool)
        .await
        .map_err(q)?
        .iter()
        .map(row_to_contact)
        .collect()
}

/// Inserts a new contact, or replaces the card of a known one with a newer card.
/// Adds a contact's card, or updates it. A card with the X25519 key we already have only
/// refreshes it. A card with *another* X25519 key is never a silent replacement (PROTOCOL.md §2):
/// trust is reset (a new handshake must prove the new key), what we processed under the old key
/// is forgotten (their new key starts a new sequence), and the change is recorded for the UI.
pub async fn upsert_card(
    pool: &sqlx::SqlitePool,
    card: &ContactCard,
    peer: &PeerId,
    now: u64,
) -> Result<CardUpdate, DbError> {
    let mut tx = crate::storage::db::write_tx(pool).await.map_err(q)?;
    let existing = contact(&mut *tx, peer).await?;
    // A restored identity may have written to this contact before (see migration 0008).
    let restored = crate::restore::identity_restored(&mut *tx).await?;
    let update = match &existing {
        None => CardUpdate::New,
        Some(old) if old.card.identity.x25519 == card.identity.x25519 => CardUpdate::Refreshed,
        Some(_) => CardUpdate::KeyChanged,
    };
    match update {
        CardUpdate::New => {
            sqlx::query(
                "INSERT INTO contacts (peer_id, card, added_at, inbox, out_seq_known)
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(peer.to_string())
            .bind(codec::encode(card))
            .bind(now as i64)
            .bind(codec::encode(&Inbox::default()))
            .bind(i64::from(!restored))
            .execute(&mut *tx)
            .await
            .map_err(q)?;
        }
        CardUpdate::Refreshed => {
            sqlx::query("UPDATE contacts SET card = ? WHERE peer_id = ?")
                .bind(codec::encode(card))
                .bind(peer.to_string())
                .execute(&mut *tx)
                .await
                .map_err(q)?;
        }
        CardUpdate::KeyChanged => {
            sqlx::query(
                "UPDATE contacts SET card = ?, trusted_at = NULL, key_changed_at = ?, inbox = ?
                 WHERE peer_id = ?",
            )
            .bind(codec::encode(card))
            .bind(now as i64)
            .bind(codec::encode(&Inbox::default()))
            .bind(peer.to_string())
            .execute(&mut *tx)
            .await
            .map_err(q)?;
        }
    }
    tx.commit().await.map_err(q)?;
    Ok(update)
}

/// Contacts added before cards were checked for weak X25519 keys (PROTOCOL.md §1: the key must
/// be contributory) are blocked and untrusted at start-up, so nothing is ever sealed with a
/// secret anyone could compute. Returns whom it blocked; each is logged.
pub async fn block_weak_keys(pool: &sqlx::SqlitePool) -> Result<Vec<PeerId>, DbError> {
    let mut blocked = Vec::new();
    for row in contacts(pool).await? {
        if row.card.identity.verify() == Err(crate::identity::IdentityError::WeakX25519)
            && !row.blocked
        {
            sqlx::query("UPDATE contacts SET blocked = 1, trusted_at = NULL WHERE peer_id = ?")
                .bind(row.peer_id.to_string())
                .execute(pool)
                .await
                .map_err(q)?;
            tracing::warn!(peer = %row.peer_id, "contact's card has a weak encryption key; blocked");
            blocked.push(row.peer_id);
        }
    }
    Ok(blocked)
}

/// Sets (or with `None` clears) the user's own name for a contact; `false` if no such contact.
pub async fn set_petname(
    pool: &sqlx::SqlitePool,
    peer: &PeerId,
    name: Option<&str>,
) -> Result<bool, DbError> {
    let done = sqlx::query("UPDATE contacts SET petname = ? WHERE peer_id = ?")
        .bind(name)
        .bind(peer.to_string())
        .execute(pool)
        .await
        .map_err(q)?;
    Ok(done.rows_affected() == 1)
}

/// The user saw that a contact's key changed; `false` if no such contact.
pub async fn acknowledge_key_change(
    pool: &sqlx::SqlitePool,
    peer: &PeerId,
) -> Result<bool, DbError> {
    let done = sqlx::query("UPDATE contacts SET key_changed_at = NULL WHERE peer_id = ?")
        .bind(peer.to_string())
        .execute(pool)
        .await
        .map_err(q)?;
    Ok(done.rows_affected() == 1)
}

/// Sets one of a contact's on/off columns; `false` if there is no such contact.
async fn set_flag(
    pool: &sqlx::SqlitePool,
    peer: &PeerId,
    sql: &'static str,
    on: bool,
) -> Result<bool, DbError> {
    let done = sqlx::query(sql)
        .bind(on as i64)
        .bind(peer.to_string())
        .execute(pool)
        .await
        .map_err(q)?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_blocked(
    pool: &sqlx::SqlitePool,
    peer: &PeerId,
    blocked: bool,
) -> Result<bool, DbError> {
    let sql = "UPDATE contacts SET blocked = ? WHERE peer_id = ?";
    set_flag(pool, peer, sql, blocked).await
}

pub async fn set_invites_blocked(
    pool: &sqlx::SqlitePool,
    peer: &PeerId,
    blocked: bool,
) -> Result<bool, DbError> {
    let sql = "UPDATE contacts SET invites_blocked = ? WHERE peer_id = ?";
    set_flag(pool, peer, sql, blocked).await
}

/// Queues a group control message for the group service (inside the inbox transaction).
pub async fn push_group_inbox(
    tx: &mut Transaction<'_, Sqlite>,
    key: &[u8; 32],
    peer: &PeerId,
    control: &[u8],
) -> Result<(), DbError> {
    let aad = group_inbox_aad(peer);
    sqlx::query("INSERT INTO group_inbox (peer_id, control) VALUES (?, ?)")
        .bind(peer.to_string())
        .bind(seal::seal(key, &aad, control))
        .execute(&mut **tx)
        .await
        .map_err(q)?;
    Ok(())
}

pub fn group_inbox_aad(peer: &PeerId) -> Vec<u8> {
    let mut aad = b"kiyeovo/v1/group-inbox:".to_vec();
    aad.extend_from_slice(&peer.to_bytes());
    aad
}

pub async fn set_trusted(
    tx: &mut Transaction<'_, Sqlite>,
    peer: &PeerId,
    now: u64,
) -> Result<bool, DbError> {
    let done =
        sqlx::query("UPDATE contacts SET trusted_at = ? WHERE peer_id = ? AND trusted_at IS NULL")
            .bind(now as i64)
            .bind(peer.to_string())
            .execute(&mut **tx)
            .await
            .map_err(q)?;
    Ok(done.rows_affected() == 1)
}

pub async fn save_inbox(
    tx: &mut Transaction<'_, Sqlite>,
    peer: &PeerId,
    inbox: &Inbox,
) -> Result<(), DbError> {
    sqlx::query("UPDATE contacts SET inbox = ? WHERE peer_id = ?")
        .bind(codec::encode(inbox))
        .bind(peer.to_string())
        .execute(&mut **tx)
        .await
        .map_err(q)?;
    Ok(())
}

/// Continues our numbering for `peer` above `highest_sent` (the highest seq found in our own
/// bucket) and records that the numbering is now known. Never lowers it.
pub async fn raise_out_seq(
    tx: &mut Transaction<'_, Sqlite>,
    peer: &PeerId,
    highest_sent: u64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE contacts SET out_seq = MAX(out_seq, ?), out_seq_known = 1 WHERE peer_id = ?",
    )
    .bind(i64::try_from(highest_sent).map_err(|_| DbError::Query("seq out of range".into()))?)
    .bind(peer.to_string())
    .execute(&mut **tx)
    .await
    .map_err(q)?;
    Ok(())
}

/// Marks every contact's numbering unknown: after a restore from a backup, what we sent since
/// the backup was written is only in our buckets.
pub async fn forget_out_seqs(tx: &mut Transaction<'_, Sqlite>) -> Result<(), DbError> {
    sqlx::query("UPDATE contacts SET out_seq_known = 0")
        .execute(&mut **tx)
        .await
        .map_err(q)?;
    Ok(())
}

pub async fn next_out_seq(tx: &mut Transaction<'_, Sqlite>, peer: &PeerId) -> Result<u64, DbError> {
    let seq: i64 = sqlx::query_scalar(
        "UPDATE contacts SET out_seq = out_seq + 1 WHERE peer_id = ? RETURNING out_seq",
    )
    .bind(peer.to_string())
    .fetch_one(&mut **tx)
    .await
    .map_err(q)?;
    Ok(seq as u64)
}

pub async fn set_bucket_version(
    pool: &sqlx::SqlitePool,
    peer: &PeerId,
    version: u64,
) -> Result<(), DbError> {
    sqlx::query("UPDATE contacts SET bucket_version = MAX(bucket_version, ?) WHERE peer_id = ?")
        .bind(version as i64)
        .bind(peer.to_string())
        .execute(pool)
        .await
        .map_err(q)?;
    Ok(())
}

pub async fn push_outbox(
    tx: &mut Transaction<'_, Sqlite>,
    peer: &PeerId,
    seq: u64,
    envelope: &[u8],
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO outbox (peer_id, seq, envelope) VALUES (?, ?, ?)")
        .bind(peer.to_string())
        .bind(seq as i64)
        .bind(envelope)
        .execute(&mut **tx)
        .await
        .map_err(q)?;
    Ok(())
}

/// The newest `cap` envelopes we wrote to `peer`, oldest first.
pub async fn outbox(
    pool: &sqlx::SqlitePool,
    peer: &PeerId,
    cap: usize,
) -> Result<Vec<Vec<u8>>, DbError> {
    let mut rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT envelope FROM outbox WHERE peer_id = ? ORDER BY seq DESC LIMIT ?",
    )
    .bind(peer.to_string())
    .bind(cap as i64)
    .fetch_all(pool)
    .await
    .map_err(q)?;
    rows.reverse();
    Ok(rows)
}

/// Stores a message; returns false if it was already there (same contact, same id).
#[allow(clippy::too_many_arguments)]
pub async fn insert_message(
    tx: &mut Transaction<'_, Sqlite>,
    key: &[u8; 32],
    peer: &PeerId,
    msg_id: &MsgId,
    outgoing: bool,
    seq: u64,
    sent_at: u64,
    body: &str,
    reply_to: Option<&StoredRef>,
    state: MessageState,
) -> Result<bool, DbError> {
    let sealed = seal::seal(key, &body_aad(peer, msg_id), body.as_bytes());
    let done = sqlx::query(
        "INSERT INTO messages (peer_id, msg_id, outgoing, seq, sent_at, body, state, reply_author, reply_msg_id, reply_digest)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(peer_id, msg_id) DO NOTHING",
    )
    .bind(peer.to_string())
    .bind(msg_id.as_slice())
    .bind(outgoing as i64)
    .bind(seq as i64)
    .bind(sent_at as i64)
    .bind(sealed)
    .bind(state_text(state))
    .bind(reply_to.map(|r| r.author.as_str()))
    .bind(reply_to.map(|r| r.msg_id.as_slice()))
    .bind(reply_to.map(|r| r.digest.as_slice()))
    .execute(&mut **tx)
    .await
    .map_err(q)?;
    Ok(done.rows_affected() == 1)
}

/// Moves outgoing messages forward (never backwards) to `state`; returns how many changed.
pub async fn advance_state(
    conn: &mut sqlx::SqliteConnection,
    peer: &PeerId,
    ids: &[MsgId],
    state: MessageState,
) -> Result<u64, DbError> {
    let lower: Vec<&str> = [
        MessageState::Pending,
        MessageState::Stored,
        MessageState::Sent,
    ]
    .into_iter()
    .filter(|s| rank(*s) < rank(state))
    .map(state_text)
    .collect();
    if lower.is_empty() {
        return Ok(0);
    }
    let placeholders = vec!["?"; lower.len()].join(", ");
    let sql = format!(
        "UPDATE messages SET state = ? WHERE peer_id = ? AND msg_id = ? AND outgoing = 1 AND state IN ({placeholders})"
    );
    let mut changed = 0;
    for id in ids {
        let mut query = sqlx::query(&sql)
            .bind(state_text(state))
            .bind(peer.to_string())
            .bind(id.as_slice());
        for from in &lower {
            query = query.bind(*from);
        }
        changed += query.execute(&mut *conn).await.map_err(q)?.rows_affected();
    }
    Ok(changed)
}

/// Marks our pending messages to `peer` with `seq <= upto` as stored in the bucket; returns
/// their ids.
pub async fn mark_stored_up_to(
    pool: &sqlx::SqlitePool,
    peer: &PeerId,
    upto: u64,
) -> Result<Vec<MsgId>, DbError> {
    let ids: Vec<Vec<u8>> = sqlx::query_scalar(
        "UPDATE messages SET state = 'stored' WHERE peer_id = ? AND outgoing = 1 AND state = 'pending' AND seq <= ? RETURNING msg_id",
    )
    .bind(peer.to_string())
    .bind(upto as i64)
    .fetch_all(pool)
    .await
    .map_err(q)?;
    Ok(ids
        .iter()
        .filter_map(|id| id.as_slice().try_into().ok())
        .collect())
}

/// The conversation with `peer`, in order (sender clock, then seq). `me` and `their_name` name
/// the authors of quoted messages.
pub async fn messages(
    pool: &sqlx::SqlitePool,
    key: &[u8; 32],
    peer: &PeerId,
    me: &PeerId,
    their_name: &str,
) -> Result<Vec<MessageView>, DbError> {
    let rows = sqlx::query(
        "SELECT * FROM messages WHERE peer_id = ? AND deleted = 0 ORDER BY sent_at, outgoing, seq",
    )
    .bind(peer.to_string())
    .fetch_all(pool)
    .await
    .map_err(q)?;
    let (me, them) = (me.to_string(), peer.to_string());
    let opened = rows
        .iter()
        .map(|r| {
            let id: Vec<u8> = r.get("msg_id");
            let msg_id: MsgId = id
                .as_slice()
                .try_into()
                .map_err(|_| DbError::Query("bad message id".into()))?;
            let body = seal::open(key, &body_aad(peer, &msg_id), &r.get::<Vec<u8>, _>("body"))
                .map_err(|e| DbError::Query(format!("message body: {e}")))?;
            let reply_to = StoredRef::from_row(r);
            Ok((
                r,
                msg_id,
                String::from_utf8_lossy(&body).into_owned(),
                reply_to,
            ))
        })
        .collect::<Result<Vec<_>, DbError>>()?;
    // Quotes come from this conversation's own messages, each under its real author.
    let quotes = Quotes::new(
        opened.iter().map(|(r, id, body, _)| {
            let author = if r.get::<i64, _>("outgoing") != 0 {
                me.as_str()
            } else {
                them.as_str()
            };
            (author, *id, 0, body.as_str())
        }),
        |_, body: &str| Some(crate::reply::digest(body)),
    );
    Ok(opened
        .iter()
        .map(|(r, msg_id, body, reply_to)| MessageView {
            msg_id: msg_id.to_hex(),
            outgoing: r.get::<i64, _>("outgoing") != 0,
            body: body.clone(),
            sent_at: r.get::<i64, _>("sent_at") as u64,
            seq: r.get::<i64, _>("seq") as u64,
            state: state_from(&r.get::<String, _>("state")),
            reply_to: reply_to.as_ref().map(|q| {
                let outgoing = q.author == me;
                let name = if outgoing {
                    "You"
                } else if q.author == them {
                    their_name
                } else {
                    "someone else"
                };
                quotes.view(q, name.to_string(), outgoing)
            }),
        })
        .collect())
}

/// The body of our (`outgoing`) or their message `msg_id` with `peer`, if it is here and not
/// deleted (what a reply to it may quote).
pub async fn quotable(
    pool: &sqlx::SqlitePool,
    key: &[u8; 32],
    peer: &PeerId,
    outgoing: bool,
    msg_id: &MsgId,
) -> Result<Option<String>, DbError> {
    let body: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT body FROM messages WHERE peer_id = ? AND msg_id = ? AND outgoing = ? AND deleted = 0",
    )
    .bind(peer.to_string())
    .bind(msg_id.as_slice())
    .bind(outgoing as i64)
    .fetch_optional(pool)
    .await
    .map_err(q)?;
    Ok(body
        .and_then(|b| seal::open(key, &body_aad(peer, msg_id), &b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// The newest message with `peer` in the order the conversation shows (`messages`):
/// `(outgoing, body, sent_at)`. A row whose body does not open is skipped over.
pub async fn last_message(
    pool: &sqlx::SqlitePool,
    key: &[u8; 32],
    peer: &PeerId,
) -> Result<Option<(bool, String, u64)>, DbError> {
    let newest = search(pool, key, peer, 1, |_| true).await?;
    Ok(newest
        .into_iter()
        .next()
        .map(|(_, outgoing, body, at)| (outgoing, body, at)))
}

/// The newest `limit` messages with `peer` whose body `keep` accepts, newest first: `(msg_id, outgoing, body,
/// sent_at)`. Bodies are sealed at rest, so each is opened here, one row at a time; no index of
/// the plaintext is kept anywhere.
pub async fn search(
    pool: &sqlx::SqlitePool,
    key: &[u8; 32],
    peer: &PeerId,
    limit: usize,
    mut keep: impl FnMut(&str) -> bool,
) -> Result<Vec<(MsgId, bool, String, u64)>, DbError> {
    use futures::TryStreamExt;
    let mut rows = sqlx::query(
        "SELECT msg_id, outgoing, body, sent_at FROM messages WHERE peer_id = ? AND deleted = 0
         ORDER BY sent_at DESC, outgoing DESC, seq DESC",
    )
    .bind(peer.to_string())
    .fetch(pool);
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(r) = rows.try_next().await.map_err(q)? else {
            break;
        };
        let Ok(msg_id) = MsgId::try_from(r.get::<Vec<u8>, _>("msg_id").as_slice()) else {
            continue;
        };
        let Ok(body) = seal::open(key, &body_aad(peer, &msg_id), &r.get::<Vec<u8>, _>("body"))
        else {
            continue;
        };
        let body = String::from_utf8_lossy(&body);
        if keep(&body) {
            out.push((
                msg_id,
                r.get::<i64, _>("outgoing") != 0,
                body.into_owned(),
                r.get::<i64, _>("sent_at") as u64,
            ));
        }
    }
    Ok(out)
}

/// What "delete for me" did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// No such message here (or deleted already).
    NotFound,
    /// Ours and not stored or sent yet: it is kept until it went out.
    StillSending,
}

impl Deleted {
    /// The outcome, from whether the delete changed a row and, if not, whether the message is
    /// still there (then it is ours and not sent yet: the delete only takes sent ones).
    pub(crate) fn after(changed: bool, still_there: bool) -> Self {
        match (changed, still_there) {
            (true, _) => Deleted::Deleted,
            (false, true) => Deleted::StillSending,
            (false, false) => Deleted::NotFound,
        }
    }
}

/// "Delete for me": the message's body is wiped and it is no longer shown, counted or found.
/// The row stays so that its number keeps counting. One of ours that has not gone out yet is
/// refused: it is still being delivered.
pub async fn delete_message(
    pool: &sqlx::SqlitePool,
    peer: &PeerId,
    msg_id: &MsgId,
) -> Result<Deleted, DbError> {
    let done = sqlx::query(
        "UPDATE messages SET deleted = 1, body = X'', read = 1,
             reply_author = NULL, reply_msg_id = NULL, reply_digest = NULL
         WHERE peer_id = ? AND msg_id = ? AND deleted = 0 AND state != 'pending'",
    )
    .bind(peer.to_string())
    .bind(msg_id.as_slice())
    .execute(pool)
    .await
    .map_err(q)?;
    if done.rows_affected() > 0 {
        return Ok(Deleted::after(true, false));
    }
    let pending: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM messages WHERE peer_id = ? AND msg_id = ? AND deleted = 0",
    )
    .bind(peer.to_string())
    .bind(msg_id.as_slice())
    .fetch_optional(pool)
    .await
    .map_err(q)?;
    Ok(Deleted::after(false, pending.is_some()))
}

pub async fn mark_read(pool: &sqlx::SqlitePool, peer: &PeerId) -> Result<(), DbError> {
    sqlx::query("UPDATE messages SET read = 1 WHERE peer_id = ? AND outgoing = 0 AND read = 0")
        .bind(peer.to_string())
        .execute(pool)
        .await
        .map_err(q)?;
    Ok(())
}

/// Unread 1:1 messages from every contact not blocked (the tray's count), in one query.
pub async fn unread_from_unblocked(pool: &sqlx::SqlitePool) -> Result<u32, DbError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages m JOIN contacts c ON c.peer_id = m.peer_id
         WHERE m.outgoing = 0 AND m.read = 0 AND m.deleted = 0 AND c.blocked = 0",
    )
    .fetch_one(pool)
    .await
    .map_err(q)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

pub async fn unread(pool: &sqlx::SqlitePool, peer: &PeerId) -> Result<u32, DbError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages WHERE peer_id = ? AND outgoing = 0 AND read = 0 AND deleted = 0",
    )
    .bind(peer.to_string())
    .fetch_one(pool)
    .await
    .map_err(q)?;
    Ok(n as u32)
}

pub async fn view(pool: &sqlx::SqlitePool, row: &ContactRow) -> Result<ContactView, DbError> {
    Ok(ContactView {
        peer_id: row.peer_id.to_string(),
        display_name: row.shown_name().to_string(),
        card_name: row.card.display_name.clone(),
        key_changed_at: row.key_changed_at,
        trusted_at: row.trusted_at,
        blocked: row.blocked,
        invites_blocked: row.invites_blocked,
        unread: unread(pool, &row.peer_id).await?,
        missed: row.inbox.missed,
    })
}
