//! The conversation list: every contact and every group in one list, each with what the list
//! shows — its newest message (who, a preview, when), how many are unread, and for an
//! invitation waiting for our answer, when its window closes. Built from the same views the
//! chat screens use. Ordering is the UI's (`ui/src/conversations/order.ts`): invitations
//! pinned on top, then the newest activity.
//!
//! A message's time is its sender's clock, the order the chat itself shows. A sender whose
//! clock runs ahead (or who lies) could keep a conversation on top: the time is capped at now.

use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::api::{ContactView, GroupStatus, GroupView};
use crate::error::ServiceError;
use crate::service::App;

/// How long a preview may be, in characters; the list shows one line of it.
pub const PREVIEW_CHARS: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    Contact,
    Group,
}

/// One conversation: what a notification is about and what the window is asked to open.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationId {
    pub kind: ConversationKind,
    /// The contact's peer id, or the group's id (hex).
    pub id: String,
}

impl ConversationId {
    pub fn group(group_id: impl Into<String>) -> Self {
        Self {
            kind: ConversationKind::Group,
            id: group_id.into(),
        }
    }

    pub fn contact(peer: &PeerId) -> Self {
        Self {
            kind: ConversationKind::Contact,
            id: peer.to_string(),
        }
    }

    /// The window's name for it: `group:<hex>` or `contact:<peer id>` (the conversation list
    /// and the remembered open conversation use the same).
    pub fn key(&self) -> String {
        match self.kind {
            ConversationKind::Group => format!("group:{}", self.id),
            ConversationKind::Contact => format!("contact:{}", self.id),
        }
    }
}

/// The newest message of a conversation, as the list previews it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct LastMessage {
    /// "You", the contact's name, or the member's name.
    pub sender_name: String,
    pub outgoing: bool,
    /// The start of the body, on one line (at most [`PREVIEW_CHARS`] characters).
    pub preview: String,
    /// When it was sent (ms since the epoch, the sender's clock capped at now).
    #[ts(type = "number")]
    pub at: u64,
}

/// One entry of the conversation list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ConversationView {
    pub kind: ConversationKind,
    /// The contact's peer id, or the group's id (hex).
    pub id: String,
    pub title: String,
    pub last: Option<LastMessage>,
    /// When anything last happened here (ms): the newest message, else when the group was
    /// made or the contact became trusted. The list sorts on it.
    #[ts(type = "number")]
    pub active_at: u64,
    pub unread: u32,
    /// An invitation waiting for our answer: when its window closes (ms).
    #[ts(type = "number | null")]
    pub invite_expires_at: Option<u64>,
    /// Contact: not trusted yet (handshake pending) or blocked; group: where it stands.
    pub note: Option<String>,
}

/// One line of at most [`PREVIEW_CHARS`] characters: whitespace runs (new lines included)
/// become one space, and a cut is marked with "…".
pub fn preview(body: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for word in body.split_whitespace() {
        if chars > 0 {
            if chars >= PREVIEW_CHARS {
                out.push('…');
                return out;
            }
            out.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars >= PREVIEW_CHARS {
                out.push('…');
                return out;
            }
            out.push(c);
            chars += 1;
        }
    }
    out
}

/// A contact's entry; `last` is its newest message `(outgoing, body, sent_at)`.
pub fn of_contact(
    c: &ContactView,
    last: Option<(bool, String, u64)>,
    now: u64,
) -> ConversationView {
    let last = last.map(|(outgoing, body, sent_at)| LastMessage {
        sender_name: if outgoing {
            "You".into()
        } else {
            c.display_name.clone()
        },
        outgoing,
        preview: preview(&body),
        at: sent_at.min(now),
    });
    let note = if c.blocked {
        Some("blocked".into())
    } else if c.trusted_at.is_none() {
        Some("waiting for their reply".into())
    } else {
        None
    };
    ConversationView {
        kind: ConversationKind::Contact,
        id: c.peer_id.clone(),
        title: c.display_name.clone(),
        active_at: last
            .as_ref()
            .map(|l| l.at)
            .unwrap_or(c.trusted_at.unwrap_or(0).min(now)),
        last,
        unread: c.unread,
        invite_expires_at: None,
        note,
    }
}

/// Who wrote a group message, as the list and search results name them.
pub(crate) fn sender_name(g: &GroupView, sender: &str, outgoing: bool) -> String {
    if outgoing {
        return "You".into();
    }
    g.members
        .iter()
        .chain(&g.roster)
        .find(|m| m.peer_id == sender)
        .map_or_else(|| "Someone".into(), |m| m.display_name.clone())
}

/// A group's entry; `last` is its newest message `(sender peer id, outgoing, body, sent_at)`.
pub fn of_group(
    g: &GroupView,
    last: Option<(String, bool, String, u64)>,
    now: u64,
) -> ConversationView {
    let last = last.map(|(sender, outgoing, body, sent_at)| LastMessage {
        sender_name: sender_name(g, &sender, outgoing),
        outgoing,
        preview: preview(&body),
        at: sent_at.min(now),
    });
    let invite_expires_at = (g.can_respond).then_some(g.expires_at);
    let note = match g.status {
        GroupStatus::Active => None,
        GroupStatus::Invited if g.joining => Some("invited to join".into()),
        GroupStatus::Invited => Some("invitation".into()),
        GroupStatus::Inviting => Some("inviting".into()),
        GroupStatus::Accepted | GroupStatus::WaitingForCreator => {
            Some("waiting for the creator".into())
        }
        GroupStatus::Rejected => Some("declined".into()),
        GroupStatus::Expired => Some("invitation expired".into()),
        GroupStatus::Left => Some("you left".into()),
        GroupStatus::Removed => Some("you were removed".into()),
        GroupStatus::Disbanded => Some("disbanded".into()),
    };
    ConversationView {
        kind: ConversationKind::Group,
        id: g.group_id.clone(),
        title: g.name.clone(),
        active_at: last.as_ref().map_or(g.created_at.min(now), |l| l.at),
        last,
        unread: g.unread,
        invite_expires_at,
        note,
    }
}

impl App {
    /// Every contact and group, each with its newest message and unread count.
    pub async fn conversations(&self) -> Result<Vec<ConversationView>, ServiceError> {
        let now = crate::time::now_ms();
        let mut out = Vec::new();
        for c in self.channel().contacts().await.map_err(service_err)? {
            out.push(self.contact_entry(&c, now).await?);
        }
        for g in self.groups().list().await.map_err(service_err)? {
            out.push(self.group_entry(&g, now).await?);
        }
        Ok(out)
    }

    /// One entry, refreshed when an event names it; `None` if it is gone.
    pub async fn conversation(
        &self,
        kind: ConversationKind,
        id: &str,
    ) -> Result<Option<ConversationView>, ServiceError> {
        let now = crate::time::now_ms();
        match kind {
            ConversationKind::Contact => {
                let peer: PeerId = id
                    .parse()
                    .map_err(|_| ServiceError::InvalidInput(format!("not a peer id: {id}")))?;
                match self.channel().contact_view(&peer).await {
                    Ok(Some(c)) => Ok(Some(self.contact_entry(&c, now).await?)),
                    Ok(None) => Ok(None),
                    Err(e) => Err(service_err(e)),
                }
            }
            ConversationKind::Group => match self.groups().get(id).await {
                Ok(g) => Ok(Some(self.group_entry(&g, now).await?)),
                Err(crate::group::service::GroupServiceError::UnknownGroup) => Ok(None),
                Err(e) => Err(service_err(e)),
            },
        }
    }

    async fn contact_entry(
        &self,
        c: &ContactView,
        now: u64,
    ) -> Result<ConversationView, ServiceError> {
        let peer: PeerId = c
            .peer_id
            .parse()
            .map_err(|_| ServiceError::InvalidInput("bad peer id".into()))?;
        let last =
            crate::contacts::store::last_message(self.database().pool(), &self.storage_key, &peer)
                .await?;
        Ok(of_contact(c, last, now))
    }

    async fn group_entry(&self, g: &GroupView, now: u64) -> Result<ConversationView, ServiceError> {
        let last = crate::group::chat_store::last_message(
            self.database().pool(),
            &self.storage_key,
            &g.group_id,
        )
        .await?;
        Ok(of_group(g, last, now))
    }
}

pub(crate) fn service_err(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::InvalidInput(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_is_one_line_and_cut_with_an_ellipsis() {
        assert_eq!(preview("  hello\n\n  world \t!"), "hello world !");
        assert_eq!(preview(""), "");
        let long = "ab ".repeat(100);
        let p = preview(&long);
        assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
        assert!(p.ends_with('…'));
        let exact = "x".repeat(PREVIEW_CHARS);
        assert_eq!(preview(&exact), exact, "exactly the limit is not cut");
        assert_eq!(preview(&format!("{exact} more")), format!("{exact}…"));
        assert_eq!(preview(&"é".repeat(200)).chars().count(), PREVIEW_CHARS + 1);
    }

    fn contact(trusted_at: Option<u64>, blocked: bool) -> ContactView {
        ContactView {
            peer_id: "12D3KooWBen".into(),
            display_name: "Ben".into(),
            card_name: "Ben".into(),
            key_changed_at: None,
            trusted_at,
            blocked,
            invites_blocked: false,
            unread: 2,
            missed: 0,
        }
    }

    /// A sender's clock ahead of ours (or a lie) cannot keep a conversation on top for ever.
    #[test]
    fn a_message_from_the_future_counts_as_now() {
        let now = 1_000_000;
        let c = of_contact(
            &contact(Some(10), false),
            Some((false, "hi".into(), u64::MAX)),
            now,
        );
        assert_eq!(c.last.as_ref().unwrap().at, now);
        assert_eq!(c.active_at, now);
        assert_eq!(c.last.unwrap().sender_name, "Ben");
        assert_eq!(c.unread, 2);
    }

    #[test]
    fn a_contact_without_messages_says_where_it_stands() {
        let pending = of_contact(&contact(None, false), None, 50);
        assert_eq!(pending.note.as_deref(), Some("waiting for their reply"));
        assert_eq!(pending.active_at, 0);
        let blocked = of_contact(&contact(Some(40), true), None, 50);
        assert_eq!(blocked.note.as_deref(), Some("blocked"));
        assert_eq!(blocked.active_at, 40);
        let mine = of_contact(&contact(Some(40), false), Some((true, "yo".into(), 45)), 50);
        assert_eq!(mine.last.unwrap().sender_name, "You");
    }
}
