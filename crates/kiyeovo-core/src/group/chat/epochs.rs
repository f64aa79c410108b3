//! Which key epochs of a group a member uses, and how (PROTOCOL.md §5): who may write in each,
//! with which bucket keys, whether it is still live, and the gossip verdict for a refusal.

use super::*;

/// One key epoch of one group, as this member uses it.
#[derive(Clone)]
pub(super) struct Epoch {
    pub(super) group_id: GroupId,
    pub(super) gid: String,
    pub(super) epoch: u32,
    pub(super) key: GroupKey,
    pub(super) topic: String,
    /// Who may write: identity key → (peer id, name, bucket verifying key).
    pub(super) senders: BTreeMap<MemberKey, (PeerId, String, [u8; 32])>,
    pub(super) my_seed: GroupKey,
    pub(super) roster_hash: [u8; 32],
    /// Whether we subscribe to this epoch's topic and write in it: the window until
    /// establishment, then the newest epoch while we are a member.
    pub(super) live: bool,
    /// Whether we read its buckets: live, or ended less than [`READ_ENDED_EPOCHS_MS`] ago. The
    /// window (epoch 0) closes at establishment: afterwards its key only opens what we hold.
    pub(super) polled: bool,
    /// Envelopes claiming a later `sent_at` are refused (epoch 0: the window's end).
    pub(super) sent_until: Option<u64>,
    /// No new envelope is taken (the window after establishment): its key only names who
    /// wrote what we already have.
    pub(super) closed: bool,
    /// Members gone at the end of this epoch: the last seq each may have used in it.
    pub(super) boundaries: BTreeMap<MemberKey, u64>,
    /// Every epoch whose envelopes share our bucket with this one (established epochs share
    /// one bucket per member), with its key: writing the bucket keeps them all.
    pub(super) shared: Vec<(u32, GroupKey)>,
}

/// How long the buckets of an ended epoch are still read: as long as storing nodes keep a
/// record (its last envelopes may still be on their way to us).
pub const READ_ENDED_EPOCHS_MS: u64 = 7 * 24 * 3600 * 1000;

/// How gossip validation reports a refused message. Reject costs the peer that forwarded it
/// (peer scoring), so it is kept for what no honest peer forwards: bad cryptography or format,
/// a non-member in an established epoch, a window message dated after the window. Refusals that
/// depend on what *we* know yet (a roster update still on its way during the window, a cursor
/// far behind after an absence) are ignored instead.
pub(super) fn gossip_verdict(ep: &Epoch, reason: &ChatDrop) -> Verdict {
    match reason {
        ChatDrop::NotAMember if ep.epoch == 0 => Verdict::Ignore,
        // A member who has not yet learned of a removal still forwards the removed member's
        // last words: not its fault.
        ChatDrop::BeyondBoundary { .. }
        | ChatDrop::AfterBoundary { .. }
        | ChatDrop::Duplicate
        | ChatDrop::Database(_) => Verdict::Ignore,
        // A layout newer than ours, from a member who upgraded first (as replies are v3): not
        // the forwarder's fault, so not held against it.
        ChatDrop::Envelope(GroupEnvelopeError::UnknownVersion(v))
            if *v > crate::group::envelope::GROUP_ENVELOPE_VERSION =>
        {
            Verdict::Ignore
        }
        ChatDrop::Envelope(_)
        | ChatDrop::NotAMember
        | ChatDrop::AfterWindow { .. }
        | ChatDrop::WindowClosed => Verdict::Reject,
    }
}

/// The topic name only members can compute (PROTOCOL.md §5).
pub fn topic_for(group_id: &GroupId, key: &GroupKey) -> String {
    let mut h = Sha256::new();
    h.update(b"kiyeovo/v1/topic");
    h.update(group_id);
    h.update(key.0);
    hex(h.finalize())
}

pub(super) fn epochs_of(g: &Group) -> Vec<Epoch> {
    let gid = hex(g.group_id);
    let mut out = Vec::new();
    let in_window = matches!(g.status, Status::Inviting | Status::Accepted);
    let established = g.status == Status::Active;
    if let (true, Some(my_seed)) = (in_window || established, &g.window_seed) {
        let temp = &g.invite.temp_key;
        // Window messages come from the creator and those who accepted, and nobody else: not
        // from an invitee who rejected or never answered, even though it holds the temporary
        // key (PROTOCOL.md §4.5). Once established, the members *are* those who accepted.
        let accepted = |id: &MemberKey| {
            *id == g.creator
                // We know our own answer before the creator's roster says it back.
                || (*id == g.me && g.my_response.as_ref().is_some_and(|r| r.accept))
                || if established {
                    g.epochs.first().is_some_and(|e| e.members.iter().any(|m| m.id == *id))
                } else {
                    g.statuses.get(id) == Some(&InviteeStatus::Accepted)
                }
        };
        let mut senders = BTreeMap::new();
        let people = std::iter::once((g.creator, g.invite.creator_name.clone()))
            .chain(g.invite.invitees.iter().map(|p| (p.id, p.name.clone())));
        for (id, name) in people.filter(|(id, _)| accepted(id)) {
            // Every acceptor's window bucket key came with its signed acceptance.
            if let (Some(peer), Some(bucket)) = (peer_id_of(&id), g.window_buckets.get(&id)) {
                senders.insert(id, (peer, name, *bucket));
            }
        }
        out.push(Epoch {
            group_id: g.group_id,
            gid: gid.clone(),
            epoch: 0,
            key: temp.clone(),
            topic: topic_for(&g.group_id, temp),
            senders,
            my_seed: my_seed.clone(),
            // The window's "roster" is the invitation: members shown different ones notice.
            roster_hash: g.list_hash(),
            live: in_window,
            polled: in_window,
            sent_until: Some(g.invite.expires_at.saturating_add(CLOCK_SKEW_MS)),
            closed: established,
            boundaries: BTreeMap::new(),
            // The window bucket is its own record.
            shared: vec![(0, temp.clone())],
        });
    }
    // Established epochs share our one group bucket (PROTOCOL.md §4.3: the envelopes carry their
    // epoch inside), so writing any of them keeps the others' envelopes.
    let shared: Vec<(u32, GroupKey)> = g.epochs.iter().map(|e| (e.epoch, e.key.clone())).collect();
    let now = crate::time::now_ms();
    if let Some(seed) = &g.bucket_seed {
        for (i, e) in g.epochs.iter().enumerate() {
            if g.life.left_in.is_some_and(|left| e.epoch > left) {
                // Followed only until the admin writes us out: not ours to read.
                continue;
            }
            let current = i + 1 == g.epochs.len() && g.status == Status::Active;
            // An ended epoch is still read while its buckets can hold something new for us.
            let recent = e
                .ended_at
                .is_none_or(|end| now.saturating_sub(end) < READ_ENDED_EPOCHS_MS);
            let senders = e
                .members
                .iter()
                .filter_map(|m| Some((m.id, (peer_id_of(&m.id)?, m.name.clone(), m.bucket_pub))))
                .collect();
            out.push(Epoch {
                group_id: g.group_id,
                gid: gid.clone(),
                epoch: e.epoch,
                key: e.key.clone(),
                topic: topic_for(&g.group_id, &e.key),
                senders,
                my_seed: seed.clone(),
                roster_hash: roster_hash(&g.group_id, e.epoch, &e.members),
                live: current,
                polled: current || recent,
                sent_until: None,
                closed: false,
                boundaries: e.boundaries.clone(),
                shared: shared.clone(),
            });
        }
    }
    out
}

/// The epoch a member writes in now, if any: the established epoch, or the window for the
/// creator and acceptors.
pub(super) fn writable(g: &Group) -> Option<Epoch> {
    let can = match g.status {
        Status::Active => true,
        Status::Left | Status::Removed | Status::Disbanded => false,
        Status::Inviting => true,
        Status::Accepted => !g.window_over(crate::time::now_ms()),
        _ => false,
    };
    if !can {
        return None;
    }
    epochs_of(g).pop()
}
