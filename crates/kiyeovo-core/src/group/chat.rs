//! Group messaging (PROTOCOL.md §5): live over gossipsub, offline through each sender's capped
//! bucket in the DHT, exactly once through per-sender read cursors.
//!
//! **Epochs a member can use.** During the invitation window the creator and the invitees who
//! accepted chat with the temporary key (epoch 0, the notes' trade-off: anyone invited can read
//! the window's messages). Once established, epoch 1 uses the key only acceptors received. A
//! member keeps reading every epoch it holds a key for.
//!
//! **Buckets.** Each member's bucket keys were announced under its own signature — the creator's
//! window key in the invitation, an acceptor's window and epoch-1 keys in its response, relayed
//! unchanged in roster updates and the Welcome — so only that member can write its bucket, in
//! the window as after it.
//!
//! **Sending.** The envelope is committed locally (outbox + message, one transaction), then
//! published on the topic, then written to our bucket in the background (coalesced per epoch, as
//! in the pairwise channel). **Receiving** (gossip or bucket): signature, membership for that
//! epoch, decryption, sequence bound, de-duplication — then message and cursor in one
//! transaction. Gossipsub forwards only what passed (application validation).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use libp2p::PeerId;
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, Mutex};

use super::chat_store::{self as cs, NewMessage};
use super::control::{GroupId, GroupKey, InviteeStatus, MemberKey};
use super::envelope::{self, GroupEnvelopeError, Sealing};
use super::machine::{FlagKind, Group, Status, CLOCK_SKEW_MS};
use super::pages::{self, GroupBucket};
use super::service::{GroupEvent, Groups};
use super::store::{hex, parse_group_id};
use crate::api::{GroupChatView, GroupGapView, GroupMessageView};
use crate::coalesce::Coalescer;
use crate::debounce::Debounce;
use crate::identity::{peer_id_of, Identity};
use crate::keystore::StorageKey;
use crate::node::{Client, NodeError, Verdict};
use crate::pairwise::bucket::{self, BucketContent, BucketLimits};
use crate::pairwise::inbox::Arrival;
use crate::records::{RecordKey, RecordKind, SignedRecord};
use crate::storage::{Database, DbError};
use crate::time::now_ms;

/// First byte of a direct payload asking a member for envelopes we miss ([`Want`]).
pub const TAG_WANT: u8 = 3;
/// First byte of a direct payload carrying one relayed group envelope.
pub const TAG_RELAYED: u8 = 4;
/// Most seqs asked for in one [`Want`].
pub const MAX_WANT: usize = 64;
/// A member may ask us about one sender's holes in one group epoch at most this often: an
/// honest member asks once per poll, an attacker repeating it would have us read the database
/// and send up to [`MAX_WANT`] envelopes each time.
pub const WANT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// "Send me these envelopes of `sender` in this group epoch, if you have them." Travels over
/// the encrypted direct protocol to a member only; the answer is the envelopes themselves
/// (signed by their sender, so the relaying member cannot alter them).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Want {
    pub group_id: GroupId,
    pub epoch: u32,
    pub sender: MemberKey,
    pub seqs: Vec<u64>,
}

/// A sender may run at most this far ahead of what we have: beyond it an envelope is refused
/// (otherwise one message with a huge seq would make us write off everything in between).
pub const MAX_SEQ_AHEAD: u64 = 10_000;

#[derive(Debug, Clone, Copy)]
pub struct ChatConfig {
    pub bucket_cap: usize,
    pub max_record_bytes: usize,
    pub poll_interval: Duration,
    pub republish_interval: Duration,
    /// How long a bucket write waits to gather more messages (a burst costs one write).
    pub bucket_write_delay: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// A new message from someone else was stored.
    Received {
        group_id: GroupId,
        sender: PeerId,
        epoch: u32,
        seq: u64,
        /// Arrived over gossipsub (not from a bucket or a relay).
        live: bool,
    },
    /// Something else changed (our own message's state, a gap, read markers).
    Changed { group_id: GroupId },
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("no such group")]
    UnknownGroup,
    #[error("you cannot write in this group (not a member, or the invitation is not accepted)")]
    NotAMember,
    #[error("the message is empty")]
    Empty,
    #[error(transparent)]
    Envelope(#[from] GroupEnvelopeError),
    #[error(transparent)]
    Database(#[from] DbError),
}

impl ChatError {
    pub fn to_ui(&self) -> crate::api::UiError {
        use crate::api::{ErrorCode, UiError};
        let (code, hint) = match self {
            ChatError::Database(_) => (
                ErrorCode::Database,
                "Check free disk space, then try again.",
            ),
            ChatError::Envelope(_) => (
                ErrorCode::InvalidInput,
                "The message is too long; split it.",
            ),
            ChatError::Empty => (ErrorCode::InvalidInput, "Type a message first."),
            _ => (ErrorCode::InvalidInput, ""),
        };
        UiError {
            code,
            message: self.to_string(),
            hint: hint.into(),
        }
    }
}

/// Why an envelope was not stored (logged; gossip gets the matching verdict).
#[derive(Debug, thiserror::Error)]
pub enum ChatDrop {
    #[error(transparent)]
    Envelope(#[from] GroupEnvelopeError),
    #[error("sender is not a member of this epoch")]
    NotAMember,
    #[error("a window message sent after the window (sent at {sent_at}, window ended {end})")]
    AfterWindow { sent_at: u64, end: u64 },
    #[error("the window is closed: the group is established")]
    WindowClosed,
    #[error("sequence number {seq} is too far beyond {cursor}")]
    BeyondBoundary { seq: u64, cursor: u64 },
    #[error("already stored")]
    Duplicate,
    #[error(transparent)]
    Database(#[from] DbError),
}

/// One key epoch of one group, as this member uses it.
#[derive(Clone)]
struct Epoch {
    group_id: GroupId,
    gid: String,
    epoch: u32,
    key: GroupKey,
    topic: String,
    /// Who may write: identity key → (peer id, name, bucket verifying key).
    senders: BTreeMap<MemberKey, (PeerId, String, [u8; 32])>,
    my_seed: GroupKey,
    roster_hash: [u8; 32],
    /// Whether we subscribe to and poll this epoch. The window (epoch 0) closes at
    /// establishment: afterwards its key only opens what was written in it.
    live: bool,
    /// Envelopes claiming a later `sent_at` are refused (epoch 0: the window's end).
    sent_until: Option<u64>,
    /// No new envelope is taken (the window after establishment): its key only names who
    /// wrote what we already have.
    closed: bool,
}

/// How gossip validation reports a refused message. Reject costs the peer that forwarded it
/// (peer scoring), so it is kept for what no honest peer forwards: bad cryptography or format,
/// a non-member in an established epoch, a window message dated after the window. Refusals that
/// depend on what *we* know yet (a roster update still on its way during the window, a cursor
/// far behind after an absence) are ignored instead.
fn gossip_verdict(ep: &Epoch, reason: &ChatDrop) -> Verdict {
    match reason {
        ChatDrop::NotAMember if ep.epoch == 0 => Verdict::Ignore,
        ChatDrop::BeyondBoundary { .. } | ChatDrop::Duplicate | ChatDrop::Database(_) => {
            Verdict::Ignore
        }
        ChatDrop::Envelope(_)
        | ChatDrop::NotAMember
        | ChatDrop::AfterWindow { .. }
        | ChatDrop::WindowClosed => Verdict::Reject,
    }
}

/// The topic name only members can compute (PROTOCOL.md §5).
pub fn topic_for(group_id: &GroupId, key: &GroupKey) -> String {
    let mut h = Sha256::new();
    h.update(b"kiyeovo/v1/topic");
    h.update(group_id);
    h.update(key.0);
    hex(&h.finalize())
}

fn epochs_of(g: &Group) -> Vec<Epoch> {
    let gid = hex(&g.group_id);
    let mut out = Vec::new();
    let in_window = matches!(g.status, Status::Inviting | Status::Accepted);
    let established = g.status == Status::Active;
    if let (true, Some(my_seed)) = (in_window || established, &g.window_seed) {
        let temp = &g.invite.temp_key;
        // Window messages come from the creator and those who accepted, and nobody else: not
        // from an invitee who rejected or never answered, even though it holds the temporary
        // key (PROTOCOL.md §4.5). Once established, the members *are* those who accepted.
        let accepted = |id: &MemberKey| {
            *id == g.creator
                // We know our own answer before the creator's roster says it back.
                || (*id == g.me && g.my_response.as_ref().is_some_and(|r| r.accept))
                || if established {
                    g.members.iter().any(|m| m.id == *id)
                } else {
                    g.statuses.get(id) == Some(&InviteeStatus::Accepted)
                }
        };
        let mut senders = BTreeMap::new();
        let people = std::iter::once((g.creator, g.invite.creator_name.clone()))
            .chain(g.invite.invitees.iter().map(|p| (p.id, p.name.clone())));
        for (id, name) in people.filter(|(id, _)| accepted(id)) {
            // Every acceptor's window bucket key came with its signed acceptance.
            if let (Some(peer), Some(bucket)) = (peer_id_of(&id), g.window_buckets.get(&id)) {
                senders.insert(id, (peer, name, *bucket));
            }
        }
        out.push(Epoch {
            group_id: g.group_id,
            gid: gid.clone(),
            epoch: 0,
            key: temp.clone(),
            topic: topic_for(&g.group_id, temp),
            senders,
            my_seed: my_seed.clone(),
            // The window's "roster" is the invitation: members shown different ones notice.
            roster_hash: g.list_hash(),
            live: in_window,
            sent_until: Some(g.invite.expires_at.saturating_add(CLOCK_SKEW_MS)),
            closed: established,
        });
    }
    if let (Status::Active, Some(key), Some(seed)) = (g.status, &g.epoch_key, &g.bucket_seed) {
        let senders = g
            .members
            .iter()
            .filter_map(|m| Some((m.id, (peer_id_of(&m.id)?, m.name.clone(), m.bucket_pub))))
            .collect();
        out.push(Epoch {
            group_id: g.group_id,
            gid,
            epoch: g.epoch,
            key: key.clone(),
            topic: topic_for(&g.group_id, key),
            senders,
            my_seed: seed.clone(),
            roster_hash: g.roster_hash(),
            live: true,
            sent_until: None,
            closed: false,
        });
    }
    out
}

/// The epoch a member writes in now, if any: the established epoch, or the window for the
/// creator and acceptors.
fn writable(g: &Group) -> Option<Epoch> {
    let can = match g.status {
        Status::Active => true,
        Status::Inviting => true,
        Status::Accepted => !g.window_over(crate::time::now_ms()),
        _ => false,
    };
    if !can {
        return None;
    }
    epochs_of(g).pop()
}

pub struct GroupChat {
    identity: Arc<Identity>,
    me: MemberKey,
    me_peer: String,
    db: Database,
    storage_key: Arc<StorageKey>,
    client: Client,
    groups: Arc<Groups>,
    config: ChatConfig,
    events: broadcast::Sender<ChatEvent>,
    write: Mutex<()>,
    topics: Mutex<HashMap<String, Epoch>>,
    publishing: Coalescer<(GroupId, u32)>,
    /// Requests for missing envelopes we answered, per (asker, group, epoch, sender).
    wants: Mutex<Debounce<(PeerId, GroupId, u32, MemberKey)>>,
    /// Held while a background polling round runs, so rounds never pile up.
    polling: Mutex<()>,
}

fn tx_err(e: sqlx::Error) -> DbError {
    DbError::Query(e.to_string())
}

impl GroupChat {
    pub fn new(
        identity: Arc<Identity>,
        db: Database,
        storage_key: Arc<StorageKey>,
        client: Client,
        groups: Arc<Groups>,
        config: ChatConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            me: identity.public().ed25519,
            me_peer: identity.peer_id().to_string(),
            identity,
            db,
            storage_key,
            client,
            groups,
            config,
            events: broadcast::channel(1024).0,
            write: Mutex::new(()),
            topics: Mutex::new(HashMap::new()),
            publishing: Coalescer::default(),
            wants: Mutex::new(Debounce::new(WANT_INTERVAL)),
            polling: Mutex::new(()),
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ChatEvent> {
        self.events.subscribe()
    }

    fn emit(&self, event: ChatEvent) {
        let _ = self.events.send(event);
    }

    async fn group(&self, id: &str) -> Result<Group, ChatError> {
        let gid = parse_group_id(id).ok_or(ChatError::UnknownGroup)?;
        self.groups
            .load_group(&gid)
            .await
            .map_err(|_| ChatError::UnknownGroup)
    }

    /// Joins the topics of every epoch we hold a key for and leaves the others.
    pub async fn refresh(&self) {
        let groups = match self.groups.all_groups().await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read groups");
                return;
            }
        };
        let wanted: HashMap<String, Epoch> = groups
            .iter()
            .flat_map(epochs_of)
            .filter(|e| e.live)
            .map(|e| (e.topic.clone(), e))
            .collect();
        let mut topics = self.topics.lock().await;
        for topic in topics.keys().filter(|t| !wanted.contains_key(*t)) {
            let _ = self.client.unsubscribe(topic.clone()).await;
        }
        for topic in wanted.keys().filter(|t| !topics.contains_key(*t)) {
            if let Err(e) = self.client.subscribe(topic.clone()).await {
                tracing::warn!(error = %e, "cannot join a group topic");
            }
        }
        *topics = wanted;
    }

    /// Sends a message to the group.
    pub async fn send(
        self: &Arc<Self>,
        id: &str,
        body: &str,
    ) -> Result<GroupMessageView, ChatError> {
        if body.trim().is_empty() {
            return Err(ChatError::Empty);
        }
        let group = self.group(id).await?;
        let ep = writable(&group).ok_or(ChatError::NotAMember)?;
        let msg_id = super::control::random_id();
        let sent_at = now_ms();
        let (sealed, seq) = {
            let _guard = self.write.lock().await;
            let mut tx = crate::storage::db::write_tx(self.db.pool())
                .await
                .map_err(tx_err)?;
            let seq = cs::next_out_seq(&mut tx, &ep.gid, ep.epoch).await?;
            let sealed = envelope::seal(
                &Sealing {
                    identity: &self.identity,
                    key: &ep.key,
                    group_id: ep.group_id,
                    epoch: ep.epoch,
                    seq,
                    msg_id,
                    sent_at,
                    roster_hash: ep.roster_hash,
                },
                body,
            )?;
            cs::push_outbox(&mut tx, &ep.gid, ep.epoch, seq, &sealed).await?;
            cs::insert_message(
                &mut tx,
                &self.storage_key,
                &NewMessage {
                    group: &ep.gid,
                    epoch: ep.epoch,
                    sender: &self.me_peer,
                    seq,
                    msg_id: &msg_id,
                    sent_at,
                    body,
                    outgoing: true,
                    envelope: &sealed,
                },
            )
            .await?;
            tx.commit().await.map_err(tx_err)?;
            (sealed, seq)
        };
        let published = match self.client.publish(ep.topic.clone(), sealed).await {
            Ok(()) => {
                cs::mark_published(self.db.pool(), &ep.gid, &self.me_peer, &msg_id).await?;
                true
            }
            // Nobody online on the topic: the bucket carries it.
            Err(e) => {
                tracing::debug!(group = %ep.gid, error = %e, "not published live");
                false
            }
        };
        self.schedule_publish(&ep).await;
        self.emit(ChatEvent::Changed {
            group_id: ep.group_id,
        });
        Ok(GroupMessageView {
            msg_id: hex(&msg_id),
            epoch: ep.epoch,
            sender_peer_id: self.me_peer.clone(),
            sender_name: "You".into(),
            outgoing: true,
            body: body.to_string(),
            sent_at,
            seq,
            published,
            stored: false,
            order_uncertain: false,
        })
    }

    /// The conversation, with gaps where they are.
    pub async fn chat(&self, id: &str) -> Result<GroupChatView, ChatError> {
        let group = self.group(id).await?;
        let gid = hex(&group.group_id);
        let contact_names = self.groups.names().await;
        let names: HashMap<String, String> = epochs_of(&group)
            .iter()
            .flat_map(|e| {
                e.senders
                    .values()
                    .map(|(p, n, _)| (p.to_string(), n.clone()))
            })
            .chain(
                std::iter::once((group.creator, group.invite.creator_name.clone()))
                    .chain(group.invite.invitees.iter().map(|p| (p.id, p.name.clone())))
                    .filter_map(|(id, n)| Some((peer_id_of(&id)?.to_string(), n))),
            )
            // Contacts by the user's own name for them, whatever the creator called them.
            .chain(
                contact_names
                    .into_iter()
                    .filter_map(|(id, n)| Some((peer_id_of(&id)?.to_string(), n))),
            )
            .collect();
        let name = |peer: &str| {
            names
                .get(peer)
                .cloned()
                .unwrap_or_else(|| "former member".into())
        };
        let messages =
            super::order::order(cs::messages(self.db.pool(), &self.storage_key, &gid).await?)
                .into_iter()
                .map(|(m, order_uncertain)| GroupMessageView {
                    order_uncertain,
                    msg_id: hex(&m.msg_id),
                    epoch: m.epoch,
                    sender_name: if m.outgoing {
                        "You".into()
                    } else {
                        name(&m.sender)
                    },
                    sender_peer_id: m.sender,
                    outgoing: m.outgoing,
                    body: m.body,
                    sent_at: m.sent_at,
                    seq: m.seq,
                    published: m.published,
                    stored: m.stored,
                })
                .collect();
        let mut gaps: Vec<GroupGapView> = cs::missed(self.db.pool(), &gid)
            .await?
            .into_iter()
            .map(|(sender, epoch, before_seq, count)| GroupGapView {
                sender_name: name(&sender),
                sender_peer_id: sender,
                epoch,
                before_seq,
                count,
                lost: true,
            })
            .collect();
        // Holes above a cursor: seqs we have not got although later ones arrived.
        for (sender, epoch, inbox) in cs::inboxes(self.db.pool(), &gid).await? {
            let mut expected = inbox.cursor + 1;
            for &seq in &inbox.above {
                if seq > expected {
                    gaps.push(GroupGapView {
                        sender_name: name(&sender),
                        sender_peer_id: sender.clone(),
                        epoch,
                        before_seq: seq,
                        count: seq - expected,
                        lost: false,
                    });
                }
                expected = seq + 1;
            }
        }
        let current = writable(&group);
        let bucket_fill = match &current {
            Some(ep) => cs::own(self.db.pool(), &gid, ep.epoch).await?.0,
            None => 0,
        };
        // Members of the current epoch with no open connection: they read our bucket later.
        let mut away_members = Vec::new();
        if let Some(ep) = &current {
            for (k, (peer, name, _)) in &ep.senders {
                if *k != self.me && !self.client.is_connected(*peer).await.unwrap_or(false) {
                    away_members.push(name.clone());
                }
            }
        }
        Ok(GroupChatView {
            messages,
            gaps,
            bucket_fill: bucket_fill.min(self.config.bucket_cap as u64) as u32,
            bucket_cap: self.config.bucket_cap as u32,
            can_send: current.is_some(),
            away_members,
        })
    }

    pub async fn mark_read(&self, id: &str) -> Result<(), ChatError> {
        let group = self.group(id).await?;
        cs::mark_read(self.db.pool(), &hex(&group.group_id)).await?;
        self.groups.touch(&group.group_id);
        Ok(())
    }

    /// Checks and stores one envelope of epoch `ep`. `Ok(true)` if it was new.
    async fn accept(&self, ep: &Epoch, bytes: &[u8], live: bool) -> Result<bool, ChatDrop> {
        let (header, body) = envelope::open(bytes, &ep.group_id, ep.epoch, &ep.key)?;
        let (peer, _, _) = ep.senders.get(&header.sender).ok_or(ChatDrop::NotAMember)?;
        if ep.closed {
            // An acceptor could otherwise still add backdated window messages.
            return Err(ChatDrop::WindowClosed);
        }
        if let Some(end) = ep.sent_until.filter(|end| header.sent_at > *end) {
            return Err(ChatDrop::AfterWindow {
                sent_at: header.sent_at,
                end,
            });
        }
        if header.sender == self.me {
            // Our own envelope coming back (another session of ours, or a relay): already
            // stored when it was sent from here.
            return Err(ChatDrop::Duplicate);
        }
        let sender = peer.to_string();
        {
            let _guard = self.write.lock().await;
            let mut inbox = cs::inbox(self.db.pool(), &ep.gid, ep.epoch, &sender).await?;
            if inbox.check(header.seq) == Arrival::Duplicate {
                return Err(ChatDrop::Duplicate);
            }
            if header.seq > inbox.cursor + MAX_SEQ_AHEAD {
                return Err(ChatDrop::BeyondBoundary {
                    seq: header.seq,
                    cursor: inbox.cursor,
                });
            }
            let mut tx = crate::storage::db::write_tx(self.db.pool())
                .await
                .map_err(tx_err)?;
            cs::insert_message(
                &mut tx,
                &self.storage_key,
                &NewMessage {
                    group: &ep.gid,
                    epoch: ep.epoch,
                    sender: &sender,
                    seq: header.seq,
                    msg_id: &header.msg_id,
                    sent_at: header.sent_at,
                    body: &body,
                    outgoing: false,
                    envelope: bytes,
                },
            )
            .await?;
            inbox.processed(header.seq);
            cs::save_inbox(&mut tx, &ep.gid, ep.epoch, &sender, &inbox).await?;
            tx.commit().await.map_err(tx_err)?;
        }
        if header.roster_hash != ep.roster_hash {
            let kind = if ep.epoch == 0 {
                FlagKind::InvitationListDiffers
            } else {
                FlagKind::RosterDiffers
            };
            self.groups
                .flag_roster(&ep.group_id, header.sender, kind)
                .await;
        }
        self.emit(ChatEvent::Received {
            group_id: ep.group_id,
            sender: *peer,
            epoch: ep.epoch,
            seq: header.seq,
            live,
        });
        Ok(true)
    }

    /// Checks and stores an envelope of group `id` that came from anywhere (a relay by another
    /// member, a file, a test). Same rules as gossip and buckets.
    pub async fn ingest(&self, id: &str, bytes: &[u8]) -> Result<bool, ChatDrop> {
        envelope::outer(bytes)?;
        let group = self
            .group(id)
            .await
            .map_err(|_| ChatDrop::Envelope(GroupEnvelopeError::WrongGroup))?;
        // The epoch is inside the ciphertext: the envelope belongs to the epoch whose key
        // opens it (then `accept` checks that it also says so).
        let ep = epochs_of(&group)
            .into_iter()
            .rev()
            .find(|e| envelope::unseal(bytes, &e.key).is_ok())
            .ok_or(ChatDrop::Envelope(GroupEnvelopeError::Undecryptable))?;
        self.accept(&ep, bytes, false).await
    }

    /// A member asks us for envelopes it misses: answer with those we have, each as its own
    /// direct payload. Only members of that epoch are answered.
    pub async fn handle_want(self: &Arc<Self>, from: PeerId, bytes: &[u8]) {
        let Ok(want) = crate::codec::decode_bounded::<Want>(bytes, 4096) else {
            tracing::info!(%from, "dropped a malformed request for group envelopes");
            return;
        };
        if want.seqs.len() > MAX_WANT {
            tracing::info!(%from, "dropped an oversized request for group envelopes");
            return;
        }
        let ep = self
            .topics
            .lock()
            .await
            .values()
            .find(|e| e.group_id == want.group_id && e.epoch == want.epoch)
            .cloned();
        let Some(ep) = ep else {
            return;
        };
        let is_member = ep.senders.values().any(|(p, _, _)| *p == from);
        let Some((sender, _, _)) = ep.senders.get(&want.sender).filter(|_| is_member) else {
            tracing::info!(%from, group = %ep.gid, "refused a request for group envelopes from a non-member");
            return;
        };
        let allowed = self.wants.lock().await.allow(
            (from, want.group_id, want.epoch, want.sender),
            std::time::Instant::now(),
        );
        if !allowed {
            tracing::info!(%from, group = %ep.gid, "ignored a repeated request for group envelopes (rate limit)");
            return;
        }
        let sender = if want.sender == self.me {
            self.me_peer.clone()
        } else {
            sender.to_string()
        };
        let Ok(found) = cs::envelopes(self.db.pool(), &ep.gid, ep.epoch, &sender, &want.seqs).await
        else {
            return;
        };
        tracing::debug!(%from, group = %ep.gid, asked = want.seqs.len(), found = found.len(), "relaying group envelopes");
        for env in found {
            // The group id travels beside the envelope (which names no group outside its
            // ciphertext), on the direct channel between two members only.
            let mut payload = vec![TAG_RELAYED];
            payload.extend_from_slice(&ep.group_id);
            payload.extend_from_slice(&env);
            let client = self.client.clone();
            tokio::spawn(async move {
                let _ = client.send_direct(from, payload).await;
            });
        }
    }

    /// An envelope relayed by a member (`group id ‖ envelope`): same checks as any other.
    pub async fn handle_relayed(&self, from: PeerId, bytes: &[u8]) {
        let Some((gid, env)) = bytes.split_first_chunk::<16>() else {
            tracing::info!(%from, "dropped a malformed relayed group envelope");
            return;
        };
        match self.ingest(&hex(gid), env).await {
            Ok(_) | Err(ChatDrop::Duplicate) => {}
            Err(reason) => tracing::info!(%from, %reason, "dropped a relayed group envelope"),
        }
    }

    /// For every hole in a sender's seqs (later ones arrived, these did not), asks up to two
    /// connected members for the missing envelopes.
    async fn ask_for_missing(&self) {
        let epochs: Vec<Epoch> = self.topics.lock().await.values().cloned().collect();
        for ep in epochs {
            let Ok(inboxes) = cs::inboxes(self.db.pool(), &ep.gid).await else {
                continue;
            };
            for (sender_text, epoch, inbox) in
                inboxes.into_iter().filter(|(_, e, _)| *e == ep.epoch)
            {
                let missing: Vec<u64> = inbox
                    .above
                    .iter()
                    .next_back()
                    .map(|&top| {
                        (inbox.cursor + 1..top)
                            .filter(|s| !inbox.above.contains(s))
                            .collect()
                    })
                    .unwrap_or_default();
                if missing.is_empty() {
                    continue;
                }
                // The newest holes first: they are the ones other members most likely still have.
                let seqs: Vec<u64> = missing.iter().rev().take(MAX_WANT).copied().collect();
                let Some((sender_key, _)) = ep
                    .senders
                    .iter()
                    .find(|(_, (p, _, _))| p.to_string() == sender_text)
                else {
                    continue;
                };
                let want = Want {
                    group_id: ep.group_id,
                    epoch,
                    sender: *sender_key,
                    seqs,
                };
                let mut payload = vec![TAG_WANT];
                payload.extend_from_slice(&crate::codec::encode(&want));
                let mut asked = 0;
                for (k, (peer, _, _)) in &ep.senders {
                    if asked == 2 || *k == self.me {
                        continue;
                    }
                    if self.client.is_connected(*peer).await.unwrap_or(false) {
                        let (client, peer, payload) = (self.client.clone(), *peer, payload.clone());
                        tokio::spawn(async move {
                            let _ = client.send_direct(peer, payload).await;
                        });
                        asked += 1;
                    }
                }
                if asked > 0 {
                    tracing::debug!(group = %ep.gid, sender = %sender_text, missing = missing.len(), asked, "asked members for missing envelopes");
                }
            }
        }
    }

    /// The topic of the group's current epoch (what a member publishes on).
    pub async fn topic(&self, id: &str) -> Option<String> {
        writable(&self.group(id).await.ok()?).map(|e| e.topic)
    }

    /// A gossip message on one of our topics: validate, store, report the verdict.
    pub async fn handle_gossip(
        &self,
        source: PeerId,
        message_id: Vec<u8>,
        topic: String,
        data: Vec<u8>,
    ) {
        let ep = self.topics.lock().await.get(&topic).cloned();
        let verdict = match ep {
            // The node joined it, we are leaving it: nobody's fault.
            None => Verdict::Ignore,
            Some(ep) => match self.accept(&ep, &data, true).await {
                Ok(_) => Verdict::Accept,
                Err(ChatDrop::Duplicate) => self.duplicate_verdict(&ep, &data).await,
                Err(ChatDrop::Database(e)) => {
                    tracing::warn!(error = %e, "cannot store a group message; the bucket has it");
                    Verdict::Ignore
                }
                Err(reason) => {
                    tracing::info!(group = %ep.gid, from = %source, %reason, "dropped a group message");
                    gossip_verdict(&ep, &reason)
                }
            },
        };
        self.client.validate(message_id, source, verdict).await;
    }

    /// A message we already have: the very bytes we stored are passed on (others may not have
    /// it yet, e.g. when we got it from a bucket first); another copy of the same sender's seq
    /// (re-sealed, other bytes) is not forwarded, and is not the forwarder's fault.
    async fn duplicate_verdict(&self, ep: &Epoch, data: &[u8]) -> Verdict {
        let Ok(inner) = envelope::unseal(data, &ep.key) else {
            return Verdict::Ignore;
        };
        let Some(sender) = peer_id_of(&inner.header.sender) else {
            return Verdict::Ignore;
        };
        let stored = cs::envelopes(
            self.db.pool(),
            &ep.gid,
            ep.epoch,
            &sender.to_string(),
            &[inner.header.seq],
        )
        .await
        .unwrap_or_default();
        if stored.first().is_some_and(|e| e.as_slice() == data) {
            Verdict::Accept
        } else {
            Verdict::Ignore
        }
    }

    /// Reads every other member's bucket of `ep` in parallel and stores what is new.
    async fn poll_epoch(&self, ep: &Epoch) {
        let others: Vec<_> = ep
            .senders
            .iter()
            .filter(|(k, _)| **k != self.me)
            .map(|(_, (peer, _, bucket_pub))| (*peer, *bucket_pub))
            .collect();
        let fetched = join_all(
            others
                .iter()
                .map(|(_, bucket_pub)| self.fetch_bucket(bucket_pub)),
        )
        .await;
        for ((peer, _), main) in others.iter().zip(fetched) {
            let Some(main) = main else {
                continue;
            };
            let mut envelopes = main.envelopes.clone();
            let mut complete = true;
            // Older messages are in pages: read them only if we have not got that far.
            let cursor = cs::inbox(self.db.pool(), &ep.gid, ep.epoch, &peer.to_string())
                .await
                .map(|i| i.cursor)
                .unwrap_or(0);
            if !main.pages.is_empty()
                && main
                    .oldest_seq(|b| envelope::peek(b, &ep.key))
                    .is_some_and(|s| s > cursor + 1)
            {
                let pages = join_all(main.pages.iter().map(|p| self.fetch_bucket(p))).await;
                // A page that could not be read now may hold exactly the messages after our
                // cursor: what we did read is taken, but nothing is written off as evicted (the
                // hole stays "missing": asked of members, read again next round).
                complete = pages.iter().all(Option::is_some);
                for page in pages.into_iter().flatten() {
                    envelopes.extend(page.envelopes);
                }
            }
            self.take_from_bucket(ep, peer, &BucketContent { envelopes }, complete)
                .await;
        }
    }

    /// One bucket record (main or page) by its public key, decoded; `None` if absent or bad.
    async fn fetch_bucket(&self, public: &[u8; 32]) -> Option<GroupBucket> {
        let key = RecordKey::for_public_key(RecordKind::GroupBucket, public);
        match self.client.get_record(key.to_bytes()).await {
            Ok(bytes) => SignedRecord::decode(&bytes, self.config.max_record_bytes)
                .ok()
                .and_then(|r| GroupBucket::decode(&r.payload, self.config.max_record_bytes).ok()),
            Err(NodeError::NotFound) => None,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read a group bucket");
                None
            }
        }
    }

    /// Takes a sender's bucket. Only a `complete` read (every page that was needed arrived) may
    /// count messages before the oldest one as evicted.
    async fn take_from_bucket(
        &self,
        ep: &Epoch,
        peer: &PeerId,
        content: &BucketContent,
        complete: bool,
    ) {
        let sender = peer.to_string();
        let Ok(inbox) = cs::inbox(self.db.pool(), &ep.gid, ep.epoch, &sender).await else {
            return;
        };
        let unread = bucket::read_after_with(content, inbox.cursor, |b| envelope::peek(b, &ep.key));
        // Only authentic envelopes from this sender may move the cursor over a loss.
        let authentic: Vec<(u64, Vec<u8>)> = unread
            .envelopes
            .into_iter()
            .filter(|(_, env)| {
                envelope::open(env, &ep.group_id, ep.epoch, &ep.key)
                    .ok()
                    .and_then(|(h, _)| ep.senders.get(&h.sender).map(|(p, _, _)| p == peer))
                    .unwrap_or(false)
            })
            .collect();
        if let Some((first, _)) = authentic.first().filter(|_| complete) {
            if *first > inbox.cursor + 1 {
                let _guard = self.write.lock().await;
                if let Ok(mut fresh) = cs::inbox(self.db.pool(), &ep.gid, ep.epoch, &sender).await {
                    let before = fresh.missed;
                    fresh.evicted_below(*first);
                    let lost = fresh.missed - before;
                    if let Ok(mut tx) = crate::storage::db::write_tx(self.db.pool()).await {
                        let ok = cs::save_inbox(&mut tx, &ep.gid, ep.epoch, &sender, &fresh)
                            .await
                            .is_ok()
                            && (lost == 0
                                || cs::add_missed(
                                    &mut tx, &ep.gid, ep.epoch, &sender, *first, lost,
                                )
                                .await
                                .is_ok())
                            && tx.commit().await.is_ok();
                        if ok && lost > 0 {
                            tracing::info!(group = %ep.gid, %peer, lost, "messages were evicted before we could read them");
                            self.emit(ChatEvent::Changed {
                                group_id: ep.group_id,
                            });
                        }
                    }
                }
            }
        }
        for (_, env) in authentic {
            match self.accept(ep, &env, false).await {
                Ok(_) | Err(ChatDrop::Duplicate) => {}
                Err(reason) => {
                    tracing::info!(group = %ep.gid, %peer, %reason, "dropped a bucket envelope")
                }
            }
        }
    }

    /// Reads all buckets of every epoch we hold a key for, and keeps connections to members.
    /// One polling round in the background: DHT reads and dials can take seconds, and the loop
    /// must meanwhile join a new epoch's topic at once (or its first live messages are missed).
    /// A round still running when the next is due makes that one a no-op.
    fn spawn_poll_round(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            let Ok(_round) = this.polling.try_lock() else {
                return;
            };
            this.poll_all().await;
        });
    }

    pub async fn poll_all(&self) {
        let epochs: Vec<Epoch> = self.topics.lock().await.values().cloned().collect();
        for ep in &epochs {
            for (k, (peer, _, _)) in &ep.senders {
                if *k != self.me && !self.client.is_connected(*peer).await.unwrap_or(true) {
                    let _ = self.client.connect_peer(*peer).await;
                }
            }
        }
        join_all(epochs.iter().map(|ep| self.poll_epoch(ep))).await;
        self.ask_for_missing().await;
    }

    /// Writes our bucket for `ep` in the background, coalesced (see the pairwise channel).
    async fn schedule_publish(self: &Arc<Self>, ep: &Epoch) {
        let slot = (ep.group_id, ep.epoch);
        if !self.publishing.request(&slot).await {
            return;
        }
        let (this, ep) = (self.clone(), ep.clone());
        tokio::spawn(async move {
            loop {
                // Gather a burst into one write: every write re-signs the whole bucket and
                // every storing node re-validates it.
                tokio::time::sleep(this.config.bucket_write_delay).await;
                match this.publish_bucket(&ep).await {
                    Ok(upto) => {
                        if let Ok(n) = cs::mark_stored_up_to(
                            this.db.pool(),
                            &ep.gid,
                            ep.epoch,
                            &this.me_peer,
                            upto,
                        )
                        .await
                        {
                            if n > 0 {
                                this.emit(ChatEvent::Changed {
                                    group_id: ep.group_id,
                                });
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(group = %ep.gid, error = %e, "group bucket not written; the next re-publish retries")
                    }
                }
                if !this.publishing.again(&slot).await {
                    break;
                }
            }
        });
    }

    /// Re-reads our bucket (main record and pages), merges our outbox in, and writes it back one
    /// version higher: the newest envelopes in the main record, older ones in pages (see
    /// [`super::pages`]). Returns the highest seq now in it.
    async fn publish_bucket(&self, ep: &Epoch) -> Result<u64, NodeError> {
        let signing = ed25519_dalek::SigningKey::from_bytes(&ep.my_seed.0);
        let public = signing.verifying_key().to_bytes();
        let record_key = RecordKey::for_public_key(RecordKind::GroupBucket, &public);
        let (current, version) = match self.client.get_record(record_key.to_bytes()).await {
            Ok(bytes) => match SignedRecord::decode(&bytes, self.config.max_record_bytes) {
                Ok(r) => (
                    GroupBucket::decode(&r.payload, self.config.max_record_bytes)
                        .unwrap_or_default(),
                    r.version,
                ),
                Err(_) => (GroupBucket::default(), 0),
            },
            Err(NodeError::NotFound) => (GroupBucket::default(), 0),
            Err(e) => return Err(e),
        };
        let mut existing = current.envelopes.clone();
        for page in join_all(current.pages.iter().map(|p| self.fetch_bucket(p)))
            .await
            .into_iter()
            .flatten()
        {
            existing.extend(page.envelopes);
        }
        let (upto, stored_version) = cs::own(self.db.pool(), &ep.gid, ep.epoch)
            .await
            .map_err(|e| NodeError::PutFailed(e.to_string()))?;
        let outbox = cs::outbox(self.db.pool(), &ep.gid, ep.epoch, self.config.bucket_cap)
            .await
            .map_err(|e| NodeError::PutFailed(e.to_string()))?;
        let everything = BucketLimits {
            cap: self.config.bucket_cap,
            max_bytes: usize::MAX,
        };
        // Only envelopes that are ours and verify are kept: what we read back is untrusted (a
        // group from before v2 still has window buckets whose key every invitee can derive).
        let merged = bucket::merge_with(&existing, &outbox, everything, |b| {
            envelope::open(b, &ep.group_id, ep.epoch, &ep.key)
                .ok()
                .filter(|(h, _)| h.sender == self.me)
                .map(|(h, _)| (h.seq, h.msg_id))
        });
        // Room in each record for the record envelope and the list of pages.
        let per_record = self
            .config
            .max_record_bytes
            .saturating_sub(1024 + 40 * pages::MAX_PAGES);
        let mut chunks = pages::split(&merged, per_record).into_iter();
        let newest = chunks.next().unwrap_or_default();
        // Checked: the version read back is untrusted (see above).
        let version = version
            .max(stored_version)
            .checked_add(1)
            .ok_or_else(|| NodeError::PutFailed("bucket version exhausted".into()))?;
        let now = now_ms();
        let mut page_keys = Vec::new();
        let mut puts = Vec::new();
        for (n, chunk) in chunks.enumerate() {
            let page_signing = ed25519_dalek::SigningKey::from_bytes(
                &pages::page_seed(&ep.my_seed, n as u32 + 1).0,
            );
            let page_public = page_signing.verifying_key().to_bytes();
            let key = RecordKey::for_public_key(RecordKind::GroupBucket, &page_public);
            let record = SignedRecord::sign(
                &page_signing,
                &key,
                version,
                now,
                GroupBucket {
                    envelopes: chunk,
                    pages: Vec::new(),
                }
                .encode(),
            );
            page_keys.push(page_public);
            puts.push(self.client.put_record(key.to_bytes(), record.encode()));
        }
        // Pages first: a reader who sees the new main record finds its pages.
        for result in join_all(puts).await {
            result?;
        }
        let record = SignedRecord::sign(
            &signing,
            &record_key,
            version,
            now,
            GroupBucket {
                envelopes: newest,
                pages: page_keys,
            }
            .encode(),
        );
        self.client
            .put_record(record_key.to_bytes(), record.encode())
            .await?;
        cs::set_bucket_version(self.db.pool(), &ep.gid, ep.epoch, version)
            .await
            .map_err(|e| NodeError::PutFailed(e.to_string()))?;
        Ok(upto)
    }

    /// Re-publishes every bucket we wrote in (PROTOCOL.md §3).
    pub async fn republish_all(self: &Arc<Self>) {
        let epochs: Vec<Epoch> = self.topics.lock().await.values().cloned().collect();
        let Ok(own) = cs::own_epochs(self.db.pool()).await else {
            return;
        };
        for ep in epochs
            .iter()
            .filter(|e| own.contains(&(e.gid.clone(), e.epoch)))
        {
            self.schedule_publish(ep).await;
        }
    }

    /// Runs the service: topics follow the groups; buckets are read every `poll_interval` and
    /// ours re-published every `republish_interval`.
    pub async fn run(self: Arc<Self>, mut group_events: broadcast::Receiver<GroupEvent>) {
        self.refresh().await;
        let mut poll = tokio::time::interval(self.config.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut republish = tokio::time::interval(self.config.republish_interval);
        republish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = group_events.recv() => match event {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        let before: Vec<String> = self.topics.lock().await.keys().cloned().collect();
                        self.refresh().await;
                        let after: Vec<Epoch> = self.topics.lock().await.values().cloned().collect();
                        // A new epoch (just accepted, just established): catch up at once, in the
                        // background (its topic is already joined).
                        for ep in after.into_iter().filter(|e| !before.contains(&e.topic)) {
                            let this = self.clone();
                            tokio::spawn(async move { this.poll_epoch(&ep).await });
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = poll.tick() => self.spawn_poll_round(),
                _ = republish.tick() => self.republish_all().await,
            }
        }
    }
}
