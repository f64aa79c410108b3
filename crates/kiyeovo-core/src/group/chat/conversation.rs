//! The user's side of a group conversation: sending (local commit first, then live and
//! bucket in the background) and the conversation view with its gaps.

use super::*;
use crate::ids::MsgId;
use tracing::Instrument;

/// How often a message nobody was subscribed to is published again (about 15 s in all).
const LIVE_RETRIES: usize = 10;

/// The key of `epoch` as this member holds it (the window's temporary key for epoch 0).
fn epoch_key(group: &Group, epoch: u32) -> Option<&GroupKey> {
    if epoch == 0 {
        return Some(&group.invite.temp_key);
    }
    group
        .epochs
        .iter()
        .find(|e| e.epoch == epoch)
        .map(|e| &e.key)
}

impl GroupChat {
    /// Sends a message to the group.
    pub async fn send(
        self: &Arc<Self>,
        id: &str,
        body: &str,
    ) -> Result<GroupMessageView, ChatError> {
        self.send_reply(id, body, None).await
    }

    /// Sends a message to the group, answering `reply_to` (a message of this group) if given.
    pub async fn send_reply(
        self: &Arc<Self>,
        id: &str,
        body: &str,
        reply_to: Option<&ReplyTarget>,
    ) -> Result<GroupMessageView, ChatError> {
        if body.trim().is_empty() {
            return Err(ChatError::Empty);
        }
        // Only a message we hold in this group can be answered: its author's key goes on the
        // wire, its text stays here (`crate::reply`).
        let reply = match reply_to {
            None => None,
            Some(t) => {
                let gid = parse_group_id(id).ok_or(ChatError::UnknownGroup)?;
                let msg_id = MsgId::from_hex(&t.msg_id).ok_or(ChatError::UnknownMessage)?;
                let author = t
                    .author_peer_id
                    .parse::<PeerId>()
                    .ok()
                    .and_then(|p| reply::ed25519_of(&p))
                    .ok_or(ChatError::UnknownMessage)?;
                let (quoted, epoch) = cs::quotable(
                    self.db.pool(),
                    &self.storage_key,
                    &hex(gid),
                    &t.author_peer_id,
                    &msg_id,
                )
                .await?
                .ok_or(ChatError::UnknownMessage)?;
                let group = self.group(id).await?;
                let key = epoch_key(&group, epoch).ok_or(ChatError::UnknownMessage)?;
                let digest = reply::group_digest(&key.0, &quoted);
                Some((
                    ReplyRef {
                        author,
                        msg_id,
                        digest,
                    },
                    quoted,
                ))
            }
        };
        let reply_ref = reply.as_ref().map(|(r, _)| *r);
        let msg_id = crate::group::control::random_id();
        let sent_at = now_ms();
        let mut tries = 0;
        let (ep, sealed, seq) = loop {
            // Spans named `stage.*` time one delivery's steps (the bench's breakdown; nothing
            // when no subscriber asks for trace level).
            let committed = async {
                let _guard = self.write.lock().await;
                // The epoch as it is under the lock: a re-seal into a new epoch is not overtaken.
                let group = self.group(id).await?;
                let ep = writable(&group).ok_or(ChatError::NotAMember)?;
                // After a restore our numbering in this epoch may be unknown: learned outside
                // the lock (it reads the DHT), then tried again.
                if !cs::out_seq_known(self.db.pool(), &ep.gid, ep.epoch).await? {
                    return Ok(Err(ep));
                }
                let mut tx = self.db.write_tx().await.map_err(tx_err)?;
                let (sealed, seq) = self
                    .commit_own(&mut tx, &ep, msg_id, sent_at, body, reply_ref)
                    .await?;
                tx.commit().await.map_err(tx_err)?;
                Ok::<_, ChatError>(Ok((ep, sealed, seq)))
            }
            .instrument(tracing::trace_span!("stage.send_seal_commit"))
            .await?;
            match committed {
                Ok(done) => break done,
                Err(ep) if tries < 3 => {
                    tries += 1;
                    self.ensure_seq_known(&ep).await?;
                }
                Err(_) => return Err(ChatError::Node(crate::node::NodeError::Unreachable)),
            }
        };
        let published = self
            .go_out(&ep, sealed, msg_id)
            .instrument(tracing::trace_span!("stage.send_publish"))
            .await?;
        self.emit(ChatEvent::Changed {
            group_id: ep.group_id,
        });
        Ok(GroupMessageView {
            msg_id: hex(msg_id),
            epoch: ep.epoch,
            sender_peer_id: self.me_peer.clone(),
            sender_name: "You".into(),
            outgoing: true,
            body: body.to_string(),
            sent_at,
            seq,
            published,
            stored: false,
            order_uncertain: false,
            reply_to: match (reply, reply_to) {
                (Some((r, quoted)), Some(t)) => {
                    let outgoing = t.author_peer_id == self.me_peer;
                    let group = self.group(id).await?;
                    let name = self.quoted_name(&self.names(&group).await, &t.author_peer_id);
                    r.stored()
                        .map(|s| reply::quote_of_sent(&s, name, outgoing, &quoted))
                }
                _ => None,
            },
        })
    }

    /// Seals our message `body` as our next seq in `ep` and commits it (outbox and conversation)
    /// in `tx`. Returns the envelope and its seq.
    async fn commit_own(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        ep: &Epoch,
        msg_id: MsgId,
        sent_at: u64,
        body: &str,
        reply_to: Option<ReplyRef>,
    ) -> Result<(Vec<u8>, u64), ChatError> {
        let seq = cs::next_out_seq(tx, &ep.gid, ep.epoch).await?;
        let sealed = envelope::seal_reply(
            &Sealing {
                identity: &self.identity,
                key: &ep.key,
                group_id: ep.group_id,
                epoch: ep.epoch,
                seq,
                msg_id,
                sent_at,
                roster_hash: ep.roster_hash,
            },
            body,
            reply_to,
        )?;
        cs::push_outbox(tx, &ep.gid, ep.epoch, seq, &sealed).await?;
        cs::insert_message(
            tx,
            &self.storage_key,
            &NewMessage {
                group: &ep.gid,
                epoch: ep.epoch,
                sender: &self.me_peer,
                seq,
                msg_id: &msg_id,
                sent_at,
                body,
                reply_to: reply_to.as_ref().and_then(ReplyRef::stored),
                outgoing: true,
                envelope: &sealed,
            },
        )
        .await?;
        Ok((sealed, seq))
    }

    /// A committed message of ours goes out: live on the topic (again in the background if
    /// nobody is on it yet), and into our bucket. Returns whether it was published live.
    async fn go_out(
        self: &Arc<Self>,
        ep: &Epoch,
        sealed: Vec<u8>,
        msg_id: MsgId,
    ) -> Result<bool, ChatError> {
        let published = match self.client.publish(ep.topic.clone(), sealed.clone()).await {
            Ok(()) => {
                cs::mark_published(self.db.pool(), &ep.gid, &self.me_peer, &msg_id).await?;
                true
            }
            // Nobody on the topic yet. Right after a membership change that is the normal
            // case: members join the new epoch's topic as its version reaches them, a moment
            // after us. Published again in the background while they arrive; the bucket
            // carries it to anyone who stays away.
            Err(e) => {
                tracing::debug!(group = %ep.gid, error = %e, "not published live yet");
                self.republish_live(ep, sealed, msg_id);
                false
            }
        };
        self.schedule_publish(ep).await;
        Ok(published)
    }

    /// Our messages still unsent in an earlier epoch when a new one began for us (written while
    /// we could not reach anyone, before we learned of the change) go out in the new epoch
    /// instead: sealed again under its key with our next seq there, the same message id (so a
    /// member who somehow has the old copy keeps one) and the time they were written. Someone
    /// removed meanwhile never gets them; someone added meanwhile does.
    pub async fn reseal_unsent(self: &Arc<Self>, group: &Group) -> Result<usize, ChatError> {
        let Some(ep) = writable(group) else {
            return Ok(0);
        };
        self.ensure_seq_known(&ep).await?;
        let mut out = Vec::new();
        {
            let _guard = self.write.lock().await;
            let mut tx = self.db.write_tx().await.map_err(tx_err)?;
            // Only from epochs we stayed in up to now, without a gap (the window counts as
            // the epoch before the first): never across a time we were out of the group —
            // what we wrote then was meant for the members of then.
            let held: Vec<u32> = group.epochs.iter().map(|e| e.epoch).collect();
            let contiguous = |from: u32| (from.max(1)..=ep.epoch).all(|k| held.contains(&k));
            let older = std::iter::once(0).chain(held.iter().copied());
            for epoch in older.filter(|e| *e < ep.epoch && contiguous(*e)) {
                let tail = cs::unsent_tail(
                    self.db.pool(),
                    &self.storage_key,
                    &ep.gid,
                    epoch,
                    &self.me_peer,
                )
                .await?;
                for (seq, msg_id, sent_at, body, reply_to) in tail {
                    if !cs::take_back_unsent(&mut tx, &ep.gid, epoch, seq, &msg_id).await? {
                        continue;
                    }
                    // A reply stays a reply to the same message.
                    let reply_to = reply_to.as_ref().and_then(StoredRef::wire);
                    let (sealed, _) = self
                        .commit_own(&mut tx, &ep, msg_id, sent_at, &body, reply_to)
                        .await?;
                    out.push((sealed, msg_id));
                }
            }
            tx.commit().await.map_err(tx_err)?;
        }
        let n = out.len();
        if n > 0 {
            tracing::info!(group = %ep.gid, epoch = ep.epoch, n, "unsent messages sealed again in the new epoch");
        }
        for (sealed, msg_id) in out {
            self.go_out(&ep, sealed, msg_id).await?;
        }
        if n > 0 {
            self.emit(ChatEvent::Changed {
                group_id: ep.group_id,
            });
        }
        Ok(n)
    }

    /// Tries to publish `sealed` on `ep`'s topic again for a few seconds (see [`Self::send`]).
    fn republish_live(self: &Arc<Self>, ep: &Epoch, sealed: Vec<u8>, msg_id: MsgId) {
        let (this, topic, gid, group_id) =
            (self.clone(), ep.topic.clone(), ep.gid.clone(), ep.group_id);
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(100);
            for _ in 0..LIVE_RETRIES {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
                if this
                    .client
                    .publish(topic.clone(), sealed.clone())
                    .await
                    .is_ok()
                {
                    let _ = cs::mark_published(this.db.pool(), &gid, &this.me_peer, &msg_id).await;
                    this.emit(ChatEvent::Changed { group_id });
                    return;
                }
            }
        });
    }

    /// The conversation, with gaps where they are.
    /// Everyone this group ever named by peer id: who invited us (the creator, or the admin of
    /// an add round) and the invitees, then the members of every epoch we hold — also of our
    /// earlier copy while an invitation back is pending — the admin-signed rosters last so they
    /// win; each by the user's own name for them if they are a contact. Only them: a quote
    /// naming someone else must not borrow a contact's name (as if they were in the group).
    async fn names(&self, group: &Group) -> HashMap<String, String> {
        let previous = group.joining.as_ref().and_then(|j| j.previous.as_deref());
        let copies: Vec<&Group> = previous.into_iter().chain(std::iter::once(group)).collect();
        let invited = copies.iter().flat_map(|g| {
            std::iter::once((g.inviter(), g.invite.creator_name.clone()))
                .chain(g.invite.invitees.iter().map(|p| (p.id, p.name.clone())))
        });
        let rosters = copies.iter().flat_map(|g| {
            g.epochs
                .iter()
                .flat_map(|e| e.members.iter().map(|m| (m.id, m.name.clone())))
        });
        let mut names: HashMap<String, String> = invited
            .chain(rosters)
            .filter_map(|(id, n)| Some((peer_id_of(&id)?.to_string(), n)))
            .collect();
        // Contacts by the user's own name for them, whatever the group called them.
        for (id, n) in self.groups.names().await {
            if let Some(slot) = peer_id_of(&id).and_then(|p| names.get_mut(&p.to_string())) {
                *slot = n;
            }
        }
        names
    }

    /// How a quote names the author of the message it answers.
    fn quoted_name(&self, names: &HashMap<String, String>, author: &str) -> String {
        if author == self.me_peer {
            "You".into()
        } else {
            names
                .get(author)
                .cloned()
                .unwrap_or_else(|| "someone not known in this group".into())
        }
    }

    pub async fn chat(&self, id: &str) -> Result<GroupChatView, ChatError> {
        let group = self.group(id).await?;
        let gid = hex(group.group_id);
        let names = self.names(&group).await;
        let name = |peer: &str| {
            names
                .get(peer)
                .cloned()
                .unwrap_or_else(|| "former member".into())
        };
        let stored = cs::messages(self.db.pool(), &self.storage_key, &gid).await?;
        // Quotes come from this group's own messages only.
        let mut quote_of: HashMap<(String, MsgId), crate::api::QuoteView> = {
            let q = reply::Quotes::new(
                stored
                    .iter()
                    .map(|m| (m.sender.as_str(), m.msg_id, m.epoch, m.body.as_str())),
                |epoch, body: &str| {
                    epoch_key(&group, epoch).map(|k| reply::group_digest(&k.0, body))
                },
            );
            stored
                .iter()
                .filter_map(|m| {
                    let r = m.reply_to.as_ref()?;
                    let author = self.quoted_name(&names, &r.author);
                    let outgoing = r.author == self.me_peer;
                    Some(((m.sender.clone(), m.msg_id), q.view(r, author, outgoing)))
                })
                .collect()
        };
        let messages = crate::group::order::order(stored)
            .into_iter()
            .map(|(m, order_uncertain)| GroupMessageView {
                reply_to: quote_of.remove(&(m.sender.clone(), m.msg_id)),
                order_uncertain,
                msg_id: hex(m.msg_id),
                epoch: m.epoch,
                sender_name: if m.outgoing {
                    "You".into()
                } else {
                    name(&m.sender)
                },
                sender_peer_id: m.sender,
                outgoing: m.outgoing,
                body: m.body,
                sent_at: m.sent_at,
                seq: m.seq,
                published: m.published,
                stored: m.stored,
            })
            .collect();
        let mut gaps: Vec<GroupGapView> = cs::missed(self.db.pool(), &gid)
            .await?
            .into_iter()
            .map(|(sender, epoch, before_seq, count)| GroupGapView {
                sender_name: name(&sender),
                sender_peer_id: sender,
                epoch,
                before_seq,
                count,
                lost: true,
            })
            .collect();
        // Holes above a cursor: seqs we have not got although later ones arrived.
        for (sender, epoch, inbox) in cs::inboxes(self.db.pool(), &gid).await? {
            let mut expected = inbox.cursor + 1;
            for &seq in &inbox.above {
                if seq > expected {
                    gaps.push(GroupGapView {
                        sender_name: name(&sender),
                        sender_peer_id: sender.clone(),
                        epoch,
                        before_seq: seq,
                        count: seq - expected,
                        lost: false,
                    });
                }
                expected = seq + 1;
            }
        }
        let current = writable(&group);
        let bucket_fill = match &current {
            Some(ep) => cs::own(self.db.pool(), &gid, ep.epoch).await?.0,
            None => 0,
        };
        // Members of the current epoch with no open connection: they read our bucket later.
        let mut away_members = Vec::new();
        if let Some(ep) = &current {
            for (k, (peer, name, _)) in &ep.senders {
                if *k != self.me && !self.client.is_connected(*peer).await.unwrap_or(false) {
                    away_members.push(name.clone());
                }
            }
        }
        Ok(GroupChatView {
            messages,
            gaps,
            bucket_fill: bucket_fill.min(self.config.bucket_cap as u64) as u32,
            bucket_cap: self.config.bucket_cap as u32,
            can_send: current.is_some(),
            away_members,
        })
    }

    /// "Delete for me" of `sender`'s message `msg_id` (hex): no longer shown, counted, found or
    /// relayed from here; the other members keep theirs.
    pub async fn delete_message(
        &self,
        id: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<(), ChatError> {
        let group = self.group(id).await?;
        let msg = MsgId::from_hex(msg_id).ok_or(ChatError::UnknownMessage)?;
        let gid = hex(group.group_id);
        match cs::delete_message(self.db.pool(), &gid, sender, &msg).await? {
            crate::contacts::store::Deleted::Deleted => {
                self.emit(ChatEvent::Changed {
                    group_id: group.group_id,
                });
                Ok(())
            }
            crate::contacts::store::Deleted::NotFound => Err(ChatError::UnknownMessage),
            crate::contacts::store::Deleted::StillSending => Err(ChatError::StillSending),
        }
    }

    pub async fn mark_read(&self, id: &str) -> Result<(), ChatError> {
        let group = self.group(id).await?;
        cs::mark_read(self.db.pool(), &hex(group.group_id)).await?;
        self.groups.touch(&group.group_id);
        Ok(())
    }
}
