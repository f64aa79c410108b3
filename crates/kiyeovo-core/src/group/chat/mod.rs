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
use super::machine::{roster_hash, FlagKind, Group, Status, CLOCK_SKEW_MS};
use super::pages::{self, GroupBucket};
use super::service::{GroupEvent, Groups};
use super::store::{hex, parse_group_id};
use crate::api::{GroupChatView, GroupGapView, GroupMessageView, ReplyTarget};
use crate::debounce::Debounce;
use crate::delivery::bucket::{self, BucketLimits};
use crate::delivery::record;
use crate::delivery::writes::Writes;
use crate::identity::{peer_id_of, Identity};
use crate::keystore::StorageKey;
use crate::node::{Client, NodeError, Verdict};
use crate::records::{RecordKey, RecordKind};
use crate::reply::{self, ReplyRef, StoredRef};
use crate::storage::{Database, DbError};
use crate::time::now_ms;

mod buckets;
mod conversation;
mod epochs;
mod receive;
mod rules;

pub use epochs::topic_for;
use epochs::{epochs_of, gossip_verdict, writable, Epoch};

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
    #[error("that message is not here (it may have been deleted already)")]
    UnknownMessage,
    #[error("that message is still being sent")]
    StillSending,
    #[error(transparent)]
    Envelope(#[from] GroupEnvelopeError),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
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
            ChatError::UnknownMessage => (
                ErrorCode::InvalidInput,
                "Reopen the conversation to see what it holds now.",
            ),
            ChatError::StillSending => (
                ErrorCode::InvalidInput,
                "Delete it once it shows as sent or stored.",
            ),
            ChatError::Node(crate::node::NodeError::Unreachable) => (
                ErrorCode::Network,
                "Not sent: this identity was restored, and Kiyeovo must first read what it sent in this group before. Try again once Settings says it joined the network.",
            ),
            ChatError::Node(_) => (
                ErrorCode::Network,
                "Kiyeovo's network part stopped; restart Kiyeovo, then send again.",
            ),
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
    #[error("the sender was gone from this epoch after seq {boundary} (got {seq})")]
    AfterBoundary { seq: u64, boundary: u64 },
    #[error("already stored")]
    Duplicate,
    #[error(transparent)]
    Database(#[from] DbError),
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
    /// Writes of our buckets, coalesced: one slot per bucket record (the window's, and the one
    /// all established epochs share).
    publishing: Writes<(GroupId, u32)>,
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
            publishing: Writes::default(),
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
        // Every epoch we read; of those, the live ones' topics joined.
        let wanted: HashMap<String, Epoch> = groups
            .iter()
            .flat_map(epochs_of)
            .filter(|e| e.polled)
            .map(|e| (e.topic.clone(), e))
            .collect();
        let joined = |m: &HashMap<String, Epoch>, t: &str| m.get(t).is_some_and(|e| e.live);
        let mut topics = self.topics.lock().await;
        for topic in topics
            .keys()
            .filter(|t| joined(&topics, t) && !joined(&wanted, t))
        {
            let _ = self.client.unsubscribe(topic.clone()).await;
        }
        for topic in wanted
            .keys()
            .filter(|t| joined(&wanted, t) && !joined(&topics, t))
        {
            if let Err(e) = self.client.subscribe(topic.clone()).await {
                tracing::warn!(error = %e, "cannot join a group topic");
            }
        }
        *topics = wanted;
    }

    /// The topic of the group's current epoch (what a member publishes on).
    pub async fn topic(&self, id: &str) -> Option<String> {
        writable(&self.group(id).await.ok()?).map(|e| e.topic)
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
                            tokio::spawn(async move {
                                // What we wrote but could not send before we learned of it
                                // goes out in it.
                                if ep.live {
                                    if let Ok(g) = this.groups.load_group(&ep.group_id).await {
                                        if let Err(e) = this.reseal_unsent(&g).await {
                                            tracing::warn!(group = %ep.gid, error = %e, "unsent messages not sealed again");
                                        }
                                    }
                                }
                                this.poll_epoch(&ep).await
                            });
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
