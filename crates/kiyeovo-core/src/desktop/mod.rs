//! The desktop around the chat: notifications, the tray's contents and start at login.
//!
//! What to say and when is decided by pure code ([`alerts::Planner`], [`tray::tray_model`]) and
//! tested without a desktop; [`notifier::Notifier`] feeds it the app's events and hands its
//! decisions to the platform's notification service ([`os`]); the Tauri shell renders the
//! [`crate::api::TrayModel`].

pub mod alerts;
pub mod autostart;
pub mod notifier;
pub mod os;
pub mod tray;

/// An invitation still waiting for our answer at `now`: the tray lists it, the planner
/// announces it, and Accept is offered only then.
pub fn pending(g: &crate::api::GroupView, now: u64) -> bool {
    g.status == crate::api::GroupStatus::Invited && g.can_respond && g.expires_at > now
}

/// "5 h 12 min", "12 min", "less than a minute": coarse on purpose, for notifications and the
/// tray menu (which are not redrawn every second, unlike the window's countdown).
pub fn time_left(ms: u64) -> String {
    let minutes = ms / 60_000;
    let (h, m) = (minutes / 60, minutes % 60);
    match (h, m) {
        (0, 0) => "less than a minute".to_string(),
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::time_left;

    #[test]
    fn time_left_reads_naturally() {
        assert_eq!(time_left(6 * 3_600_000), "6 h");
        assert_eq!(
            time_left(5 * 3_600_000 + 12 * 60_000 + 59_000),
            "5 h 12 min"
        );
        assert_eq!(time_left(29 * 60_000), "29 min");
        assert_eq!(time_left(59_999), "less than a minute");
    }
}
