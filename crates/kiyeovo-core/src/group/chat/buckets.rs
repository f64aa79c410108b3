//! Offline delivery through the DHT: reading every other member's bucket of an epoch (pages
//! included), writing ours (coalesced, merged with what is there), re-publishing.

use std::collections::HashSet;

use super::*;

impl GroupChat {
    /// Reads every other member's bucket of `ep` in parallel and stores what is new.
    pub(super) async fn poll_epoch(&self, ep: &Epoch) {
        let others: Vec<_> = ep
            .senders
            .iter()
            .filter(|(k, _)| **k != self.me)
            .map(|(_, (peer, _, bucket_pub))| (*peer, *bucket_pub))
            .collect();
        let fetched = join_all(
            others
                .iter()
                .map(|(_, bucket_pub)| self.fetch_bucket(bucket_pub)),
        )
        .await;
        for ((peer, _), main) in others.iter().zip(fetched) {
            let Some(main) = main else {
                continue;
            };
            let mut envelopes = main.envelopes.clone();
            let mut complete = true;
            // Older messages are in pages: read them only if we have not got that far.
            let cursor = cs::inbox(self.db.pool(), &ep.gid, ep.epoch, &peer.to_string())
                .await
                .map(|i| i.cursor)
                .unwrap_or(0);
            // (None of this epoch's in the main record: they may all be in pages, the main
            // record holding a newer epoch's.)
            if !main.pages.is_empty()
                && main
                    .oldest_seq(|b| envelope::peek(b, &ep.key))
                    .is_none_or(|s| s > cursor + 1)
            {
                let pages = join_all(main.pages.iter().map(|p| self.fetch_bucket(p))).await;
                // A page that could not be read now may hold exactly the messages after our
                // cursor: what we did read is taken, but nothing is written off as evicted (the
                // hole stays "missing": asked of members, read again next round).
                complete = pages.iter().all(Option::is_some);
                for page in pages.into_iter().flatten() {
                    envelopes.extend(page.envelopes);
                }
            }
            self.take_from_bucket(ep, peer, &envelopes, complete).await;
        }
    }

    /// One bucket record (main or page) by its public key, decoded; `None` if absent or bad.
    pub(super) async fn fetch_bucket(&self, public: &[u8; 32]) -> Option<GroupBucket> {
        let key = RecordKey::for_public_key(RecordKind::GroupBucket, public);
        record::read(&self.client, &key, self.config.max_record_bytes).await
    }

    /// Takes a sender's bucket. Only a `complete` read (every page that was needed arrived) may
    /// count messages before the oldest one as evicted.
    pub(super) async fn take_from_bucket(
        &self,
        ep: &Epoch,
        peer: &PeerId,
        envelopes: &[Vec<u8>],
        complete: bool,
    ) {
        let sender = peer.to_string();
        let Ok(inbox) = cs::inbox(self.db.pool(), &ep.gid, ep.epoch, &sender).await else {
            return;
        };
        let unread = bucket::read_after(envelopes, inbox.cursor, |b| envelope::peek(b, &ep.key));
        // Each envelope opened and verified once, here (`rules::admit`); only this sender's own
        // may move the cursor over a loss, and only those are stored.
        let mut checked = Vec::new();
        for (_, env) in unread.envelopes {
            match self.check(ep, &env) {
                Ok(c) if c.peer == *peer => checked.push(c),
                Ok(c) => {
                    tracing::info!(group = %ep.gid, %peer, other = %c.peer, "dropped another sender's envelope found in a bucket")
                }
                Err(ChatDrop::Duplicate) => {}
                Err(reason) => {
                    tracing::info!(group = %ep.gid, %peer, %reason, "dropped a bucket envelope")
                }
            }
        }
        if let Some(first) = checked.first().map(|c| c.header.seq).filter(|_| complete) {
            if first > inbox.cursor + 1 {
                let _guard = self.write.lock().await;
                if let Ok(mut fresh) = cs::inbox(self.db.pool(), &ep.gid, ep.epoch, &sender).await {
                    let lost = fresh.evicted_below(first);
                    if let Ok(mut tx) = self.db.write_tx().await {
                        let ok = cs::save_inbox(&mut tx, &ep.gid, ep.epoch, &sender, &fresh)
                            .await
                            .is_ok()
                            && (lost == 0
                                || cs::add_missed(
                                    &mut tx, &ep.gid, ep.epoch, &sender, first, lost,
                                )
                                .await
                                .is_ok())
                            && tx.commit().await.is_ok();
                        if ok && lost > 0 {
                            tracing::info!(group = %ep.gid, %peer, lost, "messages were evicted before we could read them");
                            self.emit(ChatEvent::Changed {
                                group_id: ep.group_id,
                            });
                        }
                    }
                }
            }
        }
        // The whole bucket in one transaction.
        for result in self.store(ep, checked, false).await {
            match result {
                Ok(_) | Err(ChatDrop::Duplicate) => {}
                Err(reason) => {
                    tracing::info!(group = %ep.gid, %peer, %reason, "dropped a bucket envelope")
                }
            }
        }
    }

    /// One polling round in the background: DHT reads and dials can take seconds, and the loop
    /// must meanwhile join a new epoch's topic at once (or its first live messages are missed).
    /// A round still running when the next is due makes that one a no-op.
    pub(super) fn spawn_poll_round(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            let Ok(_round) = this.polling.try_lock() else {
                return;
            };
            this.poll_all().await;
        });
    }

    /// Reads all buckets of every epoch we hold a key for, and keeps connections to members.
    /// First the group-info chains: a change made while we were away gives us its epoch (whose
    /// buckets the next round reads; its topic is joined at once).
    pub async fn poll_all(&self) {
        self.groups.walk_chains().await;
        let epochs: Vec<Epoch> = self.topics.lock().await.values().cloned().collect();
        for ep in &epochs {
            for (k, (peer, _, _)) in &ep.senders {
                if *k != self.me && !self.client.is_connected(*peer).await.unwrap_or(true) {
                    let _ = self.client.connect_peer(*peer).await;
                }
            }
        }
        join_all(epochs.iter().map(|ep| self.poll_epoch(ep))).await;
        self.ask_for_missing().await;
    }

    /// Writes our bucket for `ep` in the background, coalesced ([`Writes`]), after
    /// `bucket_write_delay` so a burst goes out in one write: every write re-signs the whole
    /// bucket and every storing node re-validates it.
    pub(super) async fn schedule_publish(self: &Arc<Self>, ep: &Epoch) {
        // One slot per bucket record: the window's, and the one all established epochs share.
        let slot = (ep.group_id, ep.epoch.min(1));
        let (this, ep) = (self.clone(), ep.clone());
        self.publishing
            .schedule(slot, self.config.bucket_write_delay, move || {
                let (this, ep) = (this.clone(), ep.clone());
                async move { this.write_bucket(&ep).await }
            })
            .await;
    }

    /// One write of our bucket for `ep`, then its messages marked stored. Returns whether it
    /// was written (a failed one is retried soon, see [`Writes`]).
    async fn write_bucket(&self, ep: &Epoch) -> bool {
        match self.publish_bucket(ep).await {
            Ok(uptos) => {
                let mut marked = 0;
                for (epoch, upto) in uptos {
                    marked +=
                        cs::mark_stored_up_to(self.db.pool(), &ep.gid, epoch, &self.me_peer, upto)
                            .await
                            .unwrap_or(0);
                }
                if marked > 0 {
                    self.emit(ChatEvent::Changed {
                        group_id: ep.group_id,
                    });
                }
                true
            }
            Err(e) => {
                tracing::warn!(group = %ep.gid, error = %e, "group bucket not written; trying again shortly");
                false
            }
        }
    }

    /// Re-reads our bucket (main record and pages), merges our outbox in, and writes it back one
    /// version higher: the newest envelopes in the main record, older ones in pages (see
    /// [`super::pages`]). The outboxes of every epoch sharing the record go in together.
    /// Returns, per epoch, the highest seq now in it.
    pub(super) async fn publish_bucket(&self, ep: &Epoch) -> Result<Vec<(u32, u64)>, NodeError> {
        let fresh = self.sharing_record(ep).await;
        let ep = fresh.as_ref().unwrap_or(ep);
        let signing = ed25519_dalek::SigningKey::from_bytes(&ep.my_seed.0);
        let record_key =
            RecordKey::for_public_key(RecordKind::GroupBucket, &signing.verifying_key().to_bytes());
        let (existing, version) = self.read_own_bucket(&record_key).await?;
        let epochs: Vec<u32> = if ep.epoch == 0 {
            vec![0]
        } else {
            ep.shared.iter().map(|(e, _)| *e).collect()
        };
        let db_err = |e: DbError| NodeError::PutFailed(e.to_string());
        let mut uptos = Vec::new();
        let mut stored_version = 0;
        let mut outbox = Vec::new();
        for epoch in &epochs {
            let (upto, v) = cs::own(self.db.pool(), &ep.gid, *epoch)
                .await
                .map_err(db_err)?;
            uptos.push((*epoch, upto));
            stored_version = stored_version.max(v);
            outbox.extend(
                cs::outbox(self.db.pool(), &ep.gid, *epoch, self.config.bucket_cap)
                    .await
                    .map_err(db_err)?,
            );
        }
        let everything = BucketLimits {
            cap: self.config.bucket_cap,
            max_bytes: usize::MAX,
        };
        // Only envelopes that are ours and verify are kept: what we read back is untrusted (a
        // group from before v2 still has window buckets whose key every invitee can derive).
        // The bucket holds our envelopes of every established epoch (newest first to try).
        // What is byte for byte in our outbox we sealed ourselves: it is only decrypted for
        // its order, not verified again (a full bucket is a hundred signatures per write).
        let sealed_here: HashSet<&[u8]> = outbox.iter().map(Vec::as_slice).collect();
        let merged = bucket::merge(&existing, &outbox, everything, |b| {
            self.peek_own(ep, b, sealed_here.contains(b))
        });
        // Room in each record for the record envelope and the list of pages.
        let per_record = self
            .config
            .max_record_bytes
            .saturating_sub(1024 + 40 * pages::MAX_PAGES);
        let mut chunks = pages::split(&merged, per_record).into_iter();
        let newest = chunks.next().unwrap_or_default();
        // The version read back is untrusted (see above).
        let version = record::next_version(version, stored_version)?;
        let mut page_keys = Vec::new();
        let mut puts = Vec::new();
        for (n, chunk) in chunks.enumerate() {
            let page_signing = ed25519_dalek::SigningKey::from_bytes(
                &pages::page_seed(&ep.my_seed, n as u32 + 1).0,
            );
            let page_public = page_signing.verifying_key().to_bytes();
            let key = RecordKey::for_public_key(RecordKind::GroupBucket, &page_public);
            let page = GroupBucket {
                envelopes: chunk,
                pages: Vec::new(),
            };
            page_keys.push(page_public);
            puts.push(async move {
                record::write(&self.client, &page_signing, &key, version, page.encode()).await
            });
        }
        // Pages first: a reader who sees the new main record finds its pages.
        for result in join_all(puts).await {
            result?;
        }
        let main = GroupBucket {
            envelopes: newest,
            pages: page_keys,
        };
        record::write(&self.client, &signing, &record_key, version, main.encode()).await?;
        for epoch in &epochs {
            cs::set_bucket_version(self.db.pool(), &ep.gid, *epoch, version)
                .await
                .map_err(db_err)?;
        }
        Ok(uptos)
    }

    /// The epoch whose bucket record `ep` writes to, as it is now rather than when a write was
    /// first asked for: a write queued behind another may be for an epoch that began meanwhile.
    /// `None`: `ep` itself (the window has a record of its own).
    async fn sharing_record(&self, ep: &Epoch) -> Option<Epoch> {
        if ep.epoch == 0 {
            return None;
        }
        self.groups
            .load_group(&ep.group_id)
            .await
            .ok()
            .and_then(|g| epochs_of(&g).into_iter().rfind(|e| e.epoch >= 1))
    }

    /// Our bucket record as the DHT holds it, pages included, and its version.
    async fn read_own_bucket(
        &self,
        record_key: &RecordKey,
    ) -> Result<(Vec<Vec<u8>>, u64), NodeError> {
        let record::ReadBack {
            content: current,
            version,
        } = record::read_own::<GroupBucket>(&self.client, record_key, self.config.max_record_bytes)
            .await?;
        let mut existing = current.envelopes.clone();
        for page in join_all(current.pages.iter().map(|p| self.fetch_bucket(p)))
            .await
            .into_iter()
            .flatten()
        {
            existing.extend(page.envelopes);
        }
        Ok((existing, version))
    }

    /// `((epoch, seq), msg_id)` of an envelope of ours in one of the epochs sharing `ep`'s record
    /// (newest first to try), or `None`. Only envelopes that are ours and verify count: what we
    /// read back is untrusted (a group from before v2 still has window buckets whose key every
    /// invitee can derive). `sealed_here`: the bytes come from our own outbox, so the signature
    /// is ours and is not checked again.
    fn peek_own(
        &self,
        ep: &Epoch,
        bytes: &[u8],
        sealed_here: bool,
    ) -> Option<((u32, u64), crate::ids::MsgId)> {
        ep.shared.iter().rev().find_map(|(epoch, key)| {
            let header = if sealed_here {
                envelope::unseal(bytes, key)
                    .ok()
                    .map(|inner| inner.header)
                    .filter(|h| h.group_id == ep.group_id && h.epoch == *epoch)
            } else {
                envelope::open(bytes, &ep.group_id, *epoch, key)
                    .ok()
                    .map(|inner| inner.header)
            };
            header
                .filter(|h| h.sender == self.me)
                .map(|h| ((*epoch, h.seq), h.msg_id))
        })
    }

    /// Before our first message in `ep` on a profile restored from a backup (or whose numbering
    /// there is otherwise unknown): reads our bucket back and continues every epoch's numbering
    /// above what we signed there, so members do not drop our next messages as already seen.
    /// Nonces are random: no key and nonce pair repeats either way.
    pub(super) async fn ensure_seq_known(&self, ep: &Epoch) -> Result<(), ChatError> {
        if cs::out_seq_known(self.db.pool(), &ep.gid, ep.epoch).await? {
            return Ok(());
        }
        let fresh = self.sharing_record(ep).await;
        let shared = fresh.as_ref().unwrap_or(ep);
        let signing = ed25519_dalek::SigningKey::from_bytes(&shared.my_seed.0);
        let record_key =
            RecordKey::for_public_key(RecordKind::GroupBucket, &signing.verifying_key().to_bytes());
        let (existing, _) = self.read_own_bucket(&record_key).await?;
        // Ours and authentic only (see `peek_own`), with the epoch each opens in.
        let mine: Vec<_> = existing
            .iter()
            .filter_map(|bytes| {
                shared.shared.iter().rev().find_map(|(epoch, key)| {
                    envelope::open(bytes, &shared.group_id, *epoch, key)
                        .ok()
                        .filter(|inner| inner.header.sender == self.me)
                        .map(|inner| (*epoch, inner, bytes))
                })
            })
            .collect();
        let mut highest: std::collections::BTreeMap<u32, u64> = std::collections::BTreeMap::new();
        for (epoch, inner, _) in &mine {
            let top = highest.entry(*epoch).or_default();
            *top = (*top).max(inner.header.seq);
        }
        highest.entry(ep.epoch).or_default();
        // What we wrote from the other installation after the backup joins our history (stored:
        // it is in the bucket); what we have already is left as it is.
        let mut known = std::collections::BTreeMap::new();
        for epoch in highest.keys() {
            known.insert(*epoch, cs::own(self.db.pool(), &ep.gid, *epoch).await?.0);
        }
        let mut tx = self.db.write_tx().await.map_err(tx_err)?;
        let mut imported = 0;
        for (epoch, inner, bytes) in mine.iter().filter(|(e, i, _)| i.header.seq > known[e]) {
            let h = &inner.header;
            let m = NewMessage {
                group: &ep.gid,
                epoch: *epoch,
                sender: &self.me_peer,
                seq: h.seq,
                msg_id: &h.msg_id,
                sent_at: h.sent_at,
                body: &inner.body,
                reply_to: inner.reply_to.as_ref().and_then(ReplyRef::stored),
                outgoing: true,
                envelope: bytes,
            };
            imported += usize::from(cs::insert_message(&mut tx, &self.storage_key, &m).await?);
        }
        tx.commit().await.map_err(tx_err)?;
        tracing::info!(group = %ep.gid, ?highest, imported, "continuing our numbering above what our bucket holds");
        cs::raise_out_seqs(self.db.pool(), &ep.gid, &highest).await?;
        for (epoch, seq) in &highest {
            cs::mark_stored_up_to(self.db.pool(), &ep.gid, *epoch, &self.me_peer, *seq).await?;
        }
        if imported > 0 {
            self.emit(ChatEvent::Changed {
                group_id: ep.group_id,
            });
        }
        Ok(())
    }

    /// Re-publishes every bucket we wrote in (PROTOCOL.md §3).
    pub async fn republish_all(self: &Arc<Self>) {
        // A change made while we were away first (this also runs at start): what we wrote but
        // could not send goes out in the epoch it began, not in the old one.
        self.groups.walk_chains().await;
        if let Ok(groups) = self.groups.all_groups().await {
            for g in &groups {
                if let Err(e) = self.reseal_unsent(g).await {
                    tracing::warn!(error = %e, "unsent messages not sealed again");
                }
            }
        }
        self.groups.republish_chains().await;
        let epochs: Vec<Epoch> = self.topics.lock().await.values().cloned().collect();
        let Ok(own) = cs::own_epochs(self.db.pool()).await else {
            return;
        };
        for ep in epochs
            .iter()
            .filter(|e| own.contains(&(e.gid.clone(), e.epoch)))
        {
            self.schedule_publish(ep).await;
        }
    }
}
