//! Replies (issue 14): a message may answer an earlier message of the same conversation.
//!
//! Only a reference travels — the answered message's author and id, inside the sender's
//! signature — never the quoted text. The quote shown above a reply is the referenced message as
//! *we* stored it, and only from the conversation the reply is in. So a modified peer cannot put
//! words in someone else's mouth (it can only point at what that person really signed), nor pull
//! a message of another conversation into this one. A reference that does not resolve here (not
//! received yet, deleted for me, made up, or another conversation's) shows as "not available".
//!
//! The author is part of the reference because message ids are chosen by their authors: in a
//! group two members may use the same id (PROTOCOL.md §5 keys messages by sender and id). A
//! digest of the answered text is part of it too: an author could give two readers two
//! different messages under one id, and a reply must not seem, to either, to answer what its
//! writer never saw. A reader whose copy does not match shows "differs", not its copy. In a
//! group the digest is keyed with the answered message's epoch key: a member added later, who
//! holds no key of that epoch, must not be able to test guesses of it ("yes", a PIN).

use std::collections::HashMap;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::QuoteView;
use crate::identity::peer_id_of;
use crate::ids::MsgId;

/// Which message a reply answers, as it travels (signed with the reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplyRef {
    /// The answered message's author (Ed25519 identity key).
    pub author: [u8; 32],
    pub msg_id: MsgId,
    /// [`digest`] of the answered message's text as the replier saw it.
    pub digest: [u8; 32],
}

/// Which message a reply answers, as stored: the author as a peer id, like a message's sender.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredRef {
    pub author: String,
    pub msg_id: MsgId,
    pub digest: [u8; 32],
}

/// What a 1:1 reply pins of the message it answers: a hash of its text (both sides hold it).
pub fn digest(body: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kiyeovo/v1/answered-message");
    h.update(body.as_bytes());
    h.finalize().into()
}

/// What a group reply pins of the message it answers: a hash of its text keyed with the key of
/// the epoch it was written in.
pub fn group_digest(epoch_key: &[u8; 32], body: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kiyeovo/v1/answered-group-message");
    h.update(epoch_key);
    h.update(body.as_bytes());
    h.finalize().into()
}

impl ReplyRef {
    /// The stored form; `None` if the author bytes are not a valid key (nothing could resolve).
    pub fn stored(&self) -> Option<StoredRef> {
        Some(StoredRef {
            author: peer_id_of(&self.author)?.to_string(),
            msg_id: self.msg_id,
            digest: self.digest,
        })
    }
}

impl StoredRef {
    /// The form that travels; `None` if the author is not an Ed25519 peer id.
    pub fn wire(&self) -> Option<ReplyRef> {
        Some(ReplyRef {
            author: ed25519_of(&self.author.parse().ok()?)?,
            msg_id: self.msg_id,
            digest: self.digest,
        })
    }

    /// From the three nullable columns a message row keeps its reference in. A query that did
    /// not select them is a bug: logged loudly (the message then shows as no reply).
    pub fn from_row(row: &sqlx::sqlite::SqliteRow) -> Option<Self> {
        use sqlx::Row;
        let columns = (
            row.try_get::<Option<String>, _>("reply_author"),
            row.try_get::<Option<Vec<u8>>, _>("reply_msg_id"),
            row.try_get::<Option<Vec<u8>>, _>("reply_digest"),
        );
        let (Ok(author), Ok(msg_id), Ok(digest)) = columns else {
            tracing::error!("a message row was read without its reply columns");
            return None;
        };
        Some(StoredRef {
            author: author?,
            msg_id: MsgId::from_slice(&msg_id?)?,
            digest: digest?.try_into().ok()?,
        })
    }
}

/// The Ed25519 key inside an Ed25519 peer id (the inverse of [`peer_id_of`]).
pub fn ed25519_of(peer: &PeerId) -> Option<[u8; 32]> {
    let key = libp2p::identity::PublicKey::try_decode_protobuf(peer.as_ref().digest()).ok()?;
    Some(key.try_into_ed25519().ok()?.to_bytes())
}

/// At most this many characters of the quoted message are shown above a reply.
pub const QUOTE_CHARS: usize = 200;

/// The start of `body`, for a quote: [`QUOTE_CHARS`] characters, then "…".
pub fn snippet(body: &str) -> String {
    let mut chars = body.chars();
    let head: String = chars.by_ref().take(QUOTE_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// One conversation's messages by (author peer id, msg id), to fill the quotes of its replies,
/// with how the conversation digests an answered message (`digest` for 1:1, `group_digest`
/// with the epoch's key for a group: from the message's epoch and text).
pub struct Quotes<'a, D> {
    bodies: HashMap<(&'a str, MsgId), (u32, &'a str)>,
    digest_of: D,
}

impl<'a, D: Fn(u32, &str) -> Option<[u8; 32]>> Quotes<'a, D> {
    /// From `(author peer id, msg id, epoch, body)` of every message shown in the conversation
    /// (epoch 0 in a 1:1 chat).
    pub fn new(
        messages: impl IntoIterator<Item = (&'a str, MsgId, u32, &'a str)>,
        digest_of: D,
    ) -> Self {
        Quotes {
            bodies: messages
                .into_iter()
                .map(|(author, id, epoch, body)| ((author, id), (epoch, body)))
                .collect(),
            digest_of,
        }
    }

    /// The quote for a reply referring to `r`, with the author named as the conversation names
    /// them; `outgoing` when the author is us. Our copy is shown only if it is the text the
    /// replier answered.
    pub fn view(&self, r: &StoredRef, author_name: String, outgoing: bool) -> QuoteView {
        let ours = self.bodies.get(&(r.author.as_str(), r.msg_id));
        let same = ours
            .filter(|(epoch, b)| (self.digest_of)(*epoch, b) == Some(r.digest))
            .map(|(_, b)| *b);
        QuoteView {
            msg_id: r.msg_id.to_hex(),
            author_peer_id: r.author.clone(),
            author_name,
            outgoing,
            body: same.map(snippet),
            differs: ours.is_some() && same.is_none(),
        }
    }
}

/// The quote shown with a reply we just sent: the message as we hold it (we just checked it).
pub fn quote_of_sent(r: &StoredRef, author_name: String, outgoing: bool, body: &str) -> QuoteView {
    QuoteView {
        msg_id: r.msg_id.to_hex(),
        author_peer_id: r.author.clone(),
        author_name,
        outgoing,
        body: Some(snippet(body)),
        differs: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn a_peer_id_gives_back_its_key() {
        let id = Identity::generate();
        let key = id.public().ed25519;
        assert_eq!(ed25519_of(&peer_id_of(&key).unwrap()), Some(key));
        assert_eq!(
            ed25519_of(&PeerId::random()),
            None,
            "not an Ed25519 peer id"
        );
    }

    /// A group reply's digest depends on the epoch key: without it (someone added later) a
    /// guess of the answered text cannot be checked against it.
    #[test]
    fn a_group_digest_needs_the_epoch_key() {
        let (k1, k2) = ([1; 32], [2; 32]);
        assert_eq!(group_digest(&k1, "yes"), group_digest(&k1, "yes"));
        assert_ne!(group_digest(&k1, "yes"), group_digest(&k2, "yes"));
        assert_ne!(group_digest(&k1, "yes"), digest("yes"));
    }

    #[test]
    fn a_quote_is_the_start_of_the_message() {
        assert_eq!(snippet("short"), "short");
        let long = "é".repeat(QUOTE_CHARS + 5);
        let s = snippet(&long);
        assert_eq!(s.chars().count(), QUOTE_CHARS + 1);
        assert!(s.ends_with('…'));
        assert_eq!(snippet(&"a".repeat(QUOTE_CHARS)), "a".repeat(QUOTE_CHARS));
    }

    #[test]
    fn a_quote_comes_only_from_its_author_in_this_conversation() {
        let id = MsgId::random();
        let quotes = Quotes::new([("ana", id, 0, "the real words")], |_, b: &str| {
            Some(digest(b))
        });
        let real = StoredRef {
            author: "ana".into(),
            msg_id: id,
            digest: digest("the real words"),
        };
        let v = quotes.view(&real, "Ana".into(), false);
        assert_eq!(
            (v.body.as_deref(), v.differs),
            (Some("the real words"), false)
        );
        // The same id under another author (a member reusing Ana's id) is not Ana's message.
        let other = StoredRef {
            author: "ben".into(),
            ..real.clone()
        };
        let v = quotes.view(&other, "Ben".into(), false);
        assert_eq!((v.body, v.differs), (None, false));
        assert_eq!(v.author_name, "Ben");
        // Ana gave the replier another text under that id than she gave us: ours is not shown
        // as the one answered.
        let other_text = StoredRef {
            digest: digest("what the replier saw"),
            ..real
        };
        let v = quotes.view(&other_text, "Ana".into(), false);
        assert_eq!((v.body, v.differs), (None, true));
    }
}
