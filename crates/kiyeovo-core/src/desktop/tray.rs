//! What the tray shows, computed from the groups and the contacts' unread counts: a pure
//! function, so it is tested here and the shell only draws it.

use crate::api::{GroupView, TrayInvite, TrayMenuEntry, TrayModel};

/// Menu ids the shell acts on.
pub const MENU_OPEN: &str = "open";
pub const MENU_QUIT: &str = "quit";
pub const MENU_INVITE_PREFIX: &str = "invite:";

fn item(id: &str, label: &str, enabled: bool) -> TrayMenuEntry {
    TrayMenuEntry::Item {
        id: id.to_string(),
        label: label.to_string(),
        enabled,
    }
}

/// Open; the pending invitations (or a disabled "none" line); Quit.
pub fn menu(invites: &[TrayInvite]) -> Vec<TrayMenuEntry> {
    let mut menu = vec![
        item(MENU_OPEN, "Open Kiyeovo", true),
        TrayMenuEntry::Separator,
    ];
    if invites.is_empty() {
        menu.push(item("no-invites", "No pending invitations", false));
    }
    for invite in invites {
        menu.push(item(
            &format!("{MENU_INVITE_PREFIX}{}", invite.group_id),
            &invite.label,
            true,
        ));
    }
    menu.push(TrayMenuEntry::Separator);
    menu.push(item(MENU_QUIT, "Quit Kiyeovo", true));
    menu
}

use super::{pending, time_left};

/// The tray for these groups, with `contacts_unread` unread 1:1 messages, at `now` (ms since
/// the epoch).
pub fn tray_model(groups: &[GroupView], contacts_unread: u32, now: u64) -> TrayModel {
    let mut pending: Vec<&GroupView> = groups.iter().filter(|g| pending(g, now)).collect();
    pending.sort_by_key(|g| (g.expires_at, g.group_id.clone()));
    let invites: Vec<TrayInvite> = pending
        .iter()
        .map(|g| TrayInvite {
            group_id: g.group_id.clone(),
            label: format!("{} — {} left", g.name, time_left(g.expires_at - now)),
        })
        .collect();
    let unread: u32 = groups
        .iter()
        .map(|g| g.unread)
        .fold(contacts_unread, u32::saturating_add);
    let pending_invites = invites.len() as u32;
    let mut parts = Vec::new();
    match pending_invites {
        0 => {}
        1 => parts.push("1 invitation".to_string()),
        n => parts.push(format!("{n} invitations")),
    }
    match unread {
        0 => {}
        1 => parts.push("1 unread message".to_string()),
        n => parts.push(format!("{n} unread messages")),
    }
    let tooltip = if parts.is_empty() {
        "Kiyeovo".to_string()
    } else {
        format!("Kiyeovo — {}", parts.join(", "))
    };
    TrayModel {
        tooltip,
        pending_invites,
        unread,
        menu: menu(&invites),
        invites,
    }
}

/// The tray icon with a red dot in its top-right corner: the badge for "something waits for
/// you" (appindicator trays on Linux show no numbers; the count goes into the title and
/// tooltip). `rgba` is `width × height` pixels, 4 bytes each.
pub fn with_badge(rgba: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut out = rgba.to_vec();
    let (w, h) = (width as i64, height as i64);
    let r = (w.min(h) * 3 / 10).max(2);
    let (cx, cy) = (w - r - 1, r + 1);
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x - cx, y - cy);
            let d2 = dx * dx + dy * dy;
            let i = ((y * w + x) * 4) as usize;
            if i + 4 > out.len() {
                return out;
            }
            if d2 <= r * r {
                out[i..i + 4].copy_from_slice(&[0xe0, 0x2d, 0x2d, 0xff]);
            } else if d2 <= (r + 1) * (r + 1) {
                // A white ring keeps the dot visible on a red or busy icon.
                out[i..i + 4].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
            }
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::GroupStatus;

    /// A group as the UI would get it; tests change the fields they care about.
    pub(crate) fn group(id: &str, name: &str, status: GroupStatus, expires_at: u64) -> GroupView {
        GroupView {
            group_id: id.to_string(),
            name: name.to_string(),
            creator_peer_id: "12D3creator".to_string(),
            creator_name: "Ana".to_string(),
            is_creator: false,
            status,
            created_at: 0,
            expires_at,
            epoch: 0,
            members: Vec::new(),
            can_respond: status == GroupStatus::Invited,
            can_establish: false,
            list_mismatch: false,
            flags: Vec::new(),
            unread: 0,
            safety_code: None,
            roster: Vec::new(),
            is_admin: false,
            changes: Vec::new(),
            add_round: None,
            can_add: 0,
            joining: false,
        }
    }

    #[test]
    fn the_badge_is_a_red_dot_top_right_and_leaves_the_rest() {
        let (w, h) = (32u32, 32u32);
        let icon = vec![0x10u8; (w * h * 4) as usize];
        let badged = with_badge(&icon, w, h);
        assert_eq!(badged.len(), icon.len());
        let px =
            |x: u32, y: u32| &badged[((y * w + x) * 4) as usize..((y * w + x) * 4 + 4) as usize];
        assert_eq!(px(w - 10, 10), [0xe0, 0x2d, 0x2d, 0xff]);
        assert_eq!(px(2, h - 3), [0x10, 0x10, 0x10, 0x10]);
        // A short buffer is not indexed past its end.
        assert_eq!(with_badge(&icon[..100], w, h).len(), 100);
    }

    #[test]
    fn nothing_pending_is_a_plain_tray() {
        let groups = vec![group("a", "Book club", GroupStatus::Active, 0)];
        let model = tray_model(&groups, 0, 1_000);
        assert_eq!(model.tooltip, "Kiyeovo");
        assert_eq!((model.pending_invites, model.unread), (0, 0));
        assert!(model.invites.is_empty());
        assert_eq!(
            model.menu,
            [
                item("open", "Open Kiyeovo", true),
                TrayMenuEntry::Separator,
                item("no-invites", "No pending invitations", false),
                TrayMenuEntry::Separator,
                item("quit", "Quit Kiyeovo", true),
            ]
        );
    }

    #[test]
    fn invitations_are_listed_soonest_first_with_time_left_and_counted_with_unread() {
        let hour = 3_600_000;
        let mut active = group("c", "Family", GroupStatus::Active, 0);
        active.unread = 4;
        let groups = vec![
            group("a", "Book club", GroupStatus::Invited, 6 * hour),
            group(
                "b",
                "Climbing",
                GroupStatus::Invited,
                2 * hour + 30 * 60_000,
            ),
            active,
            // Answered, expired or past its window: not pending.
            group("d", "Old", GroupStatus::Accepted, 6 * hour),
            group("e", "Late", GroupStatus::Invited, 500),
        ];
        // Three unread from contacts count with the group's four.
        let model = tray_model(&groups, 3, 1_000);
        assert_eq!(model.pending_invites, 2);
        assert_eq!(model.unread, 7);
        assert_eq!(model.tooltip, "Kiyeovo — 2 invitations, 7 unread messages");
        let labels: Vec<&str> = model.invites.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(
            labels,
            ["Climbing — 2 h 29 min left", "Book club — 5 h 59 min left"]
        );
        assert_eq!(model.invites[0].group_id, "b");
        assert_eq!(
            model.menu,
            [
                item("open", "Open Kiyeovo", true),
                TrayMenuEntry::Separator,
                item("invite:b", "Climbing — 2 h 29 min left", true),
                item("invite:a", "Book club — 5 h 59 min left", true),
                TrayMenuEntry::Separator,
                item("quit", "Quit Kiyeovo", true),
            ]
        );
    }
}
