//! Which notifications to show, as a pure state machine: groups and settings in, effects out.
//!
//! Rules (each one is a test below):
//! * a new invitation is announced **once**, with the group, its creator and the time left, and
//!   Accept / Decline; if it arrives already inside the reminder lead, only the reminder shows;
//! * an invitation still unanswered `expiry_reminder_minutes` before its window closes is
//!   announced once more (the first notification is withdrawn, so one stays on screen);
//! * once an invitation is answered (here or from the notification) or expires, its
//!   notification is withdrawn;
//! * a group we were invited to being established is announced once (the creator, who did it,
//!   is not told);
//! * new messages — in a group or from a contact — are announced only while the window is not
//!   focused, one notification per conversation that is replaced as more arrive and withdrawn
//!   once they are read; message text never goes to the notification service (it may log or
//!   show it on a lock screen);
//! * do-not-disturb, a muted group and a muted contact silence everything about them; an
//!   invitation that arrived while silenced is announced when the silence ends (it must not be
//!   missed), other news is not.
//!
//! "Announced once" survives restarts: [`AlertLog`] is saved in the settings table.

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use crate::api::{DesktopSettings, GroupStatus, GroupView};
use crate::conversations::{ConversationId, ConversationKind};

use super::{pending, time_left};

/// What a notification says; a conversation has at most one notification of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AlertKind {
    Invite,
    ExpiresSoon,
    Established,
    Messages,
}

/// A notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub about: ConversationId,
    pub kind: AlertKind,
    pub summary: String,
    pub body: String,
    /// Offer Accept / Decline.
    pub answerable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Show, or replace the conversation's notification of the same kind.
    Show(Alert),
    /// Close the conversation's notification of this kind.
    Withdraw {
        about: ConversationId,
        kind: AlertKind,
    },
}

/// Which one-time announcements were made (all about groups, by hex id): saved, so a restart
/// does not repeat them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertLog {
    pub announced: BTreeSet<(String, AlertKind)>,
}

/// The planner: the saved log plus what is on screen now.
#[derive(Debug, Default)]
pub struct Planner {
    log: AlertLog,
    on_screen: HashSet<(ConversationId, AlertKind)>,
}

fn quiet(settings: &DesktopSettings, about: &ConversationId) -> bool {
    let muted = match about.kind {
        ConversationKind::Group => &settings.muted_groups,
        ConversationKind::Contact => &settings.muted_contacts,
    };
    settings.do_not_disturb || muted.contains(&about.id)
}

impl Planner {
    pub fn new(log: AlertLog) -> Self {
        Self {
            log,
            on_screen: HashSet::new(),
        }
    }

    pub fn log(&self) -> &AlertLog {
        &self.log
    }

    fn show(&mut self, effects: &mut Vec<Effect>, alert: Alert) {
        self.on_screen.insert((alert.about.clone(), alert.kind));
        effects.push(Effect::Show(alert));
    }

    fn withdraw(&mut self, effects: &mut Vec<Effect>, about: &ConversationId, kind: AlertKind) {
        if self.on_screen.remove(&(about.clone(), kind)) {
            effects.push(Effect::Withdraw {
                about: about.clone(),
                kind,
            });
        }
    }

    fn announced(&self, group_id: &str, kind: AlertKind) -> bool {
        self.log.announced.contains(&(group_id.to_string(), kind))
    }

    fn remember(&mut self, group_id: &str, kind: AlertKind) {
        self.log.announced.insert((group_id.to_string(), kind));
    }

    /// The groups as they are now (all of them): announcements due, notifications to withdraw.
    pub fn groups(
        &mut self,
        groups: &[GroupView],
        settings: &DesktopSettings,
        now: u64,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let lead = u64::from(settings.expiry_reminder_minutes) * 60_000;
        for g in groups {
            let id = g.group_id.as_str();
            let about = ConversationId::group(id);
            let silenced = quiet(settings, &about);
            if pending(g, now) {
                let left = g.expires_at - now;
                let due_reminder = lead > 0 && left <= lead;
                if due_reminder && !silenced && !self.announced(id, AlertKind::ExpiresSoon) {
                    self.withdraw(&mut effects, &about, AlertKind::Invite);
                    self.remember(id, AlertKind::Invite);
                    self.remember(id, AlertKind::ExpiresSoon);
                    self.show(
                        &mut effects,
                        Alert {
                            about: about.clone(),
                            kind: AlertKind::ExpiresSoon,
                            summary: format!("Invitation to “{}” expires soon", g.name),
                            body: format!(
                                "{} invited you. {} left to answer.",
                                g.creator_name,
                                time_left(left)
                            ),
                            answerable: true,
                        },
                    );
                } else if !silenced && !self.announced(id, AlertKind::Invite) {
                    self.remember(id, AlertKind::Invite);
                    self.show(
                        &mut effects,
                        Alert {
                            about: about.clone(),
                            kind: AlertKind::Invite,
                            summary: format!("Invitation to “{}”", g.name),
                            body: format!(
                                "{} invited you to a group. {} left to answer.",
                                g.creator_name,
                                time_left(left)
                            ),
                            answerable: true,
                        },
                    );
                }
            } else {
                // Answered or expired: nothing left to act on. It can never be pending again,
                // so the log entries can go too.
                for kind in [AlertKind::Invite, AlertKind::ExpiresSoon] {
                    self.withdraw(&mut effects, &about, kind);
                    self.log.announced.remove(&(id.to_string(), kind));
                }
            }
            if g.status == GroupStatus::Active
                && !g.is_creator
                && !self.announced(id, AlertKind::Established)
            {
                self.remember(id, AlertKind::Established);
                if !silenced {
                    let members = g.members.len();
                    self.show(
                        &mut effects,
                        Alert {
                            about: about.clone(),
                            kind: AlertKind::Established,
                            summary: format!("“{}” is ready", g.name),
                            body: format!(
                                "{} established the group with {members} members. You can write now.",
                                g.creator_name
                            ),
                            answerable: false,
                        },
                    );
                }
            }
            if g.unread == 0 {
                self.withdraw(&mut effects, &about, AlertKind::Messages);
            }
        }
        // Forget groups that are gone.
        let ids: HashSet<&str> = groups.iter().map(|g| g.group_id.as_str()).collect();
        self.log
            .announced
            .retain(|(id, _)| ids.contains(id.as_str()));
        let gone: Vec<(ConversationId, AlertKind)> = self
            .on_screen
            .iter()
            .filter(|(about, _)| {
                about.kind == ConversationKind::Group && !ids.contains(about.id.as_str())
            })
            .cloned()
            .collect();
        for (about, kind) in gone {
            self.withdraw(&mut effects, &about, kind);
        }
        effects
    }

    /// A message from someone else arrived in a conversation (called `title`), which now has
    /// `unread` unread messages.
    pub fn message(
        &mut self,
        about: &ConversationId,
        title: &str,
        unread: u32,
        settings: &DesktopSettings,
        window_focused: bool,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        if window_focused || unread == 0 || quiet(settings, about) {
            return effects;
        }
        let body = match unread {
            1 => "1 new message".to_string(),
            n => format!("{n} new messages"),
        };
        self.show(
            &mut effects,
            Alert {
                about: about.clone(),
                kind: AlertKind::Messages,
                summary: title.to_string(),
                body,
                answerable: false,
            },
        );
        effects
    }

    /// A conversation's unread count changed without a new message (read here, a message
    /// deleted, the contact removed: 0): once nothing is unread its notification goes.
    pub fn unread(&mut self, about: &ConversationId, unread: u32) -> Vec<Effect> {
        let mut effects = Vec::new();
        if unread == 0 {
            self.withdraw(&mut effects, about, AlertKind::Messages);
        }
        effects
    }

    /// The contacts whose notifications are on screen (re-checked when events were missed).
    pub fn contacts_on_screen(&self) -> Vec<ConversationId> {
        let mut out: Vec<ConversationId> = self
            .on_screen
            .iter()
            .filter(|(about, _)| about.kind == ConversationKind::Contact)
            .map(|(about, _)| about.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The notification service closed one (the user dismissed it or acted on it).
    pub fn closed(&mut self, about: &ConversationId, kind: AlertKind) {
        self.on_screen.remove(&(about.clone(), kind));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desktop::tray::tests::group;
    use proptest::prelude::*;

    const HOUR: u64 = 3_600_000;

    /// A message from someone else arrived in `g` (its unread count already raised).
    fn group_message(
        p: &mut Planner,
        g: &GroupView,
        settings: &DesktopSettings,
        focused: bool,
    ) -> Vec<Effect> {
        p.message(
            &ConversationId::group(&g.group_id),
            &g.name,
            g.unread,
            settings,
            focused,
        )
    }

    fn shown(effects: &[Effect]) -> Vec<(String, AlertKind)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Show(a) => Some((a.about.id.clone(), a.kind)),
                Effect::Withdraw { .. } => None,
            })
            .collect()
    }

    fn withdrawn(effects: &[Effect]) -> Vec<(String, AlertKind)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Withdraw { about, kind } => Some((about.id.clone(), *kind)),
                Effect::Show(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_new_invitation_is_announced_once_with_creator_and_time_left() {
        let settings = DesktopSettings::default();
        let mut p = Planner::default();
        let g = group("g1", "Book club", GroupStatus::Invited, 6 * HOUR);
        let effects = p.groups(std::slice::from_ref(&g), &settings, 0);
        let [Effect::Show(alert)] = effects.as_slice() else {
            panic!("expected one notification, got {effects:?}");
        };
        assert_eq!(alert.summary, "Invitation to “Book club”");
        assert_eq!(
            alert.body,
            "Ana invited you to a group. 6 h left to answer."
        );
        assert!(alert.answerable);
        // Every later look at the same groups (events, ticks) says nothing new.
        for now in [1, 1_000, HOUR] {
            assert!(p
                .groups(std::slice::from_ref(&g), &settings, now)
                .is_empty());
        }
        // A restart with the saved log does not announce it again.
        let mut restarted = Planner::new(p.log().clone());
        assert!(restarted.groups(&[g], &settings, 2 * HOUR).is_empty());
    }

    #[test]
    fn an_unanswered_invitation_is_recalled_before_it_expires_then_withdrawn() {
        let settings = DesktopSettings::default(); // 30 min
        let mut p = Planner::default();
        let g = group("g1", "Book club", GroupStatus::Invited, 6 * HOUR);
        assert_eq!(
            shown(&p.groups(std::slice::from_ref(&g), &settings, 0)).len(),
            1
        );
        assert!(p
            .groups(std::slice::from_ref(&g), &settings, 5 * HOUR)
            .is_empty());
        let effects = p.groups(std::slice::from_ref(&g), &settings, 5 * HOUR + 31 * 60_000);
        assert_eq!(withdrawn(&effects), [("g1".to_string(), AlertKind::Invite)]);
        assert_eq!(
            shown(&effects),
            [("g1".to_string(), AlertKind::ExpiresSoon)]
        );
        let Effect::Show(reminder) = &effects[1] else {
            unreachable!()
        };
        assert_eq!(reminder.body, "Ana invited you. 29 min left to answer.");
        assert!(reminder.answerable);
        assert!(p
            .groups(std::slice::from_ref(&g), &settings, 5 * HOUR + 40 * 60_000)
            .is_empty());
        // The window closes: the reminder goes away.
        let mut expired = g.clone();
        expired.status = GroupStatus::Expired;
        expired.can_respond = false;
        let effects = p.groups(&[expired], &settings, 6 * HOUR + 1);
        assert_eq!(
            withdrawn(&effects),
            [("g1".to_string(), AlertKind::ExpiresSoon)]
        );
    }

    #[test]
    fn an_invitation_arriving_inside_the_reminder_lead_is_announced_once() {
        let settings = DesktopSettings::default();
        let mut p = Planner::default();
        let g = group("g1", "Quick", GroupStatus::Invited, 10 * 60_000);
        let effects = p.groups(std::slice::from_ref(&g), &settings, 0);
        assert_eq!(
            shown(&effects),
            [("g1".to_string(), AlertKind::ExpiresSoon)]
        );
        assert!(p.groups(&[g], &settings, 60_000).is_empty());
    }

    #[test]
    fn reminders_can_be_turned_off() {
        let settings = DesktopSettings {
            expiry_reminder_minutes: 0,
            ..DesktopSettings::default()
        };
        let mut p = Planner::default();
        let g = group("g1", "Quick", GroupStatus::Invited, 10 * 60_000);
        assert_eq!(
            shown(&p.groups(std::slice::from_ref(&g), &settings, 0)),
            [("g1".to_string(), AlertKind::Invite)]
        );
        assert!(p.groups(&[g], &settings, 9 * 60_000).is_empty());
    }

    #[test]
    fn answering_withdraws_and_establishment_is_announced_to_invitees_only() {
        let settings = DesktopSettings::default();
        let mut p = Planner::default();
        let mut g = group("g1", "Book club", GroupStatus::Invited, 6 * HOUR);
        p.groups(std::slice::from_ref(&g), &settings, 0);
        g.status = GroupStatus::Accepted;
        g.can_respond = false;
        let effects = p.groups(std::slice::from_ref(&g), &settings, 1);
        assert_eq!(effects.len(), 1);
        assert_eq!(withdrawn(&effects), [("g1".to_string(), AlertKind::Invite)]);
        g.status = GroupStatus::Active;
        g.epoch = 1;
        let effects = p.groups(std::slice::from_ref(&g), &settings, 2);
        let [Effect::Show(ready)] = effects.as_slice() else {
            panic!("{effects:?}")
        };
        assert_eq!(ready.summary, "“Book club” is ready");
        assert!(!ready.answerable);
        assert!(p.groups(std::slice::from_ref(&g), &settings, 3).is_empty());
        // The creator established it: no news for them.
        let mut mine = group("g2", "Mine", GroupStatus::Active, 0);
        mine.is_creator = true;
        assert!(p.groups(&[g, mine], &settings, 4).is_empty());
    }

    #[test]
    fn messages_notify_only_when_unfocused_and_are_withdrawn_once_read() {
        let settings = DesktopSettings::default();
        let mut p = Planner::default();
        let mut g = group("g1", "Book club", GroupStatus::Active, 0);
        g.is_creator = true;
        g.unread = 1;
        assert!(group_message(&mut p, &g, &settings, true).is_empty());
        let effects = group_message(&mut p, &g, &settings, false);
        let [Effect::Show(a)] = effects.as_slice() else {
            panic!("{effects:?}")
        };
        assert_eq!(
            (a.summary.as_str(), a.body.as_str()),
            ("Book club", "1 new message")
        );
        g.unread = 3;
        let effects = group_message(&mut p, &g, &settings, false);
        let [Effect::Show(a)] = effects.as_slice() else {
            panic!("{effects:?}")
        };
        assert_eq!(a.body, "3 new messages");
        g.unread = 0;
        let effects = p.groups(&[g], &settings, 0);
        assert_eq!(
            withdrawn(&effects),
            [("g1".to_string(), AlertKind::Messages)]
        );
    }

    #[test]
    fn a_contacts_messages_have_their_own_notification_withdrawn_once_read_or_muted() {
        let settings = DesktopSettings::default();
        let mut p = Planner::default();
        let ben = ConversationId {
            kind: ConversationKind::Contact,
            id: "12D3KooWBen".into(),
        };
        assert!(p.message(&ben, "Ben", 1, &settings, true).is_empty());
        let effects = p.message(&ben, "Ben", 1, &settings, false);
        let [Effect::Show(a)] = effects.as_slice() else {
            panic!("{effects:?}")
        };
        assert_eq!(a.about, ben);
        assert_eq!(
            (a.summary.as_str(), a.body.as_str(), a.answerable),
            ("Ben", "1 new message", false)
        );
        let effects = p.message(&ben, "Ben", 2, &settings, false);
        assert!(matches!(effects.as_slice(), [Effect::Show(a)] if a.body == "2 new messages"));
        // A group whose id happens to be the same text is another conversation: looking at the
        // groups leaves the contact's notification alone.
        let mut g = group("12D3KooWBen", "Club", GroupStatus::Active, 0);
        g.is_creator = true;
        assert!(p.groups(&[], &settings, 0).is_empty());
        assert!(p.groups(&[g], &settings, 0).is_empty());
        assert!(p.unread(&ben, 1).is_empty());
        let effects = p.unread(&ben, 0);
        assert!(
            matches!(effects.as_slice(), [Effect::Withdraw { about, kind: AlertKind::Messages }] if *about == ben)
        );
        assert!(p.unread(&ben, 0).is_empty(), "withdrawn once");
        // Muting the contact (not a group of the same id) silences them.
        let muted = DesktopSettings {
            muted_contacts: vec!["12D3KooWBen".into()],
            ..DesktopSettings::default()
        };
        assert!(p.message(&ben, "Ben", 3, &muted, false).is_empty());
        let muted_group = DesktopSettings {
            muted_groups: vec!["12D3KooWBen".into()],
            ..DesktopSettings::default()
        };
        assert_eq!(p.message(&ben, "Ben", 3, &muted_group, false).len(), 1);
    }

    #[test]
    fn do_not_disturb_and_mute_silence_but_a_pending_invitation_waits_for_the_silence_to_end() {
        let dnd = DesktopSettings {
            do_not_disturb: true,
            ..DesktopSettings::default()
        };
        let muted = DesktopSettings {
            muted_groups: vec!["g1".into()],
            ..DesktopSettings::default()
        };
        let normal = DesktopSettings::default();
        let mut p = Planner::default();
        let invite = group("g1", "Book club", GroupStatus::Invited, 6 * HOUR);
        let mut active = group("g2", "Family", GroupStatus::Active, 0);
        active.unread = 2;
        for settings in [&dnd, &muted] {
            assert!(p
                .groups(std::slice::from_ref(&invite), settings, 0)
                .is_empty());
        }
        assert!(group_message(&mut p, &active, &dnd, false).is_empty());
        let mut muted_active = active.clone();
        muted_active.group_id = "g1".into();
        assert!(group_message(&mut p, &muted_active, &muted, false).is_empty());
        // Establishment news that came during the silence is not replayed afterwards.
        let mut ready = group("g3", "Climbing", GroupStatus::Active, 0);
        ready.epoch = 1;
        assert!(p.groups(std::slice::from_ref(&ready), &dnd, 0).is_empty());
        // Silence over: the invitation (still pending) is announced, nothing else.
        let effects = p.groups(&[invite, ready], &normal, 1);
        assert_eq!(shown(&effects), [("g1".to_string(), AlertKind::Invite)]);
    }

    #[derive(Debug, Clone)]
    enum Step {
        Look { status: u8, unread: u32, dt: u64 },
        Message { focused: bool },
        ContactMessage { focused: bool },
        ContactRead,
        ContactMute(bool),
        Settings { dnd: bool, reminder: u32 },
        Dismiss(u8),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..4, 0u32..3, 0u64..2 * HOUR).prop_map(|(status, unread, dt)| Step::Look {
                status,
                unread,
                dt
            }),
            any::<bool>().prop_map(|focused| Step::Message { focused }),
            any::<bool>().prop_map(|focused| Step::ContactMessage { focused }),
            Just(Step::ContactRead),
            any::<bool>().prop_map(Step::ContactMute),
            (any::<bool>(), prop_oneof![Just(0u32), Just(30), Just(120)])
                .prop_map(|(dnd, reminder)| Step::Settings { dnd, reminder }),
            (0u8..4).prop_map(Step::Dismiss),
        ]
    }

    proptest! {
        /// Whatever happens — to a group and to a contact — each one-time announcement appears
        /// at most once, nothing is withdrawn that is not on screen, nothing shows while
        /// do-not-disturb is on or about a muted contact, and a read contact's goes.
        #[test]
        fn announcements_are_never_repeated_and_silence_holds(
            steps in proptest::collection::vec(step(), 1..60)
        ) {
            let kinds = [AlertKind::Invite, AlertKind::ExpiresSoon, AlertKind::Established, AlertKind::Messages];
            let mut p = Planner::default();
            let mut settings = DesktopSettings::default();
            let mut g = group("g", "G", GroupStatus::Invited, 6 * HOUR);
            let mut now = 0u64;
            let mut once: HashSet<AlertKind> = HashSet::new();
            let mut screen: HashSet<(ConversationId, AlertKind)> = HashSet::new();
            let ben = ConversationId { kind: ConversationKind::Contact, id: "ben".into() };
            let mut ben_unread = 0u32;
            // Status only moves forward: invited → accepted → active (or expired).
            let mut stage = 0u8;
            for s in steps {
                let effects = match s {
                    Step::Look { status, unread, dt } => {
                        now += dt;
                        stage = stage.max(status);
                        g.status = match stage {
                            0 => GroupStatus::Invited,
                            1 => GroupStatus::Accepted,
                            2 => GroupStatus::Active,
                            _ => GroupStatus::Expired,
                        };
                        g.can_respond = stage == 0 && now < g.expires_at;
                        g.unread = unread;
                        p.groups(std::slice::from_ref(&g), &settings, now)
                    }
                    Step::Message { focused } => group_message(&mut p, &g, &settings, focused),
                    Step::ContactMessage { focused } => {
                        ben_unread += 1;
                        p.message(&ben, "Ben", ben_unread, &settings, focused)
                    }
                    Step::ContactRead => {
                        ben_unread = 0;
                        let effects = p.unread(&ben, 0);
                        let before = screen.contains(&(ben.clone(), AlertKind::Messages));
                        prop_assert_eq!(effects.len(), usize::from(before), "a read contact's notification goes");
                        effects
                    }
                    Step::ContactMute(muted) => {
                        settings.muted_contacts = if muted { vec!["ben".into()] } else { Vec::new() };
                        Vec::new()
                    }
                    Step::Settings { dnd, reminder } => {
                        settings.do_not_disturb = dnd;
                        settings.expiry_reminder_minutes = reminder;
                        Vec::new()
                    }
                    Step::Dismiss(k) => {
                        let kind = kinds[k as usize];
                        let about = if k % 2 == 0 { ConversationId::group("g") } else { ben.clone() };
                        p.closed(&about, kind);
                        screen.remove(&(about, kind));
                        Vec::new()
                    }
                };
                for e in effects {
                    match e {
                        Effect::Show(a) if a.about == ben => {
                            prop_assert!(!settings.do_not_disturb, "shown during do-not-disturb");
                            prop_assert!(settings.muted_contacts.is_empty(), "shown while muted");
                            prop_assert_eq!(a.kind, AlertKind::Messages);
                            prop_assert!(ben_unread > 0 && !a.answerable);
                            screen.insert((ben.clone(), a.kind));
                        }
                        Effect::Show(a) => {
                            prop_assert!(!settings.do_not_disturb, "shown during do-not-disturb");
                            if a.kind != AlertKind::Messages {
                                prop_assert!(once.insert(a.kind), "{:?} announced twice", a.kind);
                            }
                            if a.answerable {
                                prop_assert!(g.status == GroupStatus::Invited && g.can_respond);
                            }
                            screen.insert((a.about.clone(), a.kind));
                        }
                        Effect::Withdraw { about, kind } => {
                            prop_assert!(screen.remove(&(about.clone(), kind)), "withdrew {:?} {:?} not on screen", about, kind);
                        }
                    }
                }
            }
        }
    }
}
