//! The types that cross from the backend into the UI. `ts-rs` generates their TypeScript twins
//! into `ui/src/bindings/` whenever the tests run; CI fails if the checked-in copies drift, so the
//! UI can never disagree with the backend about a field.
//!
//! Integers are `u32` on purpose: they map to `number` in TypeScript (a `u64` would be `bigint`).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Everything the status screen shows about the libp2p node, pushed on every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct NodeStatus {
    /// Our libp2p peer id (= identity key).
    pub peer_id: String,
    /// Addresses we listen on, with `/p2p/<peer id>` appended so they can be shared as-is.
    pub listen_addrs: Vec<String>,
    /// Direct addresses others confirmed they reach us at (AutoNAT dial-backs: a public address,
    /// or a home router's address with a forwarded port), with `/p2p/<peer id>`. They come first
    /// in our card: they work from anywhere, unlike LAN addresses.
    pub external_addrs: Vec<String>,
    /// Peer ids we have at least one open connection to.
    pub connected_peers: Vec<String>,
    /// Entries in the Kademlia routing table.
    pub routing_table_size: u32,
    /// DHT records this node holds (its own and those it stores for others).
    pub stored_records: u32,
    pub bootstrap: BootstrapState,
    /// Whether we currently serve DHT records to others.
    pub dht_server: bool,
    /// Things the user should know that did not stop the node (e.g. a port that was taken).
    pub warnings: Vec<String>,
}

/// How joining the network through the bootstrap nodes is going.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
#[ts(export)]
pub enum BootstrapState {
    /// No bootstrap address is configured (LAN-only via mDNS).
    NotConfigured,
    /// Dialing the bootstrap nodes.
    Connecting,
    /// Connected to at least one bootstrap node and the DHT bootstrap query completed.
    Succeeded { peers: u32 },
    /// No bootstrap node could be reached; the node retries on its own.
    Failed { reason: String, retry_in_secs: u32 },
}

/// What the backend is doing, for the top of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Phase {
    /// A new profile: the window offers a new identity or a restore, and nothing is written
    /// until one is chosen.
    FirstRun,
    Starting,
    Running,
    /// Start-up failed; `AppSnapshot::error` says why and what to do.
    Failed,
}

/// Machine-readable error categories, so the UI can pick an icon or an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorCode {
    AlreadyRunning,
    BadProfile,
    DataDir,
    DatabaseCorrupt,
    Database,
    KeyringUnavailable,
    KeyringDenied,
    KeyringCorrupt,
    IdentityMissing,
    IdentityMismatch,
    Network,
    InvalidInput,
}

/// An error as the user sees it: what happened, and what they can do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct UiError {
    pub code: ErrorCode,
    pub message: String,
    pub hint: String,
}

/// The whole state the UI renders, pushed as the `app-snapshot` event on every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AppSnapshot {
    pub profile: String,
    pub phase: Phase,
    pub display_name: String,
    /// Group invitations from everyone are dropped unseen (a setting).
    pub block_invites: bool,
    /// Groups we are the admin of get a new key this many days after the last (0: never).
    pub rotate_days: u32,
    /// The bootstrap addresses in use (from the command line, or the saved setting).
    pub bootstrap: Vec<String>,
    pub node: Option<NodeStatus>,
    pub error: Option<UiError>,
    /// Start-up notices that did not stop the app (e.g. a bootstrap address that does not parse).
    pub warnings: Vec<String>,
    /// Notifications, tray and start-up settings.
    pub desktop: DesktopSettings,
    /// Whether the recovery phrase still has to be written down (a reminder and a badge).
    pub recovery: RecoveryStatus,
}

/// How far a restore from a backup file is (the first-run screen shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum RestoreStep {
    /// Reading the file.
    Reading,
    /// Deriving the key from the passphrase and decrypting (the slow part).
    Unlocking,
    /// Writing the database and bringing it up to this version.
    Writing,
    /// Storing the keys in the system keyring.
    Keys,
}

/// A profile restored from a backup file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RestoredBackup {
    pub peer_id: String,
    /// When the backup was written (ms since the epoch): anything newer comes from the network.
    #[ts(type = "number")]
    pub written_at: u64,
    pub contacts: u32,
    pub groups: u32,
    pub messages: u32,
}

/// Automatic backups: on or off, into which folder, how many kept, and how the last went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AutoBackup {
    pub enabled: bool,
    pub folder: String,
    pub keep: u32,
    /// When the last automatic backup was tried (ms since the epoch).
    #[ts(type = "number | null")]
    pub last_at: Option<u64>,
    /// Why it failed, if it did.
    pub last_error: Option<String>,
}

/// A backup that was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BackupWritten {
    pub path: String,
    #[ts(type = "number")]
    pub bytes: u64,
}

/// Where the recovery phrase stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum RecoveryStatus {
    /// A profile made before recovery phrases: its keys cannot be written as words.
    NoPhrase,
    /// There is a phrase, not yet confirmed written down.
    NotConfirmed,
    /// Three of its words were typed back (or the whole phrase, to restore it).
    Confirmed,
}

/// One word of the recovery phrase typed back: its place (1–24) and the word.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct PhraseAnswer {
    pub position: u8,
    pub word: String,
}

impl std::fmt::Debug for PhraseAnswer {
    /// Never prints the word (a right answer is a word of the phrase).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhraseAnswer")
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl Drop for PhraseAnswer {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.word);
    }
}

/// How the app behaves on the desktop: notifications and start at login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
#[ts(export)]
pub struct DesktopSettings {
    /// No notification pops up at all (the tray still counts invitations and unread messages).
    pub do_not_disturb: bool,
    /// Remind this many minutes before an unanswered invitation expires; 0 turns it off.
    pub expiry_reminder_minutes: u32,
    /// Start Kiyeovo (in the tray) when the user logs in.
    pub autostart: bool,
    /// Groups (hex ids) whose notifications are muted.
    pub muted_groups: Vec<String>,
    /// Contacts (peer ids) whose messages raise no notification. (Added in 0.1 after
    /// `muted_groups`: settings saved before it read as none muted.)
    pub muted_contacts: Vec<String>,
}

impl Default for DesktopSettings {
    fn default() -> Self {
        Self {
            do_not_disturb: false,
            expiry_reminder_minutes: 30,
            autostart: false,
            muted_groups: Vec::new(),
            muted_contacts: Vec::new(),
        }
    }
}

/// What the tray icon shows: the shell renders it as a menu, a tooltip and a badge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TrayModel {
    pub tooltip: String,
    /// Invitations waiting for an answer.
    pub pending_invites: u32,
    /// Unread group messages, over all groups.
    pub unread: u32,
    /// One menu entry per pending invitation, soonest to expire first.
    pub invites: Vec<TrayInvite>,
    /// The menu exactly as the tray shows it.
    pub menu: Vec<TrayMenuEntry>,
}

/// One line of the tray menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum TrayMenuEntry {
    Item {
        /// What the shell does when it is chosen: `open`, `quit`, `invite:<group id>`.
        id: String,
        label: String,
        enabled: bool,
    },
    Separator,
}

/// A pending invitation in the tray menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TrayInvite {
    pub group_id: String,
    /// "Book club — 5 h 12 min left".
    pub label: String,
}

/// A contact as the contact list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ContactView {
    pub peer_id: String,
    /// The user's own name for them (editable), else the name on their card.
    pub display_name: String,
    /// The name on their card, as they chose it.
    pub card_name: String,
    /// Their card came back with another encryption key at this time (ms); trust was reset.
    /// Shown until the user acknowledges it.
    #[ts(type = "number | null")]
    pub key_changed_at: Option<u64>,
    /// When the signed handshake completed (ms since the epoch); `None` while pending.
    #[ts(type = "number | null")]
    pub trusted_at: Option<u64>,
    pub blocked: bool,
    /// Group invitations from this contact are dropped unseen.
    pub invites_blocked: bool,
    pub unread: u32,
    /// Envelopes from this contact that were evicted from their bucket before we read them.
    #[ts(type = "number")]
    pub missed: u64,
}

/// Delivery state of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum MessageState {
    /// Saved locally, not yet in the DHT bucket.
    Pending,
    /// In our offline bucket in the DHT: the contact will get it when they come online.
    Stored,
    /// Handed to the contact's node directly.
    Sent,
    /// The contact confirmed it arrived.
    Delivered,
    /// A message we received.
    Received,
}

/// One 1:1 chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct MessageView {
    /// Hex of the 16-byte message id.
    pub msg_id: String,
    pub outgoing: bool,
    pub body: String,
    #[ts(type = "number")]
    pub sent_at: u64,
    #[ts(type = "number")]
    pub seq: u64,
    pub state: MessageState,
    /// A reply: the message it answers.
    pub reply_to: Option<QuoteView>,
}

/// The message a reply answers, as shown above the reply. The text is the answered message as
/// stored here (never words carried by the reply: see `crate::reply`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct QuoteView {
    pub msg_id: String,
    pub author_peer_id: String,
    pub author_name: String,
    /// We wrote the answered message.
    pub outgoing: bool,
    /// The start of the answered message; `None` when it is not here (not received, deleted
    /// for me, or not a message of this conversation) or `differs`.
    pub body: Option<String>,
    /// Our copy of that message is not the text the replier answered (its author gave them
    /// another one under the same id).
    pub differs: bool,
}

/// The message the user is answering, as the UI names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ReplyTarget {
    pub msg_id: String,
    pub author_peer_id: String,
}

/// Something changed for a contact (trust, a message, a delivery state); the UI re-reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ContactChanged {
    pub peer_id: String,
}

/// Where a group stands, from this member's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum GroupStatus {
    /// We created it; the invitation window is open.
    Inviting,
    /// We were invited and have not answered.
    Invited,
    /// We accepted; the window is still open.
    Accepted,
    /// We accepted, the window is over, the creator has not established the group yet.
    WaitingForCreator,
    Rejected,
    /// We did not answer in time, or the group went ahead without us (or nobody accepted).
    Expired,
    /// Established: we hold the group key.
    Active,
    /// We left; the history stays, read-only.
    Left,
    /// The admin removed us; the history stays, read-only.
    Removed,
    /// The admin ended the group; the history stays, read-only.
    Disbanded,
}

/// One person on the shared roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum MemberStatus {
    Creator,
    /// The invitee's app has not confirmed receiving the invitation yet.
    NotDelivered,
    Delivered,
    Accepted,
    Rejected,
    Expired,
    /// In the current roster of an established group.
    Member,
    /// In the current roster, and its admin.
    Admin,
}

/// A membership change, as the conversation shows it ("Ana removed Dan").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct GroupChangeView {
    #[ts(type = "number")]
    pub at: u64,
    pub epoch: u32,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct GroupMemberView {
    pub peer_id: String,
    /// The user's own name for them if they are a contact, else the name the creator gave.
    pub display_name: String,
    /// `false`: not one of the user's contacts; the name is the creator's word only.
    pub is_contact: bool,
    pub status: MemberStatus,
    pub is_me: bool,
}

/// A sign that members are shown different things (PROTOCOL.md §5 equivocation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct GroupFlagView {
    /// Pass back to dismiss it.
    pub index: u32,
    /// Whom it concerns, if anyone in particular.
    pub who_peer_id: Option<String>,
    pub who_name: Option<String>,
    /// What happened and what to do, in words.
    pub what: String,
    #[ts(type = "number")]
    pub at: u64,
}

/// A group as the group list and the invite card show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct GroupView {
    /// Hex of the 16-byte group id.
    pub group_id: String,
    pub name: String,
    pub creator_peer_id: String,
    pub creator_name: String,
    pub is_creator: bool,
    pub status: GroupStatus,
    #[ts(type = "number")]
    pub created_at: u64,
    /// End of the invitation window (ms since the epoch); the UI counts down to it.
    #[ts(type = "number")]
    pub expires_at: u64,
    /// 0 during the window (temporary key), 1 once established.
    pub epoch: u32,
    /// The creator first, then every invitee with their status.
    pub members: Vec<GroupMemberView>,
    pub can_respond: bool,
    /// Creator only: the window is over, or everyone accepted.
    pub can_establish: bool,
    /// Something is flagged and not dismissed: members may be shown different groups.
    pub list_mismatch: bool,
    /// What was flagged, whom it concerns, in words; dismissed ones are left out.
    pub flags: Vec<GroupFlagView>,
    /// Incoming group messages not yet seen.
    pub unread: u32,
    /// Compare out of band: equal codes mean equal rosters and keys (changes every epoch).
    pub safety_code: Option<String>,
    /// Once established: who holds the current key (for a member who is out, the last roster
    /// it knew), the admin marked.
    pub roster: Vec<GroupMemberView>,
    /// We are the admin: rotate, remove, hand over, disband.
    pub is_admin: bool,
    /// Membership changes, oldest first.
    pub changes: Vec<GroupChangeView>,
    /// Admin: the open add round (who was invited, how each stands, when its window ends).
    pub add_round: Option<AddRoundView>,
    /// Admin: how many more people may be invited now (0 while a round is open or the group
    /// is full).
    pub can_add: u32,
    /// This invitation is into a running group (by its admin): `members` lists who is in it
    /// and who else is invited; there is no window chat.
    pub joining: bool,
}

/// The admin's open add round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AddRoundView {
    #[ts(type = "number")]
    pub expires_at: u64,
    pub invitees: Vec<GroupMemberView>,
    /// The window is over (or everyone answered): the acceptors are being added.
    pub closed: bool,
}

/// One group message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct GroupMessageView {
    pub msg_id: String,
    /// 0 = written during the invitation window with the temporary key.
    pub epoch: u32,
    pub sender_peer_id: String,
    /// From the roster.
    pub sender_name: String,
    pub outgoing: bool,
    pub body: String,
    #[ts(type = "number")]
    pub sent_at: u64,
    #[ts(type = "number")]
    pub seq: u64,
    /// Outgoing: handed to the members online now.
    pub published: bool,
    /// Outgoing: in our offline bucket, for members who are away.
    pub stored: bool,
    /// Shown out of clock order to keep its sender's own order (clocks disagree here).
    pub order_uncertain: bool,
    /// A reply: the message it answers.
    pub reply_to: Option<QuoteView>,
}

/// A hole in a sender's messages, shown where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct GroupGapView {
    pub sender_peer_id: String,
    pub sender_name: String,
    pub epoch: u32,
    /// The gap sits right before this seq of the sender.
    #[ts(type = "number")]
    pub before_seq: u64,
    #[ts(type = "number")]
    pub count: u64,
    /// `true`: evicted from the sender's bucket before we read them (gone). `false`: missing
    /// so far; they may still arrive.
    pub lost: bool,
}

/// A group's conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct GroupChatView {
    /// Ordered by the sender's clock, then per-sender seq.
    pub messages: Vec<GroupMessageView>,
    pub gaps: Vec<GroupGapView>,
    /// Our own messages in our bucket for the current epoch, and its capacity.
    pub bucket_fill: u32,
    pub bucket_cap: u32,
    /// Whether we may write (we hold a key for the current epoch).
    pub can_send: bool,
    /// Members not connected right now: they will read our bucket, which keeps only the newest
    /// `bucket_cap` of our messages.
    pub away_members: Vec<String>,
}

/// Messages of a group changed; the UI re-reads its chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct GroupChatChanged {
    pub group_id: String,
}

/// Something changed in a group; the UI re-reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct GroupChanged {
    pub group_id: String,
}

/// Names of the events the backend emits to the UI.
pub mod events {
    /// Payload: [`super::AppSnapshot`].
    pub const APP_SNAPSHOT: &str = "app-snapshot";
    /// Payload: [`super::ContactChanged`].
    pub const CONTACT_CHANGED: &str = "contact-changed";
    /// Payload: [`super::GroupChanged`].
    pub const GROUP_CHANGED: &str = "group-changed";
    /// Payload: [`super::GroupChatChanged`].
    pub const GROUP_CHAT_CHANGED: &str = "group-chat-changed";
    /// Payload: [`super::ShowConversation`]. A notification or the tray asked to show a
    /// conversation.
    pub const SHOW_CONVERSATION: &str = "show-conversation";
    /// Payload: [`super::RestoreStep`]. How far a restore from a backup file is.
    pub const RESTORE_PROGRESS: &str = "restore-progress";
}

/// Payload of [`events::SHOW_CONVERSATION`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ShowConversation {
    /// `group:<hex id>` or `contact:<peer id>`, as the conversation list names it.
    pub key: String,
}
