//! The notification service: feeds the app's events to the [`Planner`] and carries out what it
//! decides, and turns the user's answers on a notification back into app actions.
//!
//! One task owns the planner, so decisions are made one at a time in event order.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};

use crate::api::DesktopSettings;
use crate::conversations::ConversationId;
use crate::group::{ChatEvent, GroupEvent, Groups};
use crate::pairwise::channel::{Channel, ChannelEvent};
use crate::storage::Database;

use super::alerts::{Alert, AlertKind, AlertLog, Effect, Planner};
use super::os::{Notifications, Response};

/// Where the announcement log is saved.
pub const SETTING_ALERT_LOG: &str = "desktop_alert_log";

/// What the notifier needs from the app.
pub struct NotifierParts {
    pub groups: Arc<Groups>,
    pub channel: Arc<Channel>,
    pub db: Database,
    pub group_events: broadcast::Receiver<GroupEvent>,
    pub chat_events: broadcast::Receiver<ChatEvent>,
    /// 1:1 conversations: new messages, and reads that clear them.
    pub channel_events: broadcast::Receiver<ChannelEvent>,
    pub settings: watch::Receiver<DesktopSettings>,
    pub focused: watch::Receiver<bool>,
    /// Conversations a notification click asked to show (the shell opens the window on them).
    pub open: broadcast::Sender<ConversationId>,
    /// How often to look for invitations about to expire.
    pub tick: Duration,
    /// Becomes `true` when the app closes: notifications are withdrawn and the task ends.
    pub stop: watch::Receiver<bool>,
}

/// Runs until the app closes (`stop`, which also withdraws what is on screen) or its event
/// channels end.
pub async fn run(mut parts: NotifierParts) {
    let (responses_tx, mut responses) = mpsc::unbounded_channel();
    let os = Notifications::new(responses_tx);
    let log: AlertLog = match parts.db.setting(SETTING_ALERT_LOG).await {
        Ok(log) => log.unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the notification log; starting afresh");
            AlertLog::default()
        }
    };
    let mut planner = Planner::new(log);
    let mut stop = parts.stop.clone();
    let mut tick = tokio::time::interval(parts.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        use broadcast::error::RecvError;
        let effects = tokio::select! {
            event = parts.group_events.recv() => match event {
                Err(RecvError::Closed) => break,
                _ => look(&parts, &mut planner).await,
            },
            event = parts.chat_events.recv() => match event {
                Err(RecvError::Closed) => break,
                Ok(ChatEvent::Received { group_id, .. }) => match parts.groups.view(&group_id).await {
                    Ok(view) => {
                        let settings = parts.settings.borrow().clone();
                        let focused = *parts.focused.borrow();
                        let about = ConversationId::group(&view.group_id);
                        planner.message(&about, &view.name, view.unread, &settings, focused)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read a group for its notification");
                        Vec::new()
                    }
                },
                _ => look(&parts, &mut planner).await,
            },
            event = parts.channel_events.recv() => match event {
                Err(RecvError::Closed) => break,
                // Missed events (a flood): whatever is on screen is checked again, so a missed
                // read or block does not leave a notification up.
                Err(RecvError::Lagged(_)) => recheck_contacts(&parts, &mut planner).await,
                Ok(event) => contact(&parts, &mut planner, &event).await,
            },
            changed = parts.settings.changed() => match changed {
                Err(_) => break,
                Ok(()) => look(&parts, &mut planner).await,
            },
            _ = tick.tick() => look(&parts, &mut planner).await,
            Some(response) = responses.recv() => answer(&parts, &os, &mut planner, response).await,
            // (The guard `wait_for` returns must not be held across the awaits below.)
            _ = async { let _ = stop.wait_for(|stop| *stop).await; } => {
                os.withdraw_all().await;
                break;
            }
        };
        for effect in effects {
            match effect {
                Effect::Show(alert) => os.show(&alert).await,
                Effect::Withdraw { about, kind } => os.withdraw(&about, kind).await,
            }
        }
    }
}

async fn save(db: &Database, log: &AlertLog) {
    if let Err(e) = db.set_setting(SETTING_ALERT_LOG, log).await {
        tracing::warn!(error = %e, "cannot save the notification log");
    }
}

/// A 1:1 conversation changed: a new message is announced (under the name the user gives the
/// contact); a read or a deleted message that leaves nothing unread, or a block, takes the
/// notification away. Blocked contacts' messages are not announced.
async fn contact(
    parts: &NotifierParts,
    planner: &mut Planner,
    event: &ChannelEvent,
) -> Vec<Effect> {
    let (peer, new) = match event {
        ChannelEvent::MessageReceived { peer, .. } => (peer, true),
        ChannelEvent::Read { peer }
        | ChannelEvent::MessageDeleted { peer }
        | ChannelEvent::Blocked { peer, .. } => (peer, false),
        _ => return Vec::new(),
    };
    let about = ConversationId::contact(peer);
    match parts.channel.contact_view(peer).await {
        Ok(Some(view)) if view.blocked => planner.unread(&about, 0),
        Ok(Some(view)) if new => {
            let settings = parts.settings.borrow().clone();
            let focused = *parts.focused.borrow();
            planner.message(&about, &view.display_name, view.unread, &settings, focused)
        }
        Ok(Some(view)) => planner.unread(&about, view.unread),
        Ok(None) => planner.unread(&about, 0),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a contact for its notification");
            Vec::new()
        }
    }
}

/// Each contact with a notification on screen, looked at again: withdrawn if nothing is unread
/// any more or the contact is blocked.
async fn recheck_contacts(parts: &NotifierParts, planner: &mut Planner) -> Vec<Effect> {
    let mut effects = Vec::new();
    for about in planner.contacts_on_screen() {
        let Ok(peer) = about.id.parse::<libp2p::PeerId>() else {
            effects.extend(planner.unread(&about, 0));
            continue;
        };
        match parts.channel.contact_view(&peer).await {
            Ok(Some(view)) if !view.blocked => effects.extend(planner.unread(&about, view.unread)),
            Ok(_) => effects.extend(planner.unread(&about, 0)),
            Err(e) => tracing::warn!(error = %e, "cannot read a contact for its notification"),
        }
    }
    effects
}

/// Looks at every group; saves the log when an announcement was made, before it is shown, so
/// a crash right after cannot repeat it.
async fn look(parts: &NotifierParts, planner: &mut Planner) -> Vec<Effect> {
    match parts.groups.list().await {
        Ok(groups) => {
            let settings = parts.settings.borrow().clone();
            let before = planner.log().clone();
            let effects = planner.groups(&groups, &settings, crate::time::now_ms());
            if *planner.log() != before {
                save(&parts.db, planner.log()).await;
            }
            effects
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read groups for notifications");
            Vec::new()
        }
    }
}

/// The user acted on a notification.
async fn answer(
    parts: &NotifierParts,
    os: &Notifications,
    planner: &mut Planner,
    response: Response,
) -> Vec<Effect> {
    match response {
        Response::Answer { group_id, accept } => {
            tracing::info!(group = %group_id, accept, "invitation answered from a notification");
            if let Err(e) = parts.groups.respond(&group_id, accept).await {
                let ui = e.to_ui();
                tracing::warn!(group = %group_id, error = %e, "answer from a notification refused");
                os.show(&Alert {
                    about: ConversationId::group(&group_id),
                    kind: AlertKind::Invite,
                    summary: if accept {
                        "Could not accept the invitation".into()
                    } else {
                        "Could not decline the invitation".into()
                    },
                    body: format!("{} {}", ui.message, ui.hint).trim().to_string(),
                    answerable: false,
                })
                .await;
            }
            look(parts, planner).await
        }
        Response::Open { about } => {
            let _ = parts.open.send(about);
            Vec::new()
        }
        Response::Closed { about, kind, shown } => {
            if os.closed(&about, kind, shown).await {
                planner.closed(&about, kind);
            }
            Vec::new()
        }
    }
}
