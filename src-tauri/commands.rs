//! Tauri commands: thin calls into the service. Errors reach the UI as `UiError` (words + hint).

use kiyeovo_core::api::{
    AppSnapshot, AutoBackup, BackupWritten, ContactView, DesktopSettings, ErrorCode, GroupChatView,
    GroupMessageView, GroupView, MessageView, PhraseAnswer, ReplyTarget, RestoredBackup, TrayModel,
    UiError,
};
use kiyeovo_core::conversations::{ConversationKind, ConversationView};
use kiyeovo_core::search::SearchHit;
use kiyeovo_core::PeerId;
use tauri::State;

use crate::state::{Chosen, ShellState};

fn not_ready() -> UiError {
    UiError {
        code: ErrorCode::InvalidInput,
        message: "Kiyeovo is still starting.".into(),
        hint: "Wait a moment and try again.".into(),
    }
}

/// The current state; afterwards the UI follows `app-snapshot` events.
#[tauri::command]
pub fn get_snapshot(state: State<'_, ShellState>) -> AppSnapshot {
    state.snapshot()
}

/// First run: start with a new identity (and its recovery phrase).
#[tauri::command]
pub fn first_run_new(state: State<'_, ShellState>) -> Result<(), UiError> {
    let first = state.first_run()?;
    let _ = first.go.send(Chosen::New);
    Ok(())
}

/// First run: bring an identity back from its 24 words, then start with it. A refused phrase
/// leaves the first-run screen as it was.
#[tauri::command]
pub async fn restore_from_phrase(
    state: State<'_, ShellState>,
    phrase: String,
) -> Result<(), UiError> {
    let first = state.first_run()?;
    let phrase = zeroize::Zeroizing::new(phrase);
    match kiyeovo_core::restore::from_phrase(&first.profile, first.data_dir.as_deref(), &phrase)
        .await
    {
        Ok(_) => {
            let _ = first.go.send(Chosen::Phrase);
            Ok(())
        }
        Err(e) => {
            state.first_run_again(first);
            Err(e.to_ui())
        }
    }
}

/// First run: bring a whole profile back from a backup file, then start it. The window hears
/// each step (`restore-progress`); a refusal leaves the first-run screen as it was.
#[tauri::command]
pub async fn restore_from_backup(
    app: tauri::AppHandle,
    state: State<'_, ShellState>,
    path: String,
    passphrase: String,
) -> Result<RestoredBackup, UiError> {
    use tauri::Emitter;
    let first = state.first_run()?;
    let passphrase = zeroize::Zeroizing::new(passphrase);
    let restored = kiyeovo_core::restore::from_backup(
        &first.profile,
        first.data_dir.as_deref(),
        std::path::Path::new(path.trim()),
        &passphrase,
        |step| {
            let _ = app.emit(kiyeovo_core::api::events::RESTORE_PROGRESS, step);
        },
    )
    .await;
    match restored {
        Ok(done) => {
            let _ = first.go.send(Chosen::Backup);
            Ok(done)
        }
        Err(e) => {
            state.first_run_again(first);
            Err(e.to_ui())
        }
    }
}

/// The folder backups go to: the last one used, else a "Kiyeovo backups" folder in Documents.
#[tauri::command]
pub async fn backup_folder(state: State<'_, ShellState>) -> Result<String, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    Ok(app.backup_folder().await.display().to_string())
}

/// Writes an encrypted backup of everything into `folder` now.
#[tauri::command]
pub async fn back_up_now(
    state: State<'_, ShellState>,
    folder: String,
    passphrase: String,
) -> Result<BackupWritten, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    let passphrase = zeroize::Zeroizing::new(passphrase);
    app.back_up(std::path::Path::new(folder.trim()), &passphrase)
        .await
        .map(|w| BackupWritten {
            path: w.path.display().to_string(),
            bytes: w.bytes,
        })
        .map_err(|e| e.to_ui())
}

/// The automatic backups' setting.
#[tauri::command]
pub async fn auto_backup(state: State<'_, ShellState>) -> Result<AutoBackup, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    Ok(app.auto_backup().await)
}

/// Turns automatic backups on or off (the passphrase is needed the first time).
#[tauri::command]
pub async fn set_auto_backup(
    state: State<'_, ShellState>,
    enabled: bool,
    folder: String,
    keep: u32,
    passphrase: Option<String>,
) -> Result<AutoBackup, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    let passphrase = passphrase.map(zeroize::Zeroizing::new);
    app.set_auto_backup(
        enabled,
        &folder,
        keep,
        passphrase.as_deref().map(String::as_str),
    )
    .await
    .map_err(|e| e.to_ui())
}

/// The words of the recovery phrase on their way to the window: serialised from the copy that
/// is wiped when dropped (what the window then holds is beyond our reach).
pub struct Words(zeroize::Zeroizing<Vec<String>>);

impl serde::Serialize for Words {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.as_slice().serialize(s)
    }
}

/// The 24 words of our recovery phrase, to be written down.
#[tauri::command]
pub fn recovery_phrase(state: State<'_, ShellState>) -> Result<Words, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.recovery_phrase().map(Words).map_err(|e| e.to_ui())
}

/// Three words of the phrase typed back: right, and the reminder ends.
#[tauri::command]
pub async fn confirm_recovery_phrase(
    state: State<'_, ShellState>,
    answers: Vec<PhraseAnswer>,
) -> Result<(), UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.confirm_recovery_phrase(&answers)
        .await
        .map_err(|e| e.to_ui())
}

/// Sets the name contacts see. Returns the saved (trimmed) name.
#[tauri::command]
pub async fn set_display_name(
    state: State<'_, ShellState>,
    name: String,
) -> Result<String, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.set_display_name(&name).await.map_err(|e| e.to_ui())
}

/// Saves the bootstrap addresses and joins through them now. Returns the saved list.
#[tauri::command]
pub async fn set_bootstrap(
    state: State<'_, ShellState>,
    addrs: Vec<String>,
) -> Result<Vec<String>, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.set_bootstrap(addrs).await.map_err(|e| e.to_ui())
}

fn peer(text: &str) -> Result<PeerId, UiError> {
    text.parse().map_err(|_| UiError {
        code: ErrorCode::InvalidInput,
        message: format!("{text:?} is not a peer id."),
        hint: "Pick the contact from the list.".into(),
    })
}

/// Our contact card (`kiyeovo1…`) to give to others.
#[tauri::command]
pub fn my_card(state: State<'_, ShellState>) -> Result<String, UiError> {
    Ok(state.app().ok_or_else(not_ready)?.my_card())
}

/// Adds a contact from a pasted card and starts the handshake.
#[tauri::command]
pub async fn add_contact(
    state: State<'_, ShellState>,
    card: String,
) -> Result<ContactView, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.channel()
        .add_contact(&card)
        .await
        .map_err(|e| e.to_ui())
}

/// Every contact and group with its newest message (the conversation list).
#[tauri::command]
pub async fn list_conversations(
    state: State<'_, ShellState>,
) -> Result<Vec<ConversationView>, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.conversations().await.map_err(|e| e.to_ui())
}

/// One entry of the conversation list, re-read when an event names it; `null` once gone.
#[tauri::command]
pub async fn conversation(
    state: State<'_, ShellState>,
    kind: ConversationKind,
    id: String,
) -> Result<Option<ConversationView>, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.conversation(kind, &id).await.map_err(|e| e.to_ui())
}

/// Messages in every conversation that contain `query` (case ignored), the newest first.
#[tauri::command]
pub async fn search(
    state: State<'_, ShellState>,
    query: String,
) -> Result<Vec<SearchHit>, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.search(&query).await.map_err(|e| e.to_ui())
}

#[tauri::command]
pub async fn list_contacts(state: State<'_, ShellState>) -> Result<Vec<ContactView>, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.channel().contacts().await.map_err(|e| e.to_ui())
}

#[tauri::command]
pub async fn list_messages(
    state: State<'_, ShellState>,
    peer_id: String,
) -> Result<Vec<MessageView>, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.channel()
        .messages(&peer(&peer_id)?)
        .await
        .map_err(|e| e.to_ui())
}

#[tauri::command]
pub async fn send_message(
    state: State<'_, ShellState>,
    peer_id: String,
    body: String,
    reply_to: Option<ReplyTarget>,
) -> Result<MessageView, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.channel()
        .send_reply(&peer(&peer_id)?, &body, reply_to.as_ref())
        .await
        .map_err(|e| e.to_ui())
}

/// The 20 digits to compare with a contact out of band (in person, on a call).
#[tauri::command]
pub async fn contact_safety_code(
    state: State<'_, ShellState>,
    peer_id: String,
) -> Result<String, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.channel()
        .safety_code(&peer(&peer_id)?)
        .await
        .map_err(|e| e.to_ui())
}

#[tauri::command]
pub async fn set_blocked(
    state: State<'_, ShellState>,
    peer_id: String,
    blocked: bool,
) -> Result<(), UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.channel()
        .set_blocked(&peer(&peer_id)?, blocked)
        .await
        .map_err(|e| e.to_ui())
}

/// The user's own name for a contact (empty: back to the name on their card).
#[tauri::command]
pub async fn rename_contact(
    state: State<'_, ShellState>,
    peer_id: String,
    name: String,
) -> Result<ContactView, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.channel()
        .rename(&peer(&peer_id)?, &name)
        .await
        .map_err(|e| e.to_ui())
}

/// The user saw that a contact's encryption key changed.
#[tauri::command]
pub async fn acknowledge_key_change(
    state: State<'_, ShellState>,
    peer_id: String,
) -> Result<ContactView, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.channel()
        .acknowledge_key_change(&peer(&peer_id)?)
        .await
        .map_err(|e| e.to_ui())
}

/// The conversation with `peer_id` is on screen: clears its unread count.
#[tauri::command]
pub async fn mark_read(state: State<'_, ShellState>, peer_id: String) -> Result<(), UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.channel()
        .mark_read(&peer(&peer_id)?)
        .await
        .map_err(|e| e.to_ui())
}

/// "Delete for me" of one 1:1 message (its id in hex).
#[tauri::command]
pub async fn delete_message(
    state: State<'_, ShellState>,
    peer_id: String,
    msg_id: String,
) -> Result<(), UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.channel()
        .delete_message(&peer(&peer_id)?, &msg_id)
        .await
        .map_err(|e| e.to_ui())
}

/// Our card as a QR code (an SVG document).
#[tauri::command]
pub fn my_card_qr(state: State<'_, ShellState>) -> Result<String, UiError> {
    state
        .app()
        .ok_or_else(not_ready)?
        .my_card_qr()
        .ok_or_else(|| UiError {
            code: ErrorCode::InvalidInput,
            message: "The card is too long for a QR code.".into(),
            hint: "Copy the card as text instead.".into(),
        })
}

/// Saves our card to a file in the Downloads folder; returns the path.
#[tauri::command]
pub async fn save_my_card(state: State<'_, ShellState>) -> Result<String, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.save_my_card(None)
        .await
        .map(|p| p.display().to_string())
        .map_err(|e| e.to_ui())
}

/// Drops group invitations from one contact (or lets them through again).
#[tauri::command]
pub async fn set_invites_blocked(
    state: State<'_, ShellState>,
    peer_id: String,
    blocked: bool,
) -> Result<(), UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.channel()
        .set_invites_blocked(&peer(&peer_id)?, blocked)
        .await
        .map_err(|e| e.to_ui())
}

/// The global "block all group invitations" setting.
/// Days between scheduled key rotations of the groups we are the admin of (0 = never).
#[tauri::command]
pub async fn set_rotate_days(state: State<'_, ShellState>, days: u32) -> Result<(), UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.set_rotate_days(days).await.map_err(|e| e.to_ui())
}

#[tauri::command]
pub async fn set_block_invites(state: State<'_, ShellState>, blocked: bool) -> Result<(), UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.set_block_invites(blocked).await.map_err(|e| e.to_ui())
}

/// Notifications, reminder lead, start at login. Returns what was saved.
#[tauri::command]
pub async fn set_desktop_settings(
    state: State<'_, ShellState>,
    settings: DesktopSettings,
) -> Result<DesktopSettings, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.set_desktop_settings(settings)
        .await
        .map_err(|e| e.to_ui())
}

/// Mutes or unmutes one group's notifications.
#[tauri::command]
pub async fn set_group_muted(
    state: State<'_, ShellState>,
    group_id: String,
    muted: bool,
) -> Result<DesktopSettings, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.set_group_muted(&group_id, muted)
        .await
        .map_err(|e| e.to_ui())
}

/// Mutes or unmutes the notifications of one contact's messages.
#[tauri::command]
pub async fn set_contact_muted(
    state: State<'_, ShellState>,
    peer_id: String,
    muted: bool,
) -> Result<DesktopSettings, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.set_contact_muted(&peer(&peer_id)?, muted)
        .await
        .map_err(|e| e.to_ui())
}

/// What the tray shows now (its menu cannot be read through WebDriver; the E2E suite reads it
/// here).
#[tauri::command]
pub fn tray_model(state: State<'_, ShellState>) -> TrayModel {
    state.tray_model()
}

#[tauri::command]
pub async fn list_groups(state: State<'_, ShellState>) -> Result<Vec<GroupView>, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.groups().list().await.map_err(|e| e.to_ui())
}

/// Every peer id of a list the window sent, or the first refusal.
fn peers(peer_ids: &[String]) -> Result<Vec<PeerId>, UiError> {
    peer_ids.iter().map(|p| peer(p)).collect()
}

/// Creates a group and invites `peer_ids` (trusted contacts).
#[tauri::command]
pub async fn create_group(
    state: State<'_, ShellState>,
    name: String,
    peer_ids: Vec<String>,
) -> Result<GroupView, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    let peers = peers(&peer_ids)?;
    app.groups()
        .create(&name, &peers, &app.display_name())
        .await
        .map_err(|e| e.to_ui())
}

/// Accepts or rejects an invitation.
#[tauri::command]
pub async fn respond_invite(
    state: State<'_, ShellState>,
    group_id: String,
    accept: bool,
) -> Result<GroupView, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.groups()
        .respond(&group_id, accept)
        .await
        .map_err(|e| e.to_ui())
}

/// Creator: establishes the group now (window over, or everyone accepted).
#[tauri::command]
pub async fn establish_group(
    state: State<'_, ShellState>,
    group_id: String,
) -> Result<GroupView, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.groups()
        .establish(&group_id)
        .await
        .map_err(|e| e.to_ui())
}

/// Admin: a membership change from the member panel.
async fn admin_action(
    state: &State<'_, ShellState>,
    group_id: &str,
    action: kiyeovo_core::group::changes::AdminAction,
) -> Result<GroupView, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.groups()
        .admin_action(group_id, action)
        .await
        .map_err(|e| e.to_ui())
}

fn member_peer(peer_id: &str) -> Result<PeerId, UiError> {
    peer_id.parse().map_err(|_| UiError {
        code: kiyeovo_core::api::ErrorCode::InvalidInput,
        message: "That is not a member of this group.".into(),
        hint: "Pick a member from the list.".into(),
    })
}

/// Admin: a new group key now (the safety code changes).
#[tauri::command]
pub async fn rotate_group_key(
    state: State<'_, ShellState>,
    group_id: String,
) -> Result<GroupView, UiError> {
    use kiyeovo_core::group::changes::AdminAction;
    admin_action(&state, &group_id, AdminAction::Rotate).await
}

/// Admin: invites `peer_ids` (trusted contacts) into the running group; those who accept join
/// at the next key when the add window ends or everyone answered.
#[tauri::command]
pub async fn add_group_members(
    state: State<'_, ShellState>,
    group_id: String,
    peer_ids: Vec<String>,
) -> Result<GroupView, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    let peers = peers(&peer_ids)?;
    app.groups()
        .add_members(&group_id, &peers, &app.display_name())
        .await
        .map_err(|e| e.to_ui())
}

/// Admin: removes a member (it keeps what it already read, nothing after).
#[tauri::command]
pub async fn remove_group_member(
    state: State<'_, ShellState>,
    group_id: String,
    peer_id: String,
) -> Result<GroupView, UiError> {
    use kiyeovo_core::group::changes::AdminAction;
    let peer = member_peer(&peer_id)?;
    admin_action(&state, &group_id, AdminAction::Remove(peer)).await
}

/// Admin: makes another member the admin.
#[tauri::command]
pub async fn hand_over_group(
    state: State<'_, ShellState>,
    group_id: String,
    peer_id: String,
) -> Result<GroupView, UiError> {
    use kiyeovo_core::group::changes::AdminAction;
    let peer = member_peer(&peer_id)?;
    admin_action(&state, &group_id, AdminAction::HandOver(peer)).await
}

/// Admin: ends the group for everyone (history stays, read-only).
#[tauri::command]
pub async fn disband_group(
    state: State<'_, ShellState>,
    group_id: String,
) -> Result<GroupView, UiError> {
    use kiyeovo_core::group::changes::AdminAction;
    admin_action(&state, &group_id, AdminAction::Disband).await
}

/// Leaves a group (history stays, read-only).
#[tauri::command]
pub async fn leave_group(
    state: State<'_, ShellState>,
    group_id: String,
) -> Result<GroupView, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.groups().leave(&group_id).await.map_err(|e| e.to_ui())
}

/// The user read a split-view flag of a group and dismisses it.
#[tauri::command]
pub async fn dismiss_group_flag(
    state: State<'_, ShellState>,
    group_id: String,
    index: u32,
) -> Result<GroupView, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.groups()
        .dismiss_flag(&group_id, index)
        .await
        .map_err(|e| e.to_ui())
}

/// A group's conversation with its gaps.
#[tauri::command]
pub async fn group_chat(
    state: State<'_, ShellState>,
    group_id: String,
) -> Result<GroupChatView, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.chat().chat(&group_id).await.map_err(|e| e.to_ui())
}

#[tauri::command]
pub async fn send_group_message(
    state: State<'_, ShellState>,
    group_id: String,
    body: String,
    reply_to: Option<ReplyTarget>,
) -> Result<GroupMessageView, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.chat()
        .send_reply(&group_id, &body, reply_to.as_ref())
        .await
        .map_err(|e| e.to_ui())
}

/// The group is on screen: its unread count drops to zero.
#[tauri::command]
pub async fn mark_group_read(
    state: State<'_, ShellState>,
    group_id: String,
) -> Result<(), UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.chat().mark_read(&group_id).await.map_err(|e| e.to_ui())
}

/// "Delete for me" of `sender`'s message in a group.
#[tauri::command]
pub async fn delete_group_message(
    state: State<'_, ShellState>,
    group_id: String,
    sender: String,
    msg_id: String,
) -> Result<(), UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.chat()
        .delete_message(&group_id, &sender, &msg_id)
        .await
        .map_err(|e| e.to_ui())
}

/// The window tells which conversation is open (`None`: none), so that a window created again
/// after being closed to the tray opens on it.
#[tauri::command]
pub fn remember_open(open: State<'_, crate::window::OpenConversation>, key: Option<String>) {
    open.set(key);
}

/// The conversation to open a new window on: the one open when the window was closed, or the
/// group a notification or the tray asked for.
#[tauri::command]
pub fn last_open(open: State<'_, crate::window::OpenConversation>) -> Option<String> {
    open.get()
}
