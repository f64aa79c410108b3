//! Taking envelopes in — from gossip, from a member's relay, from a bucket read — through one
//! acceptance path, and the repair requests (`Want`) members send each other for holes.

use super::rules::{self, Checked};
use super::*;
use tracing::Instrument;

impl GroupChat {
    /// Checks and stores one envelope of epoch `ep`. `Ok(true)` if it was new.
    pub(super) async fn accept(
        &self,
        ep: &Epoch,
        bytes: &[u8],
        live: bool,
    ) -> Result<bool, ChatDrop> {
        let checked = self.check(ep, bytes)?;
        self.store(ep, vec![checked], live)
            .await
            .pop()
            .expect("one result per envelope")
    }

    /// The rules about the envelope itself ([`rules::admit`]).
    pub(super) fn check(&self, ep: &Epoch, bytes: &[u8]) -> Result<Checked, ChatDrop> {
        let _stage = tracing::trace_span!("stage.recv_verify_open").entered();
        rules::admit(ep, &self.me, bytes)
    }

    /// Stores checked envelopes of one sender (a bucket read passes a whole bucket) in one
    /// transaction: each is de-duplicated and bounded against the sender's cursor as it moves,
    /// the cursor is saved once. One commit for a bucket instead of one per message (every
    /// page written is encrypted, so commits are what catch-up pays for). Nothing is kept if the
    /// commit fails: the next read takes them all again. One result per envelope, in seq order.
    pub(super) async fn store(
        &self,
        ep: &Epoch,
        mut items: Vec<Checked>,
        live: bool,
    ) -> Vec<Result<bool, ChatDrop>> {
        let Some(first) = items.first() else {
            return Vec::new();
        };
        let peer = first.peer;
        if items.iter().any(|c| c.peer != peer) {
            // One sender's cursor per batch: anything else is a caller's mistake, refused whole.
            tracing::error!(group = %ep.gid, "a batch mixing senders was refused");
            return items
                .iter()
                .map(|_| Err(ChatDrop::Database(DbError::Query("mixed senders".into()))))
                .collect();
        }
        // In seq order, so the bound is measured from the cursor as it moves.
        items.sort_by_key(|c| c.header.seq);
        let sender = peer.to_string();
        let mut results: Vec<Result<bool, ChatDrop>> = Vec::with_capacity(items.len());
        let committed = async {
            let _guard = self.write.lock().await;
            let outcome: Result<(), ChatDrop> = async {
                let mut tx = self.db.write_tx().await.map_err(tx_err)?;
                let mut inbox = cs::inbox(&mut *tx, &ep.gid, ep.epoch, &sender).await?;
                let mut moved = false;
                for c in &items {
                    if let Err(refused) = rules::against_cursor(&inbox, c.header.seq) {
                        results.push(Err(refused));
                        continue;
                    }
                    let stored = cs::insert_message(
                        &mut tx,
                        &self.storage_key,
                        &NewMessage {
                            group: &ep.gid,
                            epoch: ep.epoch,
                            sender: &sender,
                            seq: c.header.seq,
                            msg_id: &c.header.msg_id,
                            sent_at: c.header.sent_at,
                            body: &c.body,
                            reply_to: c.reply_to.as_ref().and_then(ReplyRef::stored),
                            outgoing: false,
                            envelope: &c.bytes,
                        },
                    )
                    .await?;
                    // The seq is taken either way; a msg id this sender already used (same
                    // message again under another seq) is not stored twice.
                    inbox.processed(c.header.seq);
                    moved = true;
                    results.push(if stored {
                        Ok(true)
                    } else {
                        Err(ChatDrop::Duplicate)
                    });
                }
                if moved {
                    cs::save_inbox(&mut tx, &ep.gid, ep.epoch, &sender, &inbox).await?;
                    tx.commit().await.map_err(tx_err)?;
                }
                Ok(())
            }
            .await;
            outcome
        }
        .instrument(tracing::trace_span!("stage.recv_commit"))
        .await;
        if let Err(e) = committed {
            // Nothing of this batch is stored; each envelope reports why.
            let reason = match e {
                ChatDrop::Database(DbError::Query(q)) => q,
                other => other.to_string(),
            };
            return items
                .iter()
                .map(|_| Err(ChatDrop::Database(DbError::Query(reason.clone()))))
                .collect();
        }
        for (c, result) in items.iter().zip(&results) {
            if result.is_err() {
                continue;
            }
            if c.header.roster_hash != ep.roster_hash {
                let kind = if ep.epoch == 0 {
                    FlagKind::InvitationListDiffers
                } else {
                    FlagKind::RosterDiffers
                };
                self.groups
                    .flag_roster(&ep.group_id, c.header.sender, kind)
                    .await;
            }
            self.emit(ChatEvent::Received {
                group_id: ep.group_id,
                sender: c.peer,
                epoch: ep.epoch,
                seq: c.header.seq,
                live,
            });
        }
        results
    }

    /// Checks and stores an envelope of group `id` that came from anywhere (a relay by another
    /// member, a file, a test). Same rules as gossip and buckets.
    pub async fn ingest(&self, id: &str, bytes: &[u8]) -> Result<bool, ChatDrop> {
        envelope::outer(bytes)?;
        let group = self
            .group(id)
            .await
            .map_err(|_| ChatDrop::Envelope(GroupEnvelopeError::WrongGroup))?;
        // The epoch is inside the ciphertext: the envelope belongs to the epoch whose key
        // opens it (then `accept` checks that it also says so).
        let ep = epochs_of(&group)
            .into_iter()
            .rev()
            .find(|e| envelope::unseal(bytes, &e.key).is_ok())
            .ok_or(ChatDrop::Envelope(GroupEnvelopeError::Undecryptable))?;
        self.accept(&ep, bytes, false).await
    }

    /// A member asks us for envelopes it misses: answer with those we have, each as its own
    /// direct payload. Only members of that epoch are answered.
    pub async fn handle_want(self: &Arc<Self>, from: PeerId, bytes: &[u8]) {
        let Ok(want) = crate::codec::decode_bounded::<Want>(bytes, 4096) else {
            tracing::info!(%from, "dropped a malformed request for group envelopes");
            return;
        };
        if want.seqs.len() > MAX_WANT {
            tracing::info!(%from, "dropped an oversized request for group envelopes");
            return;
        }
        let ep = self
            .topics
            .lock()
            .await
            .values()
            .find(|e| e.group_id == want.group_id && e.epoch == want.epoch)
            .cloned();
        let Some(ep) = ep else {
            return;
        };
        let is_member = ep.senders.values().any(|(p, _, _)| *p == from);
        let Some((sender, _, _)) = ep.senders.get(&want.sender).filter(|_| is_member) else {
            tracing::info!(%from, group = %ep.gid, "refused a request for group envelopes from a non-member");
            return;
        };
        let allowed = self.wants.lock().await.allow(
            (from, want.group_id, want.epoch, want.sender),
            std::time::Instant::now(),
        );
        if !allowed {
            tracing::info!(%from, group = %ep.gid, "ignored a repeated request for group envelopes (rate limit)");
            return;
        }
        let sender = if want.sender == self.me {
            self.me_peer.clone()
        } else {
            sender.to_string()
        };
        let Ok(found) = cs::envelopes(self.db.pool(), &ep.gid, ep.epoch, &sender, &want.seqs).await
        else {
            return;
        };
        tracing::debug!(%from, group = %ep.gid, asked = want.seqs.len(), found = found.len(), "relaying group envelopes");
        for env in found {
            // The group id travels beside the envelope (which names no group outside its
            // ciphertext), on the direct channel between two members only.
            let mut payload = vec![TAG_RELAYED];
            payload.extend_from_slice(ep.group_id.as_slice());
            payload.extend_from_slice(&env);
            let client = self.client.clone();
            tokio::spawn(async move {
                let _ = client.send_direct(from, payload).await;
            });
        }
    }

    /// An envelope relayed by a member (`group id ‖ envelope`): same checks as any other.
    pub async fn handle_relayed(&self, from: PeerId, bytes: &[u8]) {
        let Some((gid, env)) = bytes.split_first_chunk::<16>() else {
            tracing::info!(%from, "dropped a malformed relayed group envelope");
            return;
        };
        match self.ingest(&hex(gid), env).await {
            Ok(_) | Err(ChatDrop::Duplicate) => {}
            Err(reason) => tracing::info!(%from, %reason, "dropped a relayed group envelope"),
        }
    }

    /// For every hole in a sender's seqs (later ones arrived, these did not), asks up to two
    /// connected members for the missing envelopes.
    pub(super) async fn ask_for_missing(&self) {
        let epochs: Vec<Epoch> = self.topics.lock().await.values().cloned().collect();
        for ep in epochs {
            let Ok(inboxes) = cs::inboxes(self.db.pool(), &ep.gid).await else {
                continue;
            };
            for (sender_text, epoch, inbox) in
                inboxes.into_iter().filter(|(_, e, _)| *e == ep.epoch)
            {
                let missing: Vec<u64> = inbox
                    .above
                    .iter()
                    .next_back()
                    .map(|&top| {
                        (inbox.cursor + 1..top)
                            .filter(|s| !inbox.above.contains(s))
                            .collect()
                    })
                    .unwrap_or_default();
                if missing.is_empty() {
                    continue;
                }
                // The newest holes first: they are the ones other members most likely still have.
                let seqs: Vec<u64> = missing.iter().rev().take(MAX_WANT).copied().collect();
                let Some((sender_key, _)) = ep
                    .senders
                    .iter()
                    .find(|(_, (p, _, _))| p.to_string() == sender_text)
                else {
                    continue;
                };
                let want = Want {
                    group_id: ep.group_id,
                    epoch,
                    sender: *sender_key,
                    seqs,
                };
                let mut payload = vec![TAG_WANT];
                payload.extend_from_slice(&crate::codec::encode(&want));
                let mut asked = 0;
                for (k, (peer, _, _)) in &ep.senders {
                    if asked == 2 || *k == self.me {
                        continue;
                    }
                    if self.client.is_connected(*peer).await.unwrap_or(false) {
                        let (client, peer, payload) = (self.client.clone(), *peer, payload.clone());
                        tokio::spawn(async move {
                            let _ = client.send_direct(peer, payload).await;
                        });
                        asked += 1;
                    }
                }
                if asked > 0 {
                    tracing::debug!(group = %ep.gid, sender = %sender_text, missing = missing.len(), asked, "asked members for missing envelopes");
                }
            }
        }
    }

    /// A gossip message on one of our topics: validate, store, report the verdict.
    pub async fn handle_gossip(
        &self,
        source: PeerId,
        message_id: Vec<u8>,
        topic: String,
        data: Vec<u8>,
    ) {
        let ep = self.topics.lock().await.get(&topic).cloned();
        let verdict = match ep {
            // The node joined it, we are leaving it: nobody's fault.
            None => Verdict::Ignore,
            Some(ep) => match self.accept(&ep, &data, true).await {
                Ok(_) => Verdict::Accept,
                Err(ChatDrop::Duplicate) => self.duplicate_verdict(&ep, &data).await,
                Err(ChatDrop::Database(e)) => {
                    tracing::warn!(error = %e, "cannot store a group message; the bucket has it");
                    Verdict::Ignore
                }
                Err(reason) => {
                    tracing::info!(group = %ep.gid, from = %source, %reason, "dropped a group message");
                    gossip_verdict(&ep, &reason)
                }
            },
        };
        self.client.validate(message_id, source, verdict).await;
    }

    /// A message we already have: the very bytes we stored are passed on (others may not have
    /// it yet, e.g. when we got it from a bucket first); another copy of the same sender's seq
    /// (re-sealed, other bytes) is not forwarded, and is not the forwarder's fault.
    pub(super) async fn duplicate_verdict(&self, ep: &Epoch, data: &[u8]) -> Verdict {
        let Ok(inner) = envelope::unseal(data, &ep.key) else {
            return Verdict::Ignore;
        };
        let Some(sender) = peer_id_of(&inner.header.sender) else {
            return Verdict::Ignore;
        };
        let stored = cs::envelopes(
            self.db.pool(),
            &ep.gid,
            ep.epoch,
            &sender.to_string(),
            &[inner.header.seq],
        )
        .await
        .unwrap_or_default();
        if stored.first().is_some_and(|e| e.as_slice() == data) {
            Verdict::Accept
        } else {
            Verdict::Ignore
        }
    }
}
