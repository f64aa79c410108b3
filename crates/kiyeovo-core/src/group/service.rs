//! The group service: runs every group's state machine against the real world — the pairwise
//! channel (transport, exactly-once inbox), SQLite (sealed state), the clock (the invitation
//! window) and the user (create, answer, establish).
//!
//! Every change happens under one lock and in one transaction with whatever caused it (the
//! inbox row is deleted in the transaction that saves the group). Outgoing control messages are
//! handed to the channel *before* the group is saved with them marked sent, so a crash between
//! the two re-sends a message (receivers drop the duplicate by id) rather than losing it.

use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use tokio::sync::{broadcast, Mutex};

use super::control::{
    random_id, Body, GroupId, GroupKey, Invite, InviteeStatus, MemberKey, Person, SignedControl,
};
use super::info::Change;
use super::machine::{FlagKind, Group, GroupError, Role, Status};
use super::membership::ChangeNote;
use super::store::{self as gstore, hex, parse_group_id};
use crate::api::{
    AddRoundView, GroupChangeView, GroupFlagView, GroupMemberView, GroupStatus, GroupView,
    MemberStatus,
};
use crate::config::MAX_MEMBERS;
use crate::contacts::store as cstore;
use crate::identity::{peer_id_of, Identity};
use crate::keystore::StorageKey;
use crate::node::Client;
use crate::pairwise::channel::{Channel, ChannelError, ChannelEvent};
use crate::storage::{seal, Database, DbError};
use crate::time::now_ms;

/// First byte of a direct payload carrying a signed group control message between two members
/// who are not each other's contacts (possible after a hand-over): a Leave, a group-info
/// version, an acknowledgement. Invitations and answers travel only between contacts.
pub const TAG_GROUP_CONTROL: u8 = 5;

/// Setting: drop every group invitation unseen.
pub const SETTING_BLOCK_INVITES: &str = "block_invites";
/// Setting: days between scheduled key rotations of groups we are the admin of (0 = never);
/// unset, [`GroupConfig::rotate_every`] holds.
pub const SETTING_ROTATE_DAYS: &str = "group_rotate_days";
/// The longest rotation period the setting takes.
pub const MAX_ROTATE_DAYS: u32 = 365;
/// How long an unanswered, expired invitation still counts toward a contact's pending limit.
const PENDING_MEMORY_MS: u64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    /// How long invitees have to answer (PROTOCOL.md §6: 6 h).
    pub window: Duration,
    /// How often windows are checked (expiry, establishment).
    pub tick: Duration,
    /// How often unacknowledged invitations, answers and Welcomes are sent again.
    pub resend: Duration,
    /// Establish as soon as every invitee has accepted, without waiting for "Establish now".
    pub auto_establish: bool,
    /// Unanswered invitations one contact may have open with us at once; more are dropped
    /// (a contact running modified code cannot bury the user in invitations).
    pub max_pending_invites_per_contact: usize,
    /// The admin writes a new key this long after the last one (PROTOCOL.md §6: weekly);
    /// zero turns scheduled rotation off.
    pub rotate_every: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(6 * 3600),
            tick: Duration::from_secs(5),
            resend: crate::config::Timing::default().republish,
            auto_establish: false,
            max_pending_invites_per_contact: 3,
            rotate_every: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// A new invitation arrived (for notifications).
    Invited {
        group_id: GroupId,
    },
    Changed {
        group_id: GroupId,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum GroupServiceError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("no such group")]
    UnknownGroup,
    #[error(transparent)]
    Contact(#[from] ChannelError),
    #[error("{0}")]
    Transition(#[from] GroupError),
    #[error(transparent)]
    Database(#[from] DbError),
}

impl GroupServiceError {
    pub fn to_ui(&self) -> crate::api::UiError {
        use crate::api::{ErrorCode, UiError};
        match self {
            GroupServiceError::Contact(e) => e.to_ui(),
            GroupServiceError::Database(_) => UiError {
                code: ErrorCode::Database,
                message: self.to_string(),
                hint: "Check free disk space, then try again.".into(),
            },
            GroupServiceError::Transition(GroupError::AdminMustHandOver) => UiError {
                code: ErrorCode::InvalidInput,
                message: "You are the admin: the group would be left without one.".into(),
                hint: "Make another member the admin first, or end the group for everyone.".into(),
            },
            GroupServiceError::Transition(GroupError::NoMemberKeys) => UiError {
                code: ErrorCode::InvalidInput,
                message: "This group was made with an earlier version of Kiyeovo and cannot get a new key or change its members.".into(),
                hint: "Create a new group with the same people; this one stays readable.".into(),
            },
            GroupServiceError::Transition(GroupError::NotAdmin) => UiError {
                code: ErrorCode::InvalidInput,
                message: "Only the group's admin can change its members or key.".into(),
                hint: "Ask the admin (marked in the member list).".into(),
            },
            GroupServiceError::Transition(GroupError::NotAMember) => UiError {
                code: ErrorCode::InvalidInput,
                message: "That person is not a member of this group (any more).".into(),
                hint: "The member list shows who is in it now.".into(),
            },
            GroupServiceError::Transition(GroupError::RoundOpen) => UiError {
                code: ErrorCode::InvalidInput,
                message: "An invitation to join this group is still open.".into(),
                hint: "Wait until everyone invited has answered or its window ends, then add more.".into(),
            },
            GroupServiceError::Transition(GroupError::TooManyMembers) => UiError {
                code: ErrorCode::InvalidInput,
                message: format!("A group has at most {MAX_MEMBERS} members."),
                hint: "Remove someone first, or pick fewer people.".into(),
            },
            GroupServiceError::Transition(GroupError::AlreadyMember) => UiError {
                code: ErrorCode::InvalidInput,
                message: "Someone you picked is already in the group.".into(),
                hint: "The member list shows who is in it now.".into(),
            },
            GroupServiceError::Transition(GroupError::WindowClosed) => UiError {
                code: ErrorCode::InvalidInput,
                message: "The invitation has expired: its 6-hour window is over.".into(),
                hint: "Ask the creator to invite you again.".into(),
            },
            _ => UiError {
                code: ErrorCode::InvalidInput,
                message: self.to_string(),
                hint: String::new(),
            },
        }
    }
}

/// Why an inbound control message was dropped (logged).
#[derive(Debug, thiserror::Error)]
enum DropReason {
    #[error("stored control message does not open")]
    Unsealable,
    #[error(transparent)]
    Invalid(#[from] super::control::ControlError),
    #[error("signed by someone other than the contact who sent it")]
    NotTheSender,
    #[error("for a group we do not know")]
    UnknownGroup,
    #[error("invitations are blocked")]
    InvitesBlocked,
    #[error("this contact already has {0} unanswered invitations open with us")]
    TooManyPendingInvites(usize),
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error(transparent)]
    Database(#[from] DbError),
}

pub struct Groups {
    pub(super) identity: Arc<Identity>,
    pub(super) me: [u8; 32],
    pub(super) db: Database,
    pub(super) storage_key: Arc<StorageKey>,
    pub(super) channel: Arc<Channel>,
    /// The DHT, for the group-info chain.
    pub(super) client: Client,
    pub(super) config: GroupConfig,
    events: broadcast::Sender<GroupEvent>,
    /// Serialises every group change.
    pub(super) write: Mutex<()>,
}

fn tx_err(e: sqlx::Error) -> DbError {
    DbError::Query(e.to_string())
}

impl Groups {
    pub fn new(
        identity: Arc<Identity>,
        db: Database,
        storage_key: Arc<StorageKey>,
        channel: Arc<Channel>,
        client: Client,
        config: GroupConfig,
    ) -> Arc<Self> {
        let me = identity.public().ed25519;
        Arc::new(Self {
            identity,
            me,
            db,
            storage_key,
            channel,
            client,
            config,
            events: broadcast::channel(256).0,
            write: Mutex::new(()),
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<GroupEvent> {
        self.events.subscribe()
    }

    pub(super) fn emit(&self, event: GroupEvent) {
        let _ = self.events.send(event);
    }

    pub async fn invites_blocked(&self) -> Result<bool, DbError> {
        Ok(self
            .db
            .setting(SETTING_BLOCK_INVITES)
            .await?
            .unwrap_or(false))
    }

    pub async fn set_invites_blocked(&self, blocked: bool) -> Result<(), DbError> {
        self.db.set_setting(SETTING_BLOCK_INVITES, &blocked).await
    }

    /// Days between scheduled rotations, as the user set them (0 = never).
    pub async fn set_rotate_days(&self, days: u32) -> Result<(), DbError> {
        self.db
            .set_setting(SETTING_ROTATE_DAYS, &days.min(MAX_ROTATE_DAYS))
            .await
    }

    /// How long after an epoch began its admin writes the next key (ms; 0 = never): the
    /// user's setting, else the configured default.
    pub(super) async fn rotate_every_ms(&self) -> u64 {
        match self.db.setting::<u32>(SETTING_ROTATE_DAYS).await {
            Ok(Some(days)) => u64::from(days) * 24 * 3600 * 1000,
            _ => self.config.rotate_every.as_millis() as u64,
        }
    }

    pub(super) async fn save(&self, group: &Group) -> Result<(), DbError> {
        let mut tx = self.db.write_tx().await.map_err(tx_err)?;
        gstore::save(&mut tx, &self.storage_key, group).await?;
        tx.commit().await.map_err(tx_err)
    }

    pub(super) async fn load(&self, id: &GroupId) -> Result<Group, GroupServiceError> {
        gstore::load(self.db.pool(), &self.storage_key, id)
            .await?
            .ok_or(GroupServiceError::UnknownGroup)
    }

    pub(super) fn parse(id: &str) -> Result<GroupId, GroupServiceError> {
        parse_group_id(id).ok_or(GroupServiceError::UnknownGroup)
    }

    /// Step 1–2: a new group with `invitees` (trusted contacts), invitations sent at once.
    pub async fn create(
        &self,
        name: &str,
        invitees: &[PeerId],
        creator_name: &str,
    ) -> Result<GroupView, GroupServiceError> {
        let name = name.trim();
        crate::contacts::card::check_display_name(name)
            .map_err(|e| GroupServiceError::InvalidInput(format!("Group name: {e}")))?;
        if name.chars().count() > super::control::MAX_GROUP_NAME_CHARS {
            return Err(GroupServiceError::InvalidInput(format!(
                "The group name is longer than {} characters.",
                super::control::MAX_GROUP_NAME_CHARS
            )));
        }
        let mut unique = invitees.to_vec();
        unique.sort();
        unique.dedup();
        if unique.is_empty() {
            return Err(GroupServiceError::InvalidInput(
                "Pick at least one contact to invite.".into(),
            ));
        }
        if unique.len() > MAX_MEMBERS - 1 {
            return Err(GroupServiceError::InvalidInput(format!(
                "A group has at most {MAX_MEMBERS} members: you and {} others.",
                MAX_MEMBERS - 1
            )));
        }
        let mut people = Vec::new();
        for peer in &unique {
            let row = self.channel.trusted_contact(peer).await?;
            people.push(Person {
                id: row.card.identity.ed25519,
                name: row.card.display_name.clone(),
            });
        }
        people.sort_by_key(|p| p.id);
        let creator_name = if creator_name.trim().is_empty() {
            "Kiyeovo user"
        } else {
            creator_name.trim()
        };
        let now = now_ms();
        let admin = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let invite = Invite {
            name: name.to_string(),
            creator_name: creator_name.to_string(),
            created_at: now,
            expires_at: now + self.config.window.as_millis() as u64,
            invitees: people,
            admin_pub: admin.verifying_key().to_bytes(),
            temp_key: GroupKey::random(),
            creator_x25519: self.identity.public().x25519,
            // Filled in by `Group::create` from the bucket seed.
            creator_window_bucket: [0; 32],
        };
        let group = Group::create(self.me, invite, random_id(), GroupKey::random(), now);
        let id = group.group_id;
        {
            let _guard = self.write.lock().await;
            self.save(&group).await?;
            self.flush(group).await?;
        }
        tracing::info!(group = %hex(id), invitees = unique.len(), "group created; invitations sent");
        self.emit(GroupEvent::Changed { group_id: id });
        self.view(&id).await
    }

    /// Step 3: accept or reject an invitation.
    pub async fn respond(&self, id: &str, accept: bool) -> Result<GroupView, GroupServiceError> {
        let id = Self::parse(id)?;
        {
            let _guard = self.write.lock().await;
            let mut group = self.load(&id).await?;
            let result = group.respond(
                accept,
                GroupKey::random(),
                self.identity.public().x25519,
                random_id(),
                now_ms(),
            );
            // Even a refusal can change the state (the window turned out to be over).
            self.save(&group).await?;
            result?;
            self.flush(group).await?;
        }
        tracing::info!(group = %hex(id), accept, "answered an invitation");
        self.emit(GroupEvent::Changed { group_id: id });
        self.view(&id).await
    }

    /// Step 6 on the creator's command (window over, or everyone accepted).
    pub async fn establish(&self, id: &str) -> Result<GroupView, GroupServiceError> {
        let id = Self::parse(id)?;
        {
            let _guard = self.write.lock().await;
            let mut group = self.load(&id).await?;
            group.establish(GroupKey::random(), &mut random_id, now_ms())?;
            self.save(&group).await?;
            self.flush(group).await?;
        }
        tracing::info!(group = %hex(id), "group established");
        self.emit(GroupEvent::Changed { group_id: id });
        self.view(&id).await
    }

    /// Hands the group's unsent control messages to the channel, then saves it with them marked
    /// sent (see the module docs for why in this order). Caller holds the write lock.
    pub(super) async fn flush(&self, mut group: Group) -> Result<(), DbError> {
        let out = group.take_unsent();
        if out.is_empty() {
            return Ok(());
        }
        for o in out {
            self.send(&group, o.to, o.control).await;
        }
        self.save(&group).await
    }

    async fn send(&self, group: &Group, to: [u8; 32], control: super::control::Control) {
        let Some(peer) = peer_id_of(&to) else {
            return;
        };
        let kind = control.body.kind();
        let between_members = matches!(
            control.body,
            Body::Leave { .. } | Body::Info(_) | Body::Ack { .. }
        );
        let bytes = control.sign(&self.identity).encode();
        match self.channel.send_group(&peer, bytes.clone()).await {
            Ok(()) => {}
            // A member we know only from the group: directly, if it is online (what waits for
            // an acknowledgement is sent again; a version is also in the DHT).
            Err(ChannelError::UnknownContact(_) | ChannelError::NotTrusted(_))
                if between_members =>
            {
                let mut payload = vec![TAG_GROUP_CONTROL];
                payload.extend_from_slice(&bytes);
                // In the background: a peer that never answers must not hold our lock.
                let (client, gid) = (self.client.clone(), hex(group.group_id));
                tokio::spawn(async move {
                    if let Err(e) = client.send_direct(peer, payload).await {
                        tracing::debug!(group = %gid, %peer, kind, error = %e, "group message not sent directly yet");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(group = %hex(group.group_id), %peer, kind, error = %e, "group message not sent")
            }
        }
    }

    /// A group control message sent directly by a member who is not our contact
    /// ([`TAG_GROUP_CONTROL`]): only a Leave, a version or an acknowledgement, only signed by
    /// the peer that sent it, only for a group we hold in which it is (or was) a member. Then
    /// it goes through the inbox like one from the pairwise channel.
    pub async fn handle_direct(self: &Arc<Self>, peer: PeerId, bytes: &[u8]) {
        let signed = match SignedControl::decode(bytes) {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(%peer, error = %e, "dropped a direct group message");
                return;
            }
        };
        let member_message = matches!(
            signed.control.body,
            Body::Leave { .. } | Body::Info(_) | Body::Ack { .. }
        );
        if peer_id_of(&signed.signer) != Some(peer) || !member_message {
            tracing::info!(%peer, kind = signed.control.body.kind(), "dropped a direct group message: not a member's to send this way");
            return;
        }
        // A contact uses the pairwise channel (and a blocked one stays blocked here too).
        if !matches!(cstore::contact(self.db.pool(), &peer).await, Ok(None)) {
            tracing::info!(%peer, "dropped a direct group message: from a contact");
            return;
        }
        let Ok(Some(group)) =
            gstore::load(self.db.pool(), &self.storage_key, &signed.control.group_id).await
        else {
            return;
        };
        let member = group
            .epochs
            .iter()
            .any(|e| e.members.iter().any(|m| m.id == signed.signer));
        if !member {
            tracing::info!(%peer, "dropped a direct group message: not a member");
            return;
        }
        let queued = async {
            let mut tx = self.db.write_tx().await.map_err(tx_err)?;
            cstore::push_group_inbox(&mut tx, &self.storage_key, &peer, bytes).await?;
            tx.commit().await.map_err(tx_err)
        }
        .await;
        if let Err(e) = queued {
            tracing::warn!(error = %e, "cannot queue a direct group message");
            return;
        }
        // Not in the network's dispatch loop: it must keep taking what arrives.
        let this = self.clone();
        tokio::spawn(async move { this.process_inbox().await });
    }

    /// Processes every group control message waiting in the inbox (the service does this on
    /// every arrival; calling it too is harmless).
    pub async fn process_inbox(&self) {
        loop {
            let rows = match gstore::inbox(self.db.pool(), 64).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the group inbox");
                    return;
                }
            };
            if rows.is_empty() {
                return;
            }
            for (row_id, peer, sealed) in rows {
                if let Err(reason) = self.process_one(row_id, &peer, &sealed).await {
                    match reason {
                        DropReason::Group(GroupError::Duplicate) => {
                            tracing::debug!(%peer, "duplicate group message")
                        }
                        DropReason::InvitesBlocked => {
                            tracing::info!(%peer, "dropped a group invitation: invitations are blocked")
                        }
                        reason => tracing::info!(%peer, %reason, "dropped a group message"),
                    }
                }
            }
        }
    }

    async fn process_one(&self, row_id: i64, peer: &str, sealed: &[u8]) -> Result<(), DropReason> {
        let _guard = self.write.lock().await;
        let mut tx = self.db.write_tx().await.map_err(tx_err)?;
        // Whatever happens below, the row is consumed in this transaction (once: a concurrent
        // caller of `process_inbox` may have taken it already).
        if !gstore::remove_inbox(&mut tx, row_id).await? {
            return Ok(());
        }
        let outcome = self.decide(&mut tx, peer, sealed).await;
        let (group, event, result) = match outcome {
            Ok((g, e, r)) => (g, e, r),
            Err(reason) => {
                tx.commit().await.map_err(tx_err)?;
                return Err(reason);
            }
        };
        if let Some(g) = &group {
            gstore::save(&mut tx, &self.storage_key, g).await?;
        }
        tx.commit().await.map_err(tx_err)?;
        if let Some(g) = group {
            let id = g.group_id;
            self.flush(g).await?;
            if let Some(event) = event {
                self.emit(event);
            }
            self.emit(GroupEvent::Changed { group_id: id });
        }
        result.map_err(DropReason::Group)
    }

    /// What one inbound message does: the group to save (if it changed), an event, and the
    /// state machine's verdict.
    #[allow(clippy::type_complexity)]
    async fn decide(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        peer_text: &str,
        sealed: &[u8],
    ) -> Result<(Option<Group>, Option<GroupEvent>, Result<(), GroupError>), DropReason> {
        let peer: PeerId = peer_text.parse().map_err(|_| DropReason::NotTheSender)?;
        // May hold a group key (a Welcome): wiped when dropped.
        let raw = zeroize::Zeroizing::new(
            seal::open(&self.storage_key, &cstore::group_inbox_aad(&peer), sealed)
                .map_err(|_| DropReason::Unsealable)?,
        );
        let signed = SignedControl::decode(&raw)?;
        if peer_id_of(&signed.signer) != Some(peer) {
            return Err(DropReason::NotTheSender);
        }
        let now = now_ms();
        let existing = gstore::load(&mut **tx, &self.storage_key, &signed.control.group_id).await?;
        match existing {
            None => self.new_invitation(tx, peer, &signed, None, now).await,
            // Being added back to a group we are out of is an invitation like any other.
            Some(old)
                if matches!(signed.control.body, Body::Add(_))
                    && old.may_rejoin()
                    && old.may_invite_back(&signed.signer)
                    && !old.seen.contains(&signed.control.id) =>
            {
                self.new_invitation(tx, peer, &signed, Some(old), now).await
            }
            Some(mut group) => {
                let before = group.clone();
                if let Body::Info(record) = &signed.control.body {
                    // Anyone may pass a version on: what counts is the admin's signatures in it.
                    let result = self
                        .apply_record(&mut group, record)
                        .map(|_| ())
                        .map_err(GroupError::Chain);
                    if result.is_ok() {
                        self.freeze_departed(&mut group).await?;
                    }
                    let changed = (group != before).then_some(group);
                    return Ok((changed, None, result));
                }
                let result = group.receive(&signed, &raw, &mut random_id, now);
                let changed = (group != before).then_some(group);
                Ok((changed, None, result))
            }
        }
    }

    /// An invitation (the creator's, or an admin's into a running group) from a contact: kept
    /// unless invitations are blocked or this contact has too many open. `old` is our copy of the
    /// group if we were in it once: its history notes carry over.
    #[allow(clippy::type_complexity)]
    async fn new_invitation(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        peer: PeerId,
        signed: &SignedControl,
        old: Option<Group>,
        now: u64,
    ) -> Result<(Option<Group>, Option<GroupEvent>, Result<(), GroupError>), DropReason> {
        if !matches!(signed.control.body, Body::Invite(_) | Body::Add(_)) {
            return Err(DropReason::UnknownGroup);
        }
        let contact = cstore::contact(&mut **tx, &peer).await?;
        let blocked_here = contact.is_none_or(|c| c.invites_blocked || c.blocked);
        let blocked_all: bool = crate::storage::db::read_setting(&mut **tx, SETTING_BLOCK_INVITES)
            .await?
            .unwrap_or(false);
        if blocked_here || blocked_all {
            // Silently: the inviter learns nothing, the user sees nothing.
            return Err(DropReason::InvitesBlocked);
        }
        let mut group = if matches!(signed.control.body, Body::Add(_)) {
            Group::from_add(self.me, signed, random_id(), now)?
        } else {
            Group::from_invite(self.me, signed, random_id(), now)?
        };
        if let Some(old) = old {
            group.keep_previous(old);
        }
        // Unanswered invitations from this contact: open ones, and ones that expired in the
        // last day (an invitation that arrives already expired is shown as such, so it counts
        // too — else a modified client could send those without limit).
        let pending = gstore::all(&mut **tx, &self.storage_key)
            .await?
            .iter()
            .filter(|g| {
                g.inviter() == signed.signer
                    && matches!(g.status, Status::Invited | Status::Expired)
                    && g.invite.expires_at.saturating_add(PENDING_MEMORY_MS) > now
            })
            .count();
        if pending >= self.config.max_pending_invites_per_contact {
            return Err(DropReason::TooManyPendingInvites(pending));
        }
        tracing::info!(group = %hex(group.group_id), %peer, kind = signed.control.body.kind(), "group invitation received");
        let event = GroupEvent::Invited {
            group_id: group.group_id,
        };
        Ok((Some(group), Some(event), Ok(())))
    }

    /// Time-driven steps: invitations expire; the creator establishes when the window is over
    /// (or at once when everyone accepted and auto-establish is on).
    pub async fn tick(&self) {
        let groups = match gstore::all(self.db.pool(), &self.storage_key).await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read groups");
                return;
            }
        };
        let now = now_ms();
        for group in groups {
            let due = group.establishment_due(now)
                || (self.config.auto_establish
                    && group.role == Role::Creator
                    && group.status == Status::Inviting
                    && group.all_accepted());
            if due {
                if let Err(e) = self.establish(&hex(group.group_id)).await {
                    tracing::warn!(group = %hex(group.group_id), error = %e, "could not establish");
                }
                continue;
            }
            if group.role == Role::Invitee && group.window_over(now) {
                let _guard = self.write.lock().await;
                let Ok(mut fresh) = self.load(&group.group_id).await else {
                    continue;
                };
                if fresh.tick(now) {
                    if let Err(e) = self.save(&fresh).await {
                        tracing::warn!(error = %e, "cannot save group");
                    }
                    self.emit(GroupEvent::Changed {
                        group_id: fresh.group_id,
                    });
                }
            }
        }
    }

    /// Sends every group's queued, never-sent control messages.
    async fn flush_all(&self) {
        let Ok(groups) = gstore::all(self.db.pool(), &self.storage_key).await else {
            return;
        };
        for g in groups.iter().filter(|g| g.outbox.iter().any(|o| !o.sent)) {
            let _guard = self.write.lock().await;
            if let Ok(fresh) = self.load(&g.group_id).await {
                if let Err(e) = self.flush(fresh).await {
                    tracing::warn!(error = %e, "cannot save group");
                }
            }
        }
    }

    /// Sends again what still waits for an acknowledgement.
    pub async fn resend_unacked(&self) {
        let Ok(groups) = gstore::all(self.db.pool(), &self.storage_key).await else {
            return;
        };
        for group in groups {
            for o in group.unacked() {
                self.send(&group, o.to, o.control).await;
            }
        }
    }

    pub async fn list(&self) -> Result<Vec<GroupView>, GroupServiceError> {
        let now = now_ms();
        let names = self.channel.names().await?;
        let mut out = Vec::new();
        for g in gstore::all(self.db.pool(), &self.storage_key).await? {
            let mut v = view_of(&g, now, &names);
            v.unread = super::chat_store::unread(self.db.pool(), &v.group_id).await?;
            out.push(v);
        }
        Ok(out)
    }

    pub async fn view(&self, id: &GroupId) -> Result<GroupView, GroupServiceError> {
        let names = self.channel.names().await?;
        let mut v = view_of(&self.load(id).await?, now_ms(), &names);
        v.unread = super::chat_store::unread(self.db.pool(), &v.group_id).await?;
        Ok(v)
    }

    /// The user's own names for people who are contacts.
    pub async fn names(&self) -> Names {
        self.channel.names().await.unwrap_or_default()
    }

    pub async fn get(&self, id: &str) -> Result<GroupView, GroupServiceError> {
        self.view(&Self::parse(id)?).await
    }

    /// The group's current key and epoch (what a member can decrypt with), for messaging.
    pub async fn key(&self, id: &str) -> Result<(u32, GroupKey), GroupServiceError> {
        let group = self.load(&Self::parse(id)?).await?;
        match (&group.status, group.current()) {
            (Status::Active, Some(e)) => Ok((e.epoch, e.key.clone())),
            (Status::Inviting | Status::Accepted, _) if group.joining.is_none() => {
                Ok((0, group.invite.temp_key.clone()))
            }
            _ => Err(GroupServiceError::InvalidInput(
                "You are not a member of this group.".into(),
            )),
        }
    }

    /// Seals `body` as our message number `seq` with the group's current key.
    pub async fn seal(&self, id: &str, seq: u64, body: &str) -> Result<Vec<u8>, GroupServiceError> {
        self.seal_reply(id, seq, body, None).await
    }

    /// [`Self::seal`], answering `reply_to`, whatever it names (what a modified client can send).
    pub async fn seal_reply(
        &self,
        id: &str,
        seq: u64,
        body: &str,
        reply_to: Option<crate::reply::ReplyRef>,
    ) -> Result<Vec<u8>, GroupServiceError> {
        let group = self.load(&Self::parse(id)?).await?;
        let (epoch, key) = self.key(id).await?;
        super::envelope::seal_reply(
            &super::envelope::Sealing {
                identity: &self.identity,
                key: &key,
                group_id: group.group_id,
                epoch,
                seq,
                msg_id: random_id(),
                sent_at: now_ms(),
                roster_hash: group.roster_hash(),
            },
            body,
            reply_to,
        )
        .map_err(|e| GroupServiceError::InvalidInput(e.to_string()))
    }

    /// The full state of one group (for the messaging service).
    pub async fn load_group(&self, id: &GroupId) -> Result<Group, GroupServiceError> {
        self.load(id).await
    }

    pub async fn all_groups(&self) -> Result<Vec<Group>, DbError> {
        gstore::all(self.db.pool(), &self.storage_key).await
    }

    /// A member's envelope carried another roster hash than ours: flag the group, naming them.
    pub async fn flag_roster(&self, id: &GroupId, sender: MemberKey, kind: FlagKind) {
        let _guard = self.write.lock().await;
        let Ok(mut group) = self.load(id).await else {
            return;
        };
        let before = group.flags.len();
        group.flag(Some(sender), kind, now_ms());
        if group.flags.len() == before {
            return;
        }
        tracing::warn!(group = %hex(id), "a member sees another member list");
        if self.save(&group).await.is_ok() {
            self.emit(GroupEvent::Changed { group_id: *id });
        }
    }

    /// The user read flag `index` of group `id` and dismisses it.
    pub async fn dismiss_flag(&self, id: &str, index: u32) -> Result<GroupView, GroupServiceError> {
        let gid = Self::parse(id)?;
        {
            let _guard = self.write.lock().await;
            let mut group = self.load(&gid).await?;
            let flag = group
                .flags
                .get_mut(index as usize)
                .ok_or_else(|| GroupServiceError::InvalidInput("no such flag".into()))?;
            flag.dismissed = true;
            self.save(&group).await?;
        }
        self.emit(GroupEvent::Changed { group_id: gid });
        self.view(&gid).await
    }

    /// Lets the UI know a group's counters changed (messages read or received).
    pub fn touch(&self, id: &GroupId) {
        self.emit(GroupEvent::Changed { group_id: *id });
    }

    /// Every key this member holds for the group, with its epoch: the temporary key once
    /// invited, each epoch key it was given since.
    pub async fn keys_held(&self, id: &str) -> Result<Vec<(u32, GroupKey)>, GroupServiceError> {
        let group = self.load(&Self::parse(id)?).await?;
        let mut keys = vec![(0, group.invite.temp_key.clone())];
        keys.extend(group.epochs.iter().map(|e| (e.epoch, e.key.clone())));
        Ok(keys)
    }

    /// Runs the service: processes arriving control messages, the window timer and re-sends.
    pub async fn run(self: Arc<Self>, mut channel_events: broadcast::Receiver<ChannelEvent>) {
        // Messages that arrived while we were away are in the buckets: read them before the
        // first establishment check, so answers given in time count.
        self.channel.poll_all().await;
        self.process_inbox().await;
        // Anything saved but not sent when the app last stopped (a stop between saving a
        // change and pushing it): sent now.
        self.flush_all().await;
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut resend = tokio::time::interval(self.config.resend);
        resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resend.tick().await;
        loop {
            tokio::select! {
                event = channel_events.recv() => match event {
                    Ok(ChannelEvent::GroupControl { .. }) => self.process_inbox().await,
                    Ok(_) => {}
                    // Missed some events: the inbox table still has every message.
                    Err(broadcast::error::RecvError::Lagged(_)) => self.process_inbox().await,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => self.tick().await,
                _ = resend.tick() => self.resend_unacked().await,
            }
        }
    }
}

fn member_status(s: InviteeStatus) -> MemberStatus {
    match s {
        InviteeStatus::NotDelivered => MemberStatus::NotDelivered,
        InviteeStatus::Delivered => MemberStatus::Delivered,
        InviteeStatus::Accepted => MemberStatus::Accepted,
        InviteeStatus::Rejected => MemberStatus::Rejected,
        InviteeStatus::Expired => MemberStatus::Expired,
    }
}

fn peer_text(key: &[u8; 32]) -> String {
    peer_id_of(key).map(|p| p.to_string()).unwrap_or_default()
}

/// What the UI shows for a group at time `now`.
/// How the user knows people: their own names for contacts, by identity key.
pub type Names = std::collections::BTreeMap<MemberKey, String>;

/// A person as the user sees them: the user's name for a contact (marked a contact), else the
/// name the group's creator gave (marked not a contact), or "you".
fn shown(g: &Group, names: &Names, id: &MemberKey, given: &str) -> (String, bool) {
    if *id == g.me {
        return (given.to_string(), true);
    }
    match names.get(id) {
        Some(n) => (n.clone(), true),
        None => (given.to_string(), false),
    }
}

pub fn view_of(g: &Group, now: u64, names: &Names) -> GroupView {
    let status = match g.status {
        Status::Inviting => GroupStatus::Inviting,
        Status::Invited if g.window_over(now) => GroupStatus::Expired,
        Status::Invited => GroupStatus::Invited,
        Status::Accepted if g.window_over(now) => GroupStatus::WaitingForCreator,
        Status::Accepted => GroupStatus::Accepted,
        Status::Rejected => GroupStatus::Rejected,
        Status::Expired => GroupStatus::Expired,
        Status::Active => GroupStatus::Active,
        Status::Left => GroupStatus::Left,
        Status::Removed => GroupStatus::Removed,
        Status::Disbanded => GroupStatus::Disbanded,
    };
    // Who invited us: the creator, or the admin who invites us into the running group.
    let (creator_name, _) = shown(g, names, &g.inviter(), &g.invite.creator_name);
    let person = |id: &MemberKey, given: &str, status: MemberStatus| {
        let (display_name, is_contact) = shown(g, names, id, given);
        GroupMemberView {
            peer_id: peer_text(id),
            display_name,
            is_contact,
            status,
            is_me: *id == g.me,
        }
    };
    let invitee_status = |statuses: &std::collections::BTreeMap<MemberKey, InviteeStatus>,
                          id: &MemberKey| {
        let mut s = statuses
            .get(id)
            .copied()
            .unwrap_or(InviteeStatus::NotDelivered);
        if *id == g.me && g.role == Role::Invitee && s == InviteeStatus::NotDelivered {
            s = InviteeStatus::Delivered;
        }
        member_status(s)
    };
    let mut members = Vec::new();
    if let Some(j) = &g.joining {
        // Invited into a running group: who is in it, then who else this round invites.
        for p in &j.add.members {
            let status = if p.id == j.admin {
                MemberStatus::Admin
            } else {
                MemberStatus::Member
            };
            members.push(person(&p.id, &p.name, status));
        }
    } else {
        members.push(person(
            &g.creator,
            &g.invite.creator_name,
            MemberStatus::Creator,
        ));
    }
    for p in &g.invite.invitees {
        members.push(person(&p.id, &p.name, invitee_status(&g.statuses, &p.id)));
    }
    let add_round = g.round.as_ref().map(|r| AddRoundView {
        expires_at: r.add.expires_at,
        invitees: r
            .add
            .invitees
            .iter()
            .map(|p| person(&p.id, &p.name, invitee_status(&r.statuses, &p.id)))
            .collect(),
        closed: r.closed,
    });
    let can_add = if g.is_admin() && g.round.is_none() && g.has_member_keys() {
        MAX_MEMBERS.saturating_sub(g.members().len()) as u32
    } else {
        0
    };
    GroupView {
        group_id: hex(g.group_id),
        name: g.invite.name.clone(),
        creator_peer_id: peer_text(&g.inviter()),
        creator_name,
        is_creator: g.role == Role::Creator,
        status,
        created_at: g.invite.created_at,
        expires_at: g.invite.expires_at,
        epoch: g.epoch(),
        members,
        can_respond: g.status == Status::Invited && !g.window_over(now),
        can_establish: g.role == Role::Creator
            && g.status == Status::Inviting
            && (g.window_over(now) || g.all_accepted()),
        list_mismatch: g.flagged(),
        flags: flag_views(g, names),
        unread: 0,
        safety_code: safety_code(g),
        roster: g
            .current()
            .map(|e| {
                e.members
                    .iter()
                    .map(|m| {
                        let (display_name, is_contact) = shown(g, names, &m.id, &m.name);
                        GroupMemberView {
                            peer_id: peer_text(&m.id),
                            display_name,
                            is_contact,
                            status: if m.id == g.admin() {
                                MemberStatus::Admin
                            } else {
                                MemberStatus::Member
                            },
                            is_me: m.id == g.me,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
        is_admin: g.is_admin(),
        changes: g
            .life
            .changes
            .iter()
            .map(|c| GroupChangeView {
                at: c.at,
                epoch: c.epoch,
                text: change_text(g, names, c),
            })
            .collect(),
        add_round,
        can_add,
        joining: g.joining.is_some(),
    }
}

/// A membership change in words, with the names the user knows people by.
fn change_text(g: &Group, names: &Names, c: &ChangeNote) -> String {
    let name = |k: &MemberKey| {
        if *k == g.me {
            return "You".to_string();
        }
        let given = c
            .names
            .iter()
            .find(|(id, _)| id == k)
            .map(|(_, n)| n.clone())
            .or_else(|| {
                g.epochs
                    .iter()
                    .rev()
                    .flat_map(|e| e.members.iter())
                    .find(|m| m.id == *k)
                    .map(|m| m.name.clone())
            })
            .unwrap_or_else(|| "Someone".into());
        shown(g, names, k, &given).0
    };
    let by = name(&c.by);
    match &c.change {
        Change::Rotated => "New group key — the safety code changed".into(),
        Change::Added { who, .. } => {
            let list: Vec<String> = who.iter().map(name).collect();
            format!("{by} added {}", list.join(", "))
        }
        Change::Removed(who) if *who == g.me => format!("{by} removed you from the group"),
        Change::Removed(who) => format!("{by} removed {}", name(who)),
        Change::Left(who) if *who == g.me => "You left the group".into(),
        Change::Left(who) => format!("{} left", name(who)),
        Change::AdminTo(who) if *who == g.me => "You are now the admin".into(),
        Change::AdminTo(who) => format!("{} is now the admin", name(who)),
        Change::Disbanded => format!("{by} ended the group"),
    }
}

fn flag_views(g: &Group, names: &Names) -> Vec<GroupFlagView> {
    let name_of = |id: &MemberKey| {
        let given = if *id == g.creator {
            Some(g.invite.creator_name.clone())
        } else {
            g.invite
                .invitees
                .iter()
                .find(|p| p.id == *id)
                .map(|p| p.name.clone())
        };
        given.map(|n| shown(g, names, id, &n).0)
    };
    g.flags
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.dismissed)
        .map(|(i, f)| {
            let name = f.who.as_ref().and_then(name_of);
            let who = name.clone().unwrap_or_else(|| "Someone".into());
            let what = match f.kind {
                FlagKind::InvitationListDiffers => format!(
                    "{who} was shown a different list of people invited. Compare the safety code with them in person before you trust this group."
                ),
                FlagKind::RosterDiffers => format!(
                    "{who}'s messages say they see a different member list. Compare the safety code with them in person."
                ),
                FlagKind::AcceptedMemberLeftOut => format!(
                    "{who} accepted but was left out when the group was set up. Ask them, and the creator, what happened."
                ),
                FlagKind::ChainFork => format!(
                    "{who}, the admin, wrote two different versions of the group's member list. Members may see different groups: compare the safety code in person."
                ),
            };
            GroupFlagView {
                index: i as u32,
                who_peer_id: f.who.as_ref().map(peer_text),
                who_name: name,
                what,
                at: f.at,
            }
        })
        .collect()
}

/// A 40-digit code from the epoch's roster and key (PROTOCOL.md §5 "compare out of band"): two
/// members with the same code hold the same key for the same member list.
pub fn safety_code(g: &Group) -> Option<String> {
    let key = &g.current().filter(|_| g.status == Status::Active)?.key;
    Some(crate::safety::digits(
        b"kiyeovo/v1/safety-code",
        &[&g.roster_hash(), &key.0],
    ))
}
