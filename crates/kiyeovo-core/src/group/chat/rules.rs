//! The acceptance rules of PROTOCOL.md §5 for one group envelope, as pure functions (no
//! database, no clock): whatever path an envelope comes by — gossip, a member's relay, a bucket
//! read — it is taken only if [`admit`] and then [`against_cursor`] say so.
//!
//! | rule | refusal |
//! |---|---|
//! | opens with the epoch's key, names this group and epoch, sender's signature verifies | `Envelope(..)` |
//! | the sender writes in this epoch (creator and acceptors in the window; the roster after) | `NotAMember` |
//! | the window is still taking messages (not after establishment) | `WindowClosed` |
//! | a window message is dated inside the window (+ clock allowance) | `AfterWindow` |
//! | a member gone at the end of the epoch wrote at most up to its boundary | `AfterBoundary` |
//! | not our own envelope coming back | `Duplicate` |
//! | not already taken from this sender in this epoch (cursor and seqs above it) | `Duplicate` |
//! | at most [`MAX_SEQ_AHEAD`] beyond the sender's cursor | `BeyondBoundary` |

use libp2p::PeerId;

use super::{ChatDrop, Epoch, MAX_SEQ_AHEAD};
use crate::delivery::inbox::{Arrival, Inbox};
use crate::group::control::MemberKey;
use crate::group::envelope::{self, GroupHeader};
use crate::reply::ReplyRef;

/// An envelope that passed every rule that needs no cursor.
pub(crate) struct Checked {
    pub(crate) peer: PeerId,
    pub(crate) header: GroupHeader,
    pub(crate) body: String,
    pub(crate) reply_to: Option<ReplyRef>,
    pub(crate) bytes: Vec<u8>,
}

/// The rules about the envelope itself and the epoch it is for; `me` is our identity key.
pub(crate) fn admit(ep: &Epoch, me: &MemberKey, bytes: &[u8]) -> Result<Checked, ChatDrop> {
    let envelope::GroupInner {
        header,
        body,
        reply_to,
        ..
    } = envelope::open(bytes, &ep.group_id, ep.epoch, &ep.key)?;
    let (peer, _, _) = ep.senders.get(&header.sender).ok_or(ChatDrop::NotAMember)?;
    if ep.closed {
        // An acceptor could otherwise still add backdated window messages.
        return Err(ChatDrop::WindowClosed);
    }
    if let Some(end) = ep.sent_until.filter(|end| header.sent_at > *end) {
        return Err(ChatDrop::AfterWindow {
            sent_at: header.sent_at,
            end,
        });
    }
    // PROTOCOL.md §4.9: a member gone at the end of this epoch wrote up to its boundary.
    if let Some(boundary) = ep
        .boundaries
        .get(&header.sender)
        .filter(|b| header.seq > **b)
    {
        return Err(ChatDrop::AfterBoundary {
            seq: header.seq,
            boundary: *boundary,
        });
    }
    if header.sender == *me {
        // Our own envelope coming back (another session of ours, or a relay): already stored
        // when it was sent from here.
        return Err(ChatDrop::Duplicate);
    }
    Ok(Checked {
        peer: *peer,
        header,
        body,
        reply_to,
        bytes: bytes.to_vec(),
    })
}

/// The rules about where the sender's messages stand with us: taken once, and not so far ahead
/// that one envelope would write off everything in between.
pub(crate) fn against_cursor(inbox: &Inbox, seq: u64) -> Result<(), ChatDrop> {
    if inbox.check(seq) == Arrival::Duplicate {
        return Err(ChatDrop::Duplicate);
    }
    if seq > inbox.cursor.saturating_add(MAX_SEQ_AHEAD) {
        return Err(ChatDrop::BeyondBoundary {
            seq,
            cursor: inbox.cursor,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::group::control::{random_id, GroupId, GroupKey};
    use crate::group::envelope::{GroupEnvelopeError, Sealing};
    use crate::identity::Identity;

    struct World {
        ana: Identity,
        ben: Identity,
        stranger: Identity,
        key: GroupKey,
        group_id: GroupId,
    }

    impl World {
        fn new() -> World {
            World {
                ana: Identity::generate(),
                ben: Identity::generate(),
                stranger: Identity::generate(),
                key: GroupKey::random(),
                group_id: random_id(),
            }
        }

        /// Epoch `epoch` with Ana and Ben as its senders.
        fn epoch(&self, epoch: u32) -> Epoch {
            let senders = [&self.ana, &self.ben]
                .iter()
                .map(|i| (i.public().ed25519, (i.peer_id(), "x".to_string(), [1; 32])))
                .collect::<BTreeMap<_, _>>();
            Epoch {
                group_id: self.group_id,
                gid: String::new(),
                epoch,
                key: self.key.clone(),
                topic: String::new(),
                senders,
                my_seed: GroupKey::random(),
                roster_hash: [0; 32],
                live: true,
                polled: true,
                sent_until: None,
                closed: false,
                boundaries: BTreeMap::new(),
                shared: Vec::new(),
            }
        }

        fn sealed(&self, who: &Identity, epoch: u32, seq: u64, sent_at: u64) -> Vec<u8> {
            envelope::seal(
                &Sealing {
                    identity: who,
                    key: &self.key,
                    group_id: self.group_id,
                    epoch,
                    seq,
                    msg_id: random_id(),
                    sent_at,
                    roster_hash: [0; 32],
                },
                "hello",
            )
            .unwrap()
        }
    }

    #[test]
    fn table_of_admissions_and_refusals() {
        let w = World::new();
        let me = w.ben.public().ed25519;
        let ep = w.epoch(1);
        let window = Epoch {
            sent_until: Some(1_000),
            ..w.epoch(0)
        };
        let closed = Epoch {
            closed: true,
            ..w.epoch(0)
        };
        let other_key = Epoch {
            key: GroupKey::random(),
            ..w.epoch(1)
        };
        // Ana was removed at the end of epoch 1 after her seq 3.
        let bounded = Epoch {
            boundaries: BTreeMap::from([(w.ana.public().ed25519, 3)]),
            ..w.epoch(1)
        };
        type Case<'a> = (
            &'a str,
            &'a Epoch,
            Vec<u8>,
            fn(&Result<Checked, ChatDrop>) -> bool,
        );
        let cases: Vec<Case> = vec![
            ("a member's envelope", &ep, w.sealed(&w.ana, 1, 1, 5), |r| {
                r.as_ref()
                    .is_ok_and(|c| c.header.seq == 1 && c.body == "hello")
            }),
            (
                "from a non-member, well signed",
                &ep,
                w.sealed(&w.stranger, 1, 1, 5),
                |r| matches!(r, Err(ChatDrop::NotAMember)),
            ),
            (
                "a departed member's last words, at its boundary",
                &bounded,
                w.sealed(&w.ana, 1, 3, 5),
                |r| r.is_ok(),
            ),
            (
                "a departed member's words after its boundary",
                &bounded,
                w.sealed(&w.ana, 1, 4, 5),
                |r| {
                    matches!(
                        r,
                        Err(ChatDrop::AfterBoundary {
                            seq: 4,
                            boundary: 3
                        })
                    )
                },
            ),
            ("our own coming back", &ep, w.sealed(&w.ben, 1, 1, 5), |r| {
                matches!(r, Err(ChatDrop::Duplicate))
            }),
            ("for another epoch", &ep, w.sealed(&w.ana, 2, 1, 5), |r| {
                matches!(r, Err(ChatDrop::Envelope(_)))
            }),
            (
                "under another key",
                &other_key,
                w.sealed(&w.ana, 1, 1, 5),
                |r| {
                    matches!(
                        r,
                        Err(ChatDrop::Envelope(GroupEnvelopeError::Undecryptable))
                    )
                },
            ),
            ("garbage", &ep, vec![0xff; 64], |r| {
                matches!(r, Err(ChatDrop::Envelope(_)))
            }),
            (
                "a window message inside the window",
                &window,
                w.sealed(&w.ana, 0, 1, 999),
                |r| r.is_ok(),
            ),
            (
                "a window message dated after it",
                &window,
                w.sealed(&w.ana, 0, 1, 1_001),
                |r| {
                    matches!(
                        r,
                        Err(ChatDrop::AfterWindow {
                            sent_at: 1_001,
                            end: 1_000
                        })
                    )
                },
            ),
            (
                "a window message after establishment",
                &closed,
                w.sealed(&w.ana, 0, 1, 5),
                |r| matches!(r, Err(ChatDrop::WindowClosed)),
            ),
        ];
        for (name, ep, bytes, expected) in cases {
            let got = admit(ep, &me, &bytes);
            assert!(
                expected(&got),
                "{name}: {:?}",
                got.err().map(|e| e.to_string())
            );
        }
    }

    #[test]
    fn the_cursor_takes_each_seq_once_and_bounds_how_far_ahead() {
        let mut inbox = Inbox::default();
        assert!(against_cursor(&inbox, 1).is_ok());
        inbox.processed(1);
        assert!(matches!(
            against_cursor(&inbox, 1),
            Err(ChatDrop::Duplicate)
        ));
        assert!(matches!(
            against_cursor(&inbox, 0),
            Err(ChatDrop::Duplicate)
        ));
        assert!(against_cursor(&inbox, 1 + MAX_SEQ_AHEAD).is_ok());
        assert!(matches!(
            against_cursor(&inbox, 2 + MAX_SEQ_AHEAD),
            Err(ChatDrop::BeyondBoundary { cursor: 1, .. })
        ));
        assert!(matches!(
            against_cursor(&inbox, u64::MAX),
            Err(ChatDrop::BeyondBoundary { .. })
        ));
        inbox.processed(5);
        assert!(matches!(
            against_cursor(&inbox, 5),
            Err(ChatDrop::Duplicate)
        ));
        assert!(against_cursor(&inbox, 3).is_ok());
    }

    /// Gossip scoring: an envelope of a newer layout than ours (a member upgraded first) costs
    /// its forwarder nothing; an older unknown one, or a bad one, still does.
    #[test]
    fn a_newer_layout_is_ignored_not_punished() {
        use crate::group::chat::epochs::gossip_verdict;
        use crate::node::Verdict;
        let w = World::new();
        let ep = w.epoch(1);
        let newer = ChatDrop::Envelope(GroupEnvelopeError::UnknownVersion(
            envelope::GROUP_ENVELOPE_VERSION + 1,
        ));
        assert!(matches!(gossip_verdict(&ep, &newer), Verdict::Ignore));
        let older = ChatDrop::Envelope(GroupEnvelopeError::UnknownVersion(1));
        assert!(matches!(gossip_verdict(&ep, &older), Verdict::Reject));
        let bad = ChatDrop::Envelope(GroupEnvelopeError::BadSignature);
        assert!(matches!(gossip_verdict(&ep, &bad), Verdict::Reject));
    }
}
