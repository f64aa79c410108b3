//! The pairwise channel service (PROTOCOL.md §2): adding contacts, the handshake that makes them
//! trusted, and 1:1 messages online (direct) and offline (the sender's bucket in the DHT).
//!
//! Every outgoing envelope is first committed locally (outbox + message, one transaction), then
//! written to our bucket for that contact (re-read and merged, so nothing another session wrote
//! is lost), then offered directly. The bucket is the source of truth; direct delivery only
//! makes it faster. Every incoming envelope — direct or from a bucket — is opened, checked
//! against the inbox (exactly once) and applied in one transaction with the inbox update, so a
//! crash at any point neither loses nor duplicates a message.

use std::sync::Arc;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, Mutex};

use crate::api::{ContactView, MessageState, MessageView, ReplyTarget};
use crate::contacts::card::{CardError, ContactCard};
use crate::contacts::store::{self, ContactRow};
use crate::debounce::Debounce;
use crate::delivery::bucket::{BucketContent, BucketLimits};
use crate::delivery::inbox::Arrival;
use crate::delivery::record;
use crate::delivery::writes::Writes;
use crate::identity::Identity;
use crate::keystore::StorageKey;
use crate::node::{Client, NodeError};
use crate::pairwise::bucket;
use crate::pairwise::envelope::{self, EnvelopeError, MsgId, Payload};
use crate::pairwise::keys::{self, PairwiseKeys};
use crate::records::{RecordKey, RecordKind};
use crate::reply::ReplyRef;
use crate::storage::{Database, DbError};
use crate::time::now_ms;

/// First byte of a direct payload: a sealed pairwise envelope follows.
pub const TAG_ENVELOPE: u8 = 1;
/// First byte of a direct payload: "read my bucket now" (nothing follows).
pub const TAG_NUDGE: u8 = 2;
/// At most one nudge per contact in this interval (PROTOCOL.md §6).
pub const NUDGE_DEBOUNCE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub struct ChannelConfig {
    /// Envelopes kept in each bucket (PROTOCOL.md §6: 100, at most 1000).
    pub bucket_cap: usize,
    /// Largest DHT record.
    pub max_record_bytes: usize,
    /// How often every contact's bucket is read.
    pub poll_interval: Duration,
    /// How often our buckets are re-published (PROTOCOL.md §3: ~30 min).
    pub republish_interval: Duration,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            bucket_cap: crate::delivery::bucket::DEFAULT_CAP,
            max_record_bytes: crate::config::Limits::default().max_record_bytes,
            poll_interval: Duration::from_secs(30),
            republish_interval: crate::config::Timing::default().republish,
        }
    }
}

/// Something the UI (and tests) should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    ContactTrusted {
        peer: PeerId,
    },
    MessageReceived {
        peer: PeerId,
        seq: u64,
        /// It came directly from the contact, not from its bucket.
        live: bool,
    },
    MessageState {
        peer: PeerId,
        msg_id: MsgId,
        state: MessageState,
    },
    /// Envelopes were evicted from the contact's bucket before we read them.
    Missed {
        peer: PeerId,
        count: u64,
    },
    /// The conversation was read here.
    Read {
        peer: PeerId,
    },
    /// A message was deleted here ("delete for me").
    MessageDeleted {
        peer: PeerId,
    },
    /// The user blocked or unblocked the contact.
    Blocked {
        peer: PeerId,
        blocked: bool,
    },
    /// Our bucket for `peer` now holds every envelope up to `seq`.
    BucketWritten {
        peer: PeerId,
        seq: u64,
    },
    /// A group control message from `peer` waits in the group inbox.
    GroupControl {
        peer: PeerId,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(transparent)]
    Card(#[from] CardError),
    #[error("{0} is not one of your contacts")]
    UnknownContact(String),
    #[error("{0} is not trusted yet: both of you must add each other's card first")]
    NotTrusted(String),
    #[error("you blocked {0}; unblock them to send messages")]
    Blocked(String),
    #[error("the message is empty")]
    EmptyMessage,
    #[error("that message is not here (it may have been deleted already)")]
    UnknownMessage,
    #[error("that message is still being sent")]
    StillSending,
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl ChannelError {
    /// The words the UI shows.
    pub fn to_ui(&self) -> crate::api::UiError {
        use crate::api::{ErrorCode, UiError};
        let (code, hint) = match self {
            ChannelError::Card(_) => (ErrorCode::InvalidInput, "Ask your contact to copy their card again (Contacts → My card) and paste all of it."),
            ChannelError::UnknownContact(_) | ChannelError::NotTrusted(_) => (ErrorCode::InvalidInput, "Both of you must add each other's card; the contact turns trusted once the handshake completes."),
            ChannelError::Blocked(_) => (ErrorCode::InvalidInput, "Unblock the contact first."),
            ChannelError::EmptyMessage => (ErrorCode::InvalidInput, "Type a message first."),
            ChannelError::UnknownMessage => (ErrorCode::InvalidInput, "Reopen the conversation to see what it holds now."),
            ChannelError::StillSending => (ErrorCode::InvalidInput, "Delete it once it shows as stored or sent."),
            ChannelError::Envelope(_) => (ErrorCode::InvalidInput, "The message is too long; split it."),
            ChannelError::Database(_) => (ErrorCode::Database, "Check free disk space, then try again."),
            ChannelError::Node(NodeError::Unreachable) => (ErrorCode::Network, "Not sent: this identity was restored, and Kiyeovo must first read what it sent before from the network. Try again once Settings says it joined the network."),
            ChannelError::Node(_) => (ErrorCode::Network, "Check your network connection; the message is kept and sent later."),
        };
        UiError {
            code,
            message: self.to_string(),
            hint: hint.to_string(),
        }
    }
}

impl ChannelEvent {
    /// The contact this event is about.
    pub fn peer(&self) -> PeerId {
        match self {
            ChannelEvent::ContactTrusted { peer }
            | ChannelEvent::MessageReceived { peer, .. }
            | ChannelEvent::MessageState { peer, .. }
            | ChannelEvent::Missed { peer, .. }
            | ChannelEvent::Read { peer }
            | ChannelEvent::MessageDeleted { peer }
            | ChannelEvent::Blocked { peer, .. }
            | ChannelEvent::BucketWritten { peer, .. }
            | ChannelEvent::GroupControl { peer } => *peer,
        }
    }
}

/// Why an inbound envelope was dropped (logged, never shown as a message).
#[derive(Debug, thiserror::Error)]
pub enum DropReason {
    #[error("not from a contact")]
    NotAContact,
    #[error("sender is blocked")]
    Blocked,
    #[error("already processed")]
    Duplicate,
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Database(#[from] DbError),
}

pub struct Channel {
    identity: Arc<Identity>,
    me: [u8; 32],
    db: Database,
    storage_key: Arc<StorageKey>,
    client: Client,
    config: ChannelConfig,
    events: broadcast::Sender<ChannelEvent>,
    /// Serialises state changes so sequence numbers and inbox updates never interleave.
    write: Mutex<()>,
    /// Nudges we send, at most one per contact per [`NUDGE_DEBOUNCE`].
    nudged: Mutex<Debounce<PeerId>>,
    /// Nudges we act on, likewise: each costs a DHT read, so a peer repeating them must not
    /// turn us into its DHT client.
    nudged_by: Mutex<Debounce<PeerId>>,
    /// Writes of our bucket for each contact, coalesced.
    publishing: Writes<PeerId>,
}

impl Channel {
    pub fn new(
        identity: Arc<Identity>,
        db: Database,
        storage_key: Arc<StorageKey>,
        client: Client,
        config: ChannelConfig,
    ) -> Arc<Self> {
        let me = identity.public().ed25519;
        Arc::new(Self {
            identity,
            me,
            db,
            storage_key,
            client,
            config,
            events: broadcast::channel(1024).0,
            write: Mutex::new(()),
            nudged: Mutex::new(Debounce::new(NUDGE_DEBOUNCE)),
            nudged_by: Mutex::new(Debounce::new(NUDGE_DEBOUNCE)),
            publishing: Writes::default(),
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ChannelEvent> {
        self.events.subscribe()
    }

    fn emit(&self, event: ChannelEvent) {
        let _ = self.events.send(event);
    }

    fn limits(&self) -> BucketLimits {
        BucketLimits {
            cap: self.config.bucket_cap,
            // Room for the signed record around the envelopes.
            max_bytes: self.config.max_record_bytes.saturating_sub(1024),
        }
    }

    /// Our card as a `kiyeovo1…` string.
    pub fn my_card(&self, display_name: &str, addrs: Vec<String>) -> String {
        let name = if display_name.is_empty() {
            "Kiyeovo user"
        } else {
            display_name
        };
        ContactCard::new(&self.identity, name, addrs, now_ms()).to_text(&self.identity)
    }

    fn keys(&self, card: &ContactCard) -> PairwiseKeys {
        keys::derive(&self.identity, &card.identity)
    }

    async fn contact(&self, peer: &PeerId) -> Result<ContactRow, ChannelError> {
        store::contact(self.db.pool(), peer)
            .await?
            .ok_or_else(|| ChannelError::UnknownContact(peer.to_string()))
    }

    /// Adds (or refreshes) a contact from a pasted card and starts the handshake.
    pub async fn add_contact(self: &Arc<Self>, text: &str) -> Result<ContactView, ChannelError> {
        let own = self.identity.peer_id();
        let card = ContactCard::from_text(text, Some(&own))?;
        let peer = card.peer_id()?;
        if store::upsert_card(self.db.pool(), &card, &peer, now_ms()).await?
            == store::CardUpdate::KeyChanged
        {
            tracing::warn!(%peer, "contact's card has another encryption key; trust reset until a new handshake");
        }
        for addr in card
            .addrs
            .iter()
            .filter_map(|a| a.parse::<Multiaddr>().ok())
        {
            let _ = self.client.add_address(peer, addr).await;
        }
        tracing::info!(%peer, "contact added; sending handshake");
        self.send(
            &peer,
            Payload::Handshake {
                card_created_at: card.created_at,
            },
        )
        .await?;
        // They may have added us while we were away: their handshake waits in their bucket.
        self.poll(&peer).await;
        let row = self.contact(&peer).await?;
        Ok(store::view(self.db.pool(), &row).await?)
    }

    pub async fn contacts(&self) -> Result<Vec<ContactView>, ChannelError> {
        let mut out = Vec::new();
        for row in store::contacts(self.db.pool()).await? {
            out.push(store::view(self.db.pool(), &row).await?);
        }
        Ok(out)
    }

    /// One contact as the list shows it; `None` if it is not (or no longer) a contact.
    pub async fn contact_view(&self, peer: &PeerId) -> Result<Option<ContactView>, ChannelError> {
        match store::contact(self.db.pool(), peer).await? {
            Some(row) => Ok(Some(store::view(self.db.pool(), &row).await?)),
            None => Ok(None),
        }
    }

    pub async fn messages(&self, peer: &PeerId) -> Result<Vec<MessageView>, ChannelError> {
        let row = self.contact(peer).await?;
        Ok(store::messages(
            self.db.pool(),
            &self.storage_key,
            peer,
            &self.me_peer(),
            row.shown_name(),
        )
        .await?)
    }

    /// The safety code to compare with `peer` out of band (both see the same 60 digits when
    /// each holds the other's real keys).
    pub async fn safety_code(&self, peer: &PeerId) -> Result<String, ChannelError> {
        let row = self.contact(peer).await?;
        Ok(crate::safety::contact_code(
            &self.identity.public(),
            &row.card.identity,
        ))
    }

    fn me_peer(&self) -> PeerId {
        crate::identity::peer_id_of(&self.me).expect("our own identity key is valid")
    }

    /// "Delete for me": the message (its id in hex) is no longer shown, counted or found here;
    /// the contact keeps theirs.
    pub async fn delete_message(&self, peer: &PeerId, msg_id: &str) -> Result<(), ChannelError> {
        let id = MsgId::from_hex(msg_id).ok_or(ChannelError::UnknownMessage)?;
        match store::delete_message(self.db.pool(), peer, &id).await? {
            store::Deleted::Deleted => {
                self.emit(ChannelEvent::MessageDeleted { peer: *peer });
                Ok(())
            }
            store::Deleted::NotFound => Err(ChannelError::UnknownMessage),
            store::Deleted::StillSending => Err(ChannelError::StillSending),
        }
    }

    /// The user has seen the conversation: its unread count drops to zero.
    pub async fn mark_read(&self, peer: &PeerId) -> Result<(), ChannelError> {
        store::mark_read(self.db.pool(), peer).await?;
        self.emit(ChannelEvent::Read { peer: *peer });
        Ok(())
    }

    pub async fn set_blocked(&self, peer: &PeerId, blocked: bool) -> Result<(), ChannelError> {
        if !store::set_blocked(self.db.pool(), peer, blocked).await? {
            return Err(ChannelError::UnknownContact(peer.to_string()));
        }
        self.emit(ChannelEvent::Blocked {
            peer: *peer,
            blocked,
        });
        Ok(())
    }

    /// Drops (or lets through again) group invitations from one contact.
    pub async fn set_invites_blocked(
        &self,
        peer: &PeerId,
        blocked: bool,
    ) -> Result<(), ChannelError> {
        if !store::set_invites_blocked(self.db.pool(), peer, blocked).await? {
            return Err(ChannelError::UnknownContact(peer.to_string()));
        }
        Ok(())
    }

    /// Sets the user's own name for a contact (`""` goes back to the name on their card).
    pub async fn rename(&self, peer: &PeerId, name: &str) -> Result<ContactView, ChannelError> {
        let name = name.trim();
        let petname = if name.is_empty() {
            None
        } else {
            crate::contacts::card::check_display_name(name)?;
            Some(name)
        };
        if !store::set_petname(self.db.pool(), peer, petname).await? {
            return Err(ChannelError::UnknownContact(peer.to_string()));
        }
        let row = self.contact(peer).await?;
        Ok(store::view(self.db.pool(), &row).await?)
    }

    /// The user saw that a contact's encryption key changed.
    pub async fn acknowledge_key_change(&self, peer: &PeerId) -> Result<ContactView, ChannelError> {
        if !store::acknowledge_key_change(self.db.pool(), peer).await? {
            return Err(ChannelError::UnknownContact(peer.to_string()));
        }
        let row = self.contact(peer).await?;
        Ok(store::view(self.db.pool(), &row).await?)
    }

    /// Every contact's shown name by identity key (how groups name people who are contacts).
    pub async fn names(
        &self,
    ) -> Result<std::collections::BTreeMap<[u8; 32], String>, ChannelError> {
        Ok(store::contacts(self.db.pool())
            .await?
            .into_iter()
            .map(|r| (r.card.identity.ed25519, r.shown_name().to_string()))
            .collect())
    }

    /// The contact, if it is trusted and not blocked: the only people groups deal with.
    pub async fn trusted_contact(&self, peer: &PeerId) -> Result<ContactRow, ChannelError> {
        let row = self.contact(peer).await?;
        if row.blocked {
            return Err(ChannelError::Blocked(row.shown_name().to_string()));
        }
        if row.trusted_at.is_none() {
            return Err(ChannelError::NotTrusted(row.shown_name().to_string()));
        }
        Ok(row)
    }

    /// Sends a signed group control message to a trusted contact through the pairwise channel
    /// (committed to our bucket, then direct or nudge, like a chat message).
    pub async fn send_group(
        self: &Arc<Self>,
        peer: &PeerId,
        control: Vec<u8>,
    ) -> Result<(), ChannelError> {
        self.trusted_contact(peer).await?;
        self.send(peer, Payload::Group { control }).await?;
        Ok(())
    }

    /// Sends a chat message to a trusted contact.
    pub async fn send_chat(
        self: &Arc<Self>,
        peer: &PeerId,
        body: &str,
    ) -> Result<MessageView, ChannelError> {
        self.send_reply(peer, body, None).await
    }

    /// Sends a chat message to a trusted contact, answering `reply_to` (a message of this
    /// conversation) if given.
    pub async fn send_reply(
        self: &Arc<Self>,
        peer: &PeerId,
        body: &str,
        reply_to: Option<&ReplyTarget>,
    ) -> Result<MessageView, ChannelError> {
        if body.trim().is_empty() {
            return Err(ChannelError::EmptyMessage);
        }
        let row = self.contact(peer).await?;
        if row.blocked {
            return Err(ChannelError::Blocked(row.shown_name().to_string()));
        }
        if row.trusted_at.is_none() {
            return Err(ChannelError::NotTrusted(row.shown_name().to_string()));
        }
        // Only a message of this conversation that we hold can be answered; its author is one
        // of the two of us.
        let reply = match reply_to {
            None => None,
            Some(t) => {
                let msg_id = MsgId::from_hex(&t.msg_id).ok_or(ChannelError::UnknownMessage)?;
                let author: PeerId = t
                    .author_peer_id
                    .parse()
                    .map_err(|_| ChannelError::UnknownMessage)?;
                let outgoing = if author == self.me_peer() {
                    true
                } else if author == *peer {
                    false
                } else {
                    return Err(ChannelError::UnknownMessage);
                };
                let quoted =
                    store::quotable(self.db.pool(), &self.storage_key, peer, outgoing, &msg_id)
                        .await?
                        .ok_or(ChannelError::UnknownMessage)?;
                let author = if outgoing {
                    self.me
                } else {
                    row.card.identity.ed25519
                };
                Some(ReplyRef {
                    author,
                    msg_id,
                    digest: crate::reply::digest(&quoted),
                })
            }
        };
        let msg_id = self.send(peer, Payload::text_message(body, reply)).await?;
        let id_hex = msg_id.to_hex();
        self.messages(peer)
            .await?
            .into_iter()
            .find(|m| m.msg_id == id_hex)
            .ok_or_else(|| ChannelError::Database(DbError::Query("sent message vanished".into())))
    }

    /// Commits an envelope locally, writes our bucket, then tries direct delivery.
    async fn send(
        self: &Arc<Self>,
        peer: &PeerId,
        payload: Payload,
    ) -> Result<MsgId, ChannelError> {
        let row = self.contact(peer).await?;
        let keys = self.keys(&row.card);
        let msg_id = envelope::new_msg_id();
        let sent_at = now_ms();
        // Read before the lock: a DHT read must not hold up everything else.
        let own_sent = if row.out_seq_known {
            None
        } else {
            Some(self.own_sent(&row, &keys).await?)
        };
        let sealed = {
            let _guard = self.write.lock().await;
            let mut tx = self
                .db
                .write_tx()
                .await
                .map_err(|e| DbError::Query(e.to_string()))?;
            if let Some(own) = &own_sent {
                // What we wrote from the other installation (after the backup, or ever, for a
                // phrase restore) joins the history, as stored: it is in the bucket.
                for (header, payload) in own.iter().filter(|(h, _)| h.seq > row.out_seq) {
                    if let Some((body, reply_to)) = payload.text() {
                        store::insert_message(
                            &mut tx,
                            &self.storage_key,
                            peer,
                            &header.msg_id,
                            true,
                            header.seq,
                            header.sent_at,
                            body,
                            reply_to.and_then(ReplyRef::stored).as_ref(),
                            MessageState::Stored,
                        )
                        .await?;
                    }
                }
                let highest = own.iter().map(|(h, _)| h.seq).max().unwrap_or(0);
                store::raise_out_seq(&mut tx, peer, highest).await?;
            }
            let seq = store::next_out_seq(&mut tx, peer).await?;
            let sealed = envelope::seal(
                &self.identity,
                &row.card.identity.ed25519,
                &keys.outgoing,
                seq,
                msg_id,
                sent_at,
                &payload,
            )?;
            store::push_outbox(&mut tx, peer, seq, &sealed).await?;
            if let Some((body, reply_to)) = payload.text() {
                store::insert_message(
                    &mut tx,
                    &self.storage_key,
                    peer,
                    &msg_id,
                    true,
                    seq,
                    sent_at,
                    body,
                    reply_to.and_then(ReplyRef::stored).as_ref(),
                    MessageState::Pending,
                )
                .await?;
            }
            tx.commit()
                .await
                .map_err(|e| DbError::Query(e.to_string()))?;
            sealed
        };
        self.schedule_publish(peer).await;
        // Connected: hand it over directly. Not connected: a dial to an offline peer can take
        // seconds (QUIC waits for its handshake timeout), so only nudge; if the peer is online
        // it fetches the bucket, which already holds the envelope. Either way in the background:
        // the caller (maybe the group service, holding its lock) never waits on the network.
        if self.client.is_connected(*peer).await.unwrap_or(false) {
            let mut direct = vec![TAG_ENVELOPE];
            direct.extend_from_slice(&sealed);
            let (this, peer) = (self.clone(), *peer);
            tokio::spawn(async move {
                match this.client.send_direct(peer, direct).await {
                    Ok(_) => this.advance(&peer, &[msg_id], MessageState::Sent).await,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "direct delivery failed; the bucket has it")
                    }
                }
            });
        } else {
            self.nudge(peer).await;
        }
        Ok(msg_id)
    }

    /// What we ever sent `row`'s contact, as our bucket for them in the DHT holds it. Asked
    /// once per contact, before the first send: this identity may have written to them from
    /// another installation (a restore from the recovery phrase or an older backup), and their
    /// inbox drops every seq it has seen, so our numbering goes on above the highest found.
    /// Only envelopes we signed count: the contact can write this record too. Nonces are random,
    /// so no key and nonce pair repeats either way.
    async fn own_sent(
        &self,
        row: &ContactRow,
        keys: &PairwiseKeys,
    ) -> Result<Vec<(envelope::Header, Payload)>, ChannelError> {
        let record_key = keys.outgoing.bucket_record_key();
        let current: record::ReadBack<BucketContent> =
            record::read_own(&self.client, &record_key, self.config.max_record_bytes).await?;
        let mine = self.identity.public();
        let own: Vec<_> = current
            .content
            .envelopes
            .iter()
            .filter_map(|e| {
                envelope::open(e, &row.card.identity.ed25519, &mine, &keys.outgoing).ok()
            })
            .collect();
        if let Some(highest) = own.iter().map(|(h, _)| h.seq).max() {
            tracing::info!(peer = %row.peer_id, highest, "continuing our numbering above what our bucket holds");
        }
        Ok(own)
    }

    /// Writes our bucket for `peer` in the background, coalesced ([`Writes`]): a burst of
    /// messages costs a few DHT writes, not one each, and senders never wait on the DHT.
    async fn schedule_publish(self: &Arc<Self>, peer: &PeerId) {
        let (this, peer) = (self.clone(), *peer);
        self.publishing
            .schedule(peer, Duration::ZERO, move || {
                let this = this.clone();
                async move { this.write_bucket(peer).await }
            })
            .await;
    }

    /// One write of our bucket for `peer`, then its messages marked stored. Returns whether it
    /// was written (a failed one is retried soon, see [`Writes`]).
    async fn write_bucket(&self, peer: PeerId) -> bool {
        let Ok(row) = self.contact(&peer).await else {
            return true; // no longer a contact: nothing to write
        };
        let upto = row.out_seq;
        if let Err(e) = self.publish_bucket(&row).await {
            tracing::warn!(%peer, error = %e, "bucket not written; trying again shortly");
            return false;
        }
        match store::mark_stored_up_to(self.db.pool(), &peer, upto).await {
            Ok(ids) => {
                self.emit(ChannelEvent::BucketWritten { peer, seq: upto });
                for msg_id in ids {
                    self.emit(ChannelEvent::MessageState {
                        peer,
                        msg_id,
                        state: MessageState::Stored,
                    });
                }
            }
            Err(e) => tracing::warn!(%peer, error = %e, "cannot record stored messages"),
        }
        true
    }

    /// Tells `peer` to read our bucket now, at most once per [`NUDGE_DEBOUNCE`].
    async fn nudge(&self, peer: &PeerId) {
        if !self
            .nudged
            .lock()
            .await
            .allow(*peer, std::time::Instant::now())
        {
            return;
        }
        let (client, peer) = (self.client.clone(), *peer);
        tokio::spawn(async move {
            if let Err(e) = client.send_direct(peer, vec![TAG_NUDGE]).await {
                tracing::debug!(%peer, error = %e, "nudge not delivered; the contact will poll");
            }
        });
    }

    async fn advance(&self, peer: &PeerId, ids: &[MsgId], state: MessageState) {
        let result = match self.db.pool().acquire().await {
            Ok(mut conn) => store::advance_state(&mut conn, peer, ids, state).await,
            Err(e) => Err(DbError::Query(e.to_string())),
        };
        match result {
            Ok(n) if n > 0 => {
                for id in ids {
                    self.emit(ChannelEvent::MessageState {
                        peer: *peer,
                        msg_id: *id,
                        state,
                    });
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(%peer, error = %e, "cannot update message state"),
        }
    }

    /// Re-reads our bucket for `peer` from the DHT, merges our outbox into it and writes it back
    /// with a higher version.
    async fn publish_bucket(&self, row: &ContactRow) -> Result<(), ChannelError> {
        let peer = &row.peer_id;
        let keys = self.keys(&row.card);
        let record_key = keys.outgoing.bucket_record_key();
        let current: record::ReadBack<BucketContent> =
            record::read_own(&self.client, &record_key, self.config.max_record_bytes).await?;
        let outbox = store::outbox(self.db.pool(), peer, self.config.bucket_cap).await?;
        let merged = bucket::merge(
            &current.content.envelopes,
            &outbox,
            self.limits(),
            &keys.outgoing,
        );
        // The other contact can derive this bucket's key too: what we read back is untrusted.
        let version = record::next_version(current.version, row.bucket_version)?;
        record::write(
            &self.client,
            &keys.outgoing.bucket_key,
            &record_key,
            version,
            BucketContent { envelopes: merged }.encode(),
        )
        .await?;
        store::set_bucket_version(self.db.pool(), peer, version).await?;
        Ok(())
    }

    /// Reads `peer`'s bucket for us and processes what is new. Failures are logged: the next
    /// poll tries again.
    pub async fn poll(self: &Arc<Self>, peer: &PeerId) {
        // Blocked contacts are read too: their envelopes are authenticated and discarded (see
        // `apply`), so nothing sent while blocked shows up after an unblock.
        let Ok(row) = self.contact(peer).await else {
            return;
        };
        let keys = self.keys(&row.card);
        let key =
            RecordKey::for_public_key(RecordKind::PairwiseBucket, &keys.incoming.bucket_public());
        let Some(content) =
            record::read::<BucketContent>(&self.client, &key, self.config.max_record_bytes).await
        else {
            return;
        };
        // Open everything above the cursor first: only authentic envelopes may move the cursor.
        let mut opened = Vec::new();
        for (seq, env) in bucket::read_after(&content, row.inbox.cursor, &keys.incoming).envelopes {
            match envelope::open(&env, &self.me, &row.card.identity, &keys.incoming) {
                Ok((header, payload)) if header.seq == seq => opened.push((header, payload)),
                Ok(_) => tracing::warn!(%peer, "bucket entry seq does not match its header"),
                Err(e) => tracing::warn!(%peer, reason = %e, "dropped a bucket envelope"),
            }
        }
        if let Some((first, _)) = opened.first() {
            if first.seq > row.inbox.cursor + 1 {
                let _guard = self.write.lock().await;
                if let Ok(Some(mut fresh)) = store::contact(self.db.pool(), peer).await {
                    let missed = fresh.inbox.evicted_below(first.seq);
                    if let Ok(mut tx) = self.db.write_tx().await {
                        if store::save_inbox(&mut tx, peer, &fresh.inbox).await.is_ok()
                            && tx.commit().await.is_ok()
                            && missed > 0
                        {
                            tracing::info!(%peer, missed, "messages were evicted before we could read them");
                            self.emit(ChannelEvent::Missed {
                                peer: *peer,
                                count: missed,
                            });
                        }
                    }
                }
            }
        }
        let mut receipts = Vec::new();
        for (header, payload) in opened {
            match self.apply(peer, header, payload, false).await {
                Ok(Some(id)) => receipts.push(id),
                Ok(None) => {}
                Err(e) => tracing::debug!(%peer, reason = %e, "bucket envelope not applied"),
            }
        }
        if !receipts.is_empty() {
            self.acknowledge(peer, receipts).await;
        }
    }

    /// Reads every contact's bucket, in parallel (each read is a DHT query).
    pub async fn poll_all(self: &Arc<Self>) {
        if let Ok(rows) = store::contacts(self.db.pool()).await {
            futures::future::join_all(rows.iter().map(|row| self.poll(&row.peer_id))).await;
        }
    }

    /// Re-publishes our buckets (PROTOCOL.md §3) so they survive churn and so writes that
    /// failed earlier (no DHT peer reachable) are retried.
    pub async fn republish_all(self: &Arc<Self>) {
        if let Ok(rows) = store::contacts(self.db.pool()).await {
            for row in rows.iter().filter(|r| r.out_seq > 0) {
                self.schedule_publish(&row.peer_id).await;
            }
        }
    }

    /// Handles one direct payload from the network.
    pub async fn handle_direct(self: &Arc<Self>, from: PeerId, payload: &[u8]) {
        match payload.split_first() {
            Some((&TAG_ENVELOPE, env)) => {
                if let Err(reason) = self.receive(&from, env).await {
                    tracing::info!(%from, %reason, "dropped a direct envelope");
                }
            }
            Some((&TAG_NUDGE, [])) => {
                if !self
                    .nudged_by
                    .lock()
                    .await
                    .allow(from, std::time::Instant::now())
                {
                    tracing::debug!(%from, "nudge ignored (debounced)");
                    return;
                }
                // In the background: the dispatcher that called us also carries gossip and
                // direct messages, which must not wait behind a DHT read.
                let this = self.clone();
                tokio::spawn(async move { this.poll(&from).await });
            }
            _ => tracing::info!(%from, "dropped a malformed direct payload"),
        }
    }

    /// Opens and applies one envelope that `from` sent us directly (also what tests feed crafted
    /// envelopes into: the same checks as the network path). The envelope names nobody on the
    /// outside; the connection's authenticated peer says whose key to try, and the sealed header
    /// must then say the same.
    pub async fn receive(self: &Arc<Self>, from: &PeerId, bytes: &[u8]) -> Result<(), DropReason> {
        envelope::outer(bytes)?;
        let peer = *from;
        let row = store::contact(self.db.pool(), &peer)
            .await?
            .ok_or(DropReason::NotAContact)?;
        let keys = self.keys(&row.card);
        let (header, payload) =
            envelope::open(bytes, &self.me, &row.card.identity, &keys.incoming)?;
        if let Some(id) = self.apply(&peer, header, payload, true).await? {
            self.acknowledge(&peer, vec![id]).await;
        }
        Ok(())
    }

    /// Applies an authentic envelope exactly once. Returns the id to acknowledge, if any.
    async fn apply(
        &self,
        peer: &PeerId,
        header: envelope::Header,
        payload: Payload,
        live: bool,
    ) -> Result<Option<MsgId>, DropReason> {
        let mut receipt = None;
        {
            let _guard = self.write.lock().await;
            let mut row = store::contact(self.db.pool(), peer)
                .await?
                .ok_or(DropReason::NotAContact)?;
            if row.inbox.check(header.seq) == Arrival::Duplicate {
                return Err(DropReason::Duplicate);
            }
            let mut tx = self
                .db
                .write_tx()
                .await
                .map_err(|e| DbError::Query(e.to_string()))?;
            if row.blocked {
                // Consumed, never stored: an unblock does not bring it back.
                row.inbox.processed(header.seq);
                store::save_inbox(&mut tx, peer, &row.inbox).await?;
                tx.commit()
                    .await
                    .map_err(|e| DbError::Query(e.to_string()))?;
                return Err(DropReason::Blocked);
            }
            // Events go out only after the commit, so whoever reacts sees the stored state.
            let mut events = Vec::new();
            // Any authentic envelope proves they derived our shared key from our card: it
            // completes the handshake even if the Handshake itself is still on its way.
            if row.trusted_at.is_none() && store::set_trusted(&mut tx, peer, now_ms()).await? {
                events.push(ChannelEvent::ContactTrusted { peer: *peer });
            }
            if let Some((body, reply_to)) = payload.text() {
                store::insert_message(
                    &mut tx,
                    &self.storage_key,
                    peer,
                    &header.msg_id,
                    false,
                    header.seq,
                    header.sent_at,
                    body,
                    reply_to.and_then(ReplyRef::stored).as_ref(),
                    MessageState::Received,
                )
                .await?;
                events.push(ChannelEvent::MessageReceived {
                    peer: *peer,
                    seq: header.seq,
                    live,
                });
                receipt = Some(header.msg_id);
            }
            match &payload {
                Payload::Handshake { .. } | Payload::Chat { .. } | Payload::Reply { .. } => {}
                Payload::Group { control } => {
                    store::push_group_inbox(&mut tx, &self.storage_key, peer, control).await?;
                    events.push(ChannelEvent::GroupControl { peer: *peer });
                }
                Payload::Receipt { delivered } => {
                    store::advance_state(&mut tx, peer, delivered, MessageState::Delivered).await?;
                    events.extend(delivered.iter().map(|id| ChannelEvent::MessageState {
                        peer: *peer,
                        msg_id: *id,
                        state: MessageState::Delivered,
                    }));
                }
            }
            row.inbox.processed(header.seq);
            store::save_inbox(&mut tx, peer, &row.inbox).await?;
            tx.commit()
                .await
                .map_err(|e| DbError::Query(e.to_string()))?;
            for event in events {
                self.emit(event);
            }
        }
        Ok(receipt)
    }

    /// Tells `peer` which of their messages arrived (one envelope per batch).
    async fn acknowledge(self: &Arc<Self>, peer: &PeerId, ids: Vec<MsgId>) {
        for chunk in ids.chunks(envelope::MAX_RECEIPTS) {
            let receipt = Payload::Receipt {
                delivered: chunk.to_vec(),
            };
            if let Err(e) = self.send(peer, receipt).await {
                tracing::debug!(%peer, error = %e, "receipt not sent");
            }
        }
    }

    /// Runs the channel's timers: polls every contact's bucket on start and every
    /// `poll_interval`, and re-publishes our buckets on start and every `republish_interval`.
    /// Inbound direct payloads are handed to [`Channel::handle_direct`] by the app's dispatcher.
    pub async fn run(self: Arc<Self>) {
        let mut poll = tokio::time::interval(self.config.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Fires at once too: on start-up our buckets are re-published (PROTOCOL.md §3).
        let mut republish = tokio::time::interval(self.config.republish_interval);
        republish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = poll.tick() => self.poll_all().await,
                _ = republish.tick() => self.republish_all().await,
            }
        }
    }
}
