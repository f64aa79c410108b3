//! The platform's notification service, through `notify-rust`.
//!
//! On Linux and the BSDs that is the freedesktop D-Bus protocol: notifications carry Accept /
//! Decline actions and a default action (clicking it opens the conversation), and the app hears
//! what the user chose. Elsewhere a plain notification is shown and the tray or window is where
//! the user answers.

use tokio::sync::mpsc;

use super::alerts::{Alert, AlertKind};
use crate::conversations::ConversationId;

/// What the user did with one of our notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The Accept or Decline button of an invitation.
    Answer { group_id: String, accept: bool },
    /// The notification itself was clicked.
    Open { about: ConversationId },
    /// It went away without an action (dismissed, timed out, or closed by us). `shown` numbers
    /// the showing that went: a newer one may have taken its place meanwhile (under the same
    /// server id, as updates replace in place).
    Closed {
        about: ConversationId,
        kind: AlertKind,
        shown: u64,
    },
}

/// Action keys on the wire (freedesktop: `"default"` is the click on the notification).
pub const ACTION_ACCEPT: &str = "accept";
pub const ACTION_DECLINE: &str = "decline";
pub const ACTION_OPEN: &str = "default";

/// `&`, `<` and `>` escaped: servers that support body markup would otherwise read a group
/// called "<b>" as markup.
pub fn escape_body(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub use platform::Notifications;

/// A one-off notice with no actions (e.g. "still running in the tray").
pub async fn notice(summary: &'static str, body: &'static str) {
    platform::notice(summary, body).await
}

#[cfg(all(unix, not(target_os = "macos")))]
mod platform {
    use std::collections::HashMap;
    use std::sync::Arc;

    use notify_rust::{Hint, Notification, NotificationHandle, NotificationResponse, Timeout};
    use tokio::sync::Mutex;
    use tokio::task::JoinHandle;

    use super::*;

    type Key = (ConversationId, AlertKind);
    /// A notification on screen and the task waiting for the user's choice on it.
    /// With the number of the showing (see [`Response::Closed`]).
    type OnScreen = (Arc<NotificationHandle>, JoinHandle<()>, u64);

    /// The notifications on screen, each with the task waiting for the user's choice.
    pub struct Notifications {
        responses: mpsc::UnboundedSender<Response>,
        shown: Mutex<HashMap<Key, OnScreen>>,
        showings: std::sync::atomic::AtomicU64,
    }

    impl Notifications {
        pub fn new(responses: mpsc::UnboundedSender<Response>) -> Self {
            Self {
                responses,
                shown: Mutex::new(HashMap::new()),
                showings: std::sync::atomic::AtomicU64::new(0),
            }
        }

        /// Shows `alert`, replacing the conversation's notification of the same kind in place.
        pub async fn show(&self, alert: &Alert) {
            let key = (alert.about.clone(), alert.kind);
            let mut shown = self.shown.lock().await;
            let mut n = Notification::new();
            n.appname("Kiyeovo")
                .summary(&alert.summary)
                .body(&escape_body(&alert.body))
                .icon("kiyeovo-desktop")
                .hint(Hint::DesktopEntry("Kiyeovo".into()))
                .action(ACTION_OPEN, "Open");
            if alert.answerable {
                // An invitation stays until answered: it must not be missed.
                n.action(ACTION_ACCEPT, "Accept")
                    .action(ACTION_DECLINE, "Decline")
                    .hint(Hint::Category("im".into()))
                    .timeout(Timeout::Never);
            } else {
                n.hint(Hint::Category("im.received".into()));
            }
            if let Some((previous, waiter, _)) = shown.remove(&key) {
                // Same id: the server updates it in place. The old waiter would hear the
                // new notification's actions too, so it goes.
                waiter.abort();
                n.id(previous.id());
            }
            match n.show_async().await {
                Ok(handle) => {
                    let handle = Arc::new(handle);
                    tracing::info!(about = ?alert.about.kind, kind = ?alert.kind, id = handle.id(), "notification shown");
                    let showing = self
                        .showings
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let waiter = tokio::spawn(wait(
                        handle.clone(),
                        key.clone(),
                        showing,
                        self.responses.clone(),
                    ));
                    shown.insert(key, (handle, waiter, showing));
                }
                Err(e) => {
                    tracing::warn!(error = %e, kind = ?alert.kind, "cannot show a notification (is a notification service running?)")
                }
            }
        }

        /// Closes every notification still on screen (the app is closing).
        pub async fn withdraw_all(&self) {
            let shown: Vec<OnScreen> = self.shown.lock().await.drain().map(|(_, v)| v).collect();
            for (handle, waiter, _) in shown {
                waiter.abort();
                handle.close_async().await;
            }
        }

        /// The server closed showing number `showing`: `true` if it is the one we hold for the
        /// conversation (then forgotten), `false` if a newer one already replaced it (a
        /// dismissal that crossed an update must not make us forget what is on screen).
        pub async fn closed(&self, about: &ConversationId, kind: AlertKind, showing: u64) -> bool {
            let mut shown = self.shown.lock().await;
            let key = (about.clone(), kind);
            if shown.get(&key).is_some_and(|(_, _, s)| *s == showing) {
                shown.remove(&key);
                return true;
            }
            false
        }

        /// Closes the conversation's notification of this kind, if it is on screen.
        pub async fn withdraw(&self, about: &ConversationId, kind: AlertKind) {
            let removed = self.shown.lock().await.remove(&(about.clone(), kind));
            if let Some((handle, waiter, _)) = removed {
                waiter.abort();
                handle.close_async().await;
            }
        }
    }

    pub async fn notice(summary: &str, body: &str) {
        let shown = Notification::new()
            .appname("Kiyeovo")
            .summary(summary)
            .body(&escape_body(body))
            .icon("kiyeovo-desktop")
            .show_async()
            .await;
        if let Err(e) = shown {
            tracing::warn!(error = %e, "cannot show a notification");
        }
    }

    /// Waits for the user's choice on one notification and reports it.
    async fn wait(
        handle: Arc<NotificationHandle>,
        key: Key,
        showing: u64,
        responses: mpsc::UnboundedSender<Response>,
    ) {
        let (about, kind) = key;
        handle
            .wait_for_action_async(|response| {
                let report = match response {
                    // Only invitations (about a group) carry these buttons.
                    NotificationResponse::Action(a)
                        if (a == ACTION_ACCEPT || a == ACTION_DECLINE)
                            && about.kind == crate::conversations::ConversationKind::Group =>
                    {
                        Response::Answer {
                            group_id: about.id.clone(),
                            accept: a == ACTION_ACCEPT,
                        }
                    }
                    NotificationResponse::Default => Response::Open {
                        about: about.clone(),
                    },
                    NotificationResponse::Action(a) if a == ACTION_OPEN => Response::Open {
                        about: about.clone(),
                    },
                    _ => Response::Closed {
                        about: about.clone(),
                        kind,
                        shown: showing,
                    },
                };
                let _ = responses.send(report);
            })
            .await;
    }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
mod platform {
    use super::*;

    /// Plain notifications: these platforms' `notify-rust` back ends report no actions.
    pub struct Notifications {
        _responses: mpsc::UnboundedSender<Response>,
    }

    /// Shows one notification on the blocking pool (these back ends block).
    async fn show_plain(summary: String, body: String) {
        let shown = tokio::task::spawn_blocking(move || {
            let mut n = notify_rust::Notification::new();
            n.appname("Kiyeovo").summary(&summary).body(&body);
            // Windows attributes toasts to the installed app by its AppUserModelID, which the
            // Tauri installers set to the bundle identifier.
            #[cfg(target_os = "windows")]
            n.app_id("org.kiyeovo.desktop");
            n.show().map(|_| ())
        })
        .await;
        if let Ok(Err(e)) = shown {
            tracing::warn!(error = %e, "cannot show a notification");
        }
    }

    impl Notifications {
        pub fn new(responses: mpsc::UnboundedSender<Response>) -> Self {
            Self {
                _responses: responses,
            }
        }

        pub async fn show(&self, alert: &Alert) {
            show_plain(alert.summary.clone(), alert.body.clone()).await
        }

        pub async fn withdraw(&self, _about: &ConversationId, _kind: AlertKind) {}

        pub async fn closed(
            &self,
            _about: &ConversationId,
            _kind: AlertKind,
            _showing: u64,
        ) -> bool {
            true
        }

        pub async fn withdraw_all(&self) {}
    }

    pub async fn notice(summary: &str, body: &str) {
        show_plain(summary.to_string(), body.to_string()).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bodies_cannot_carry_markup() {
        assert_eq!(
            super::escape_body("<b>A & B</b>"),
            "&lt;b&gt;A &amp; B&lt;/b&gt;"
        );
    }
}
