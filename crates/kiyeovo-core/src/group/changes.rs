//! Membership changes as the user and the network drive them (PROTOCOL.md §4.7–4.8): the admin's
//! commands write the next group-info version (signed, sealed, stored in the DHT, pushed to
//! members); every member applies versions it is pushed or finds by walking the chain, and
//! re-publishes the versions it holds so the chain outlives anyone's absence.
//!
//! Crash safety: the new version and the new epoch are saved in one transaction before anything
//! is sent, and the record is re-published from the saved bytes; an admin killed between saving
//! and storing finishes on restart (the first re-publish), and nothing it wrote is lost.

use std::collections::BTreeMap;

use libp2p::PeerId;

use super::control::{random_id, GroupKey, MemberKey, Person};
use super::info::{self, ChainError, Change};
use super::machine::{Group, GroupError};
use super::membership::{record_hash, Applied};
use super::service::{GroupEvent, GroupServiceError, Groups};
use super::store::{self as gstore, hex};
use crate::api::GroupView;
use crate::group::chat_store as cs;
use crate::identity::peer_id_of;
use crate::node::NodeError;
use crate::records::SignedRecord;
use crate::storage::DbError;
use crate::time::now_ms;

/// What the admin asks for in the member panel (members named by peer id, as the UI has them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    Rotate,
    Remove(PeerId),
    HandOver(PeerId),
    Disband,
}

impl Groups {
    /// Admin: rotate the key, remove a member, hand over, or disband — saved as a request,
    /// then written ([`Groups::request_change`], then the write).
    pub async fn admin_action(
        &self,
        id: &str,
        action: AdminAction,
    ) -> Result<GroupView, GroupServiceError> {
        let gid = Self::parse(id)?;
        let change = self.request_change(id, action).await?;
        // As a duty: if the poll round's duties wrote it meanwhile, not again.
        self.write_version(&gid, change, true).await?;
        self.view(&gid).await
    }

    /// Admin: writes the saved request, if it is still pending (see [`Groups::request_change`]).
    pub async fn complete_pending(&self, id: &str) -> Result<GroupView, GroupServiceError> {
        let gid = Self::parse(id)?;
        let group = self.load(&gid).await?;
        if let Some(change) = group.life.pending_change {
            self.write_version(&gid, change, true).await?;
        }
        self.view(&gid).await
    }

    /// Admin: checks and saves a change; from here on it is written even if the app stops
    /// first (at the next start). Returns the change.
    pub async fn request_change(
        &self,
        id: &str,
        action: AdminAction,
    ) -> Result<Change, GroupServiceError> {
        let gid = Self::parse(id)?;
        let group = self.load(&gid).await?;
        let member = |peer: &PeerId| {
            group
                .members()
                .iter()
                .find(|m| peer_id_of(&m.id).as_ref() == Some(peer))
                .map(|m| m.id)
                .ok_or(GroupServiceError::Transition(GroupError::NotAMember))
        };
        let change = match &action {
            AdminAction::Rotate => Change::Rotated,
            AdminAction::Remove(who) => Change::Removed(member(who)?),
            AdminAction::HandOver(who) => Change::AdminTo(member(who)?),
            AdminAction::Disband => Change::Disbanded,
        };
        let _guard = self.write.lock().await;
        let mut group = self.load(&gid).await?;
        // Adding those who accepted is written first: it must not be replaced by another change.
        if matches!(group.life.pending_change, Some(Change::Added { .. })) {
            return Err(GroupError::RoundOpen.into());
        }
        group.next_info(change.clone(), &BTreeMap::new(), now_ms())?;
        group.life.pending_change = Some(change.clone());
        self.save(&group).await?;
        Ok(change)
    }

    /// Admin: invites `invitees` (trusted contacts) into the running group, with its own window
    /// (PROTOCOL.md §4.7 Add). Those who accept join at the next epoch when the window ends or
    /// everyone answered ([`Groups::walk_chains`] writes it).
    pub async fn add_members(
        &self,
        id: &str,
        invitees: &[PeerId],
        admin_name: &str,
    ) -> Result<GroupView, GroupServiceError> {
        let gid = Self::parse(id)?;
        if invitees.is_empty() {
            return Err(GroupServiceError::InvalidInput(
                "Pick at least one contact to add.".into(),
            ));
        }
        let mut people = Vec::new();
        for peer in invitees {
            let row = self.channel.trusted_contact(peer).await?;
            people.push(Person {
                id: row.card.identity.ed25519,
                name: row.card.display_name.clone(),
            });
        }
        let admin_name = match admin_name.trim() {
            "" => "Kiyeovo user",
            name => name,
        };
        {
            let _guard = self.write.lock().await;
            let mut group = self.load(&gid).await?;
            let window = self.config.window.as_millis() as u64;
            group.open_round(people, admin_name, random_id(), window, now_ms())?;
            self.save(&group).await?;
            self.flush(group).await?;
        }
        tracing::info!(group = %hex(gid), invitees = invitees.len(), "add round opened");
        self.emit(GroupEvent::Changed { group_id: gid });
        self.view(&gid).await
    }

    /// Member: leave at once; the admin is told (and writes us out).
    pub async fn leave(&self, id: &str) -> Result<GroupView, GroupServiceError> {
        let gid = Self::parse(id)?;
        {
            let _guard = self.write.lock().await;
            let mut group = self.load(&gid).await?;
            let (last_seq, _) = cs::own(self.db.pool(), &hex(gid), group.epoch()).await?;
            group.leave(last_seq, random_id(), now_ms())?;
            self.save(&group).await?;
            self.flush(group).await?;
        }
        tracing::info!(group = %hex(gid), "left the group");
        self.emit(GroupEvent::Changed { group_id: gid });
        self.view(&gid).await
    }

    /// Admin: writes the next version for `change` — saved with the new epoch first, then
    /// pushed to members and stored in the DHT.
    /// `as_duty`: written only if, under the lock, it is still the group's due change (another
    /// task may have written it meanwhile — never twice).
    pub(super) async fn write_version(
        &self,
        gid: &super::control::GroupId,
        change: Change,
        as_duty: bool,
    ) -> Result<(), GroupServiceError> {
        let record = {
            let _guard = self.write.lock().await;
            let mut group = self.load(gid).await?;
            let now = now_ms();
            let every = self.rotate_every_ms().await;
            if as_duty && group.duty(every, now).as_ref() != Some(&change) {
                return Ok(());
            }
            let last_seqs = self.last_seqs(&group).await?;
            let next = group.next_info(change.clone(), &last_seqs, now)?;
            // The request first, on its own: a stop from here on still ends with the change
            // written (at the next start), never with half of it.
            if group.life.pending_change.as_ref() != Some(&change) {
                group.life.pending_change = Some(change.clone());
                self.save(&group).await?;
            }
            let seed = group.bucket_seed.clone().ok_or(GroupError::NotAdmin)?;
            let key = GroupKey::random();
            let (_, record) = info::write(&self.identity, &seed, next.clone(), &key);
            let hash = record_hash(&record).ok_or(GroupError::NotAdmin)?;
            group.advance(&next, key, hash, record.clone(), now);
            self.freeze_departed(&mut group).await?;
            self.save(&group).await?;
            self.flush(group).await?;
            record
        };
        tracing::info!(group = %hex(gid), change = change.kind(), "group membership changed");
        self.emit(GroupEvent::Changed { group_id: *gid });
        self.store_record(&record).await;
        Ok(())
    }

    /// The last seq we hold of each member in the current epoch (a removed member's boundary).
    async fn last_seqs(
        &self,
        group: &Group,
    ) -> Result<BTreeMap<MemberKey, u64>, GroupServiceError> {
        let gid = hex(group.group_id);
        let mut out = BTreeMap::new();
        for m in group.members() {
            let Some(peer) = peer_id_of(&m.id) else {
                continue;
            };
            let inbox = cs::inbox(self.db.pool(), &gid, group.epoch(), &peer.to_string()).await?;
            let last = inbox.above.last().copied().unwrap_or(0).max(inbox.cursor);
            out.insert(m.id, last);
        }
        Ok(out)
    }

    /// Gives every departed member a boundary in each earlier epoch it was in: its last seq
    /// as we hold it ([`Group::unbounded_departed`]).
    pub(super) async fn freeze_departed(&self, group: &mut Group) -> Result<(), DbError> {
        let gid = hex(group.group_id);
        for (i, who) in group.unbounded_departed() {
            let Some(peer) = peer_id_of(&who) else {
                continue;
            };
            let epoch = group.epochs[i].epoch;
            let inbox = cs::inbox(self.db.pool(), &gid, epoch, &peer.to_string()).await?;
            let last = inbox.above.last().copied().unwrap_or(0).max(inbox.cursor);
            group.epochs[i].boundaries.insert(who, last);
        }
        Ok(())
    }

    /// Puts one record into the DHT (a failure is retried by the next re-publish).
    async fn store_record(&self, record: &[u8]) {
        let Some(key) = record_dht_key(record) else {
            return;
        };
        if let Err(e) = self
            .client
            .put_record(key.to_bytes(), record.to_vec())
            .await
        {
            tracing::info!(error = %e, "group info not stored yet; the next re-publish retries");
        }
    }

    /// Checks a record offered as our group's next version (pushed live or read from the DHT)
    /// and applies it ([`Group::apply`]).
    pub(super) fn apply_record(
        &self,
        group: &mut Group,
        bytes: &[u8],
    ) -> Result<Applied, ChainError> {
        group.apply(&self.identity, bytes, now_ms())
    }

    /// Walks every group's chain in the DHT to its head (a member back from an absence becomes
    /// current with no action), and as admin writes the leaves members asked for and the
    /// scheduled rotation.
    pub async fn walk_chains(&self) {
        let Ok(groups) = gstore::all(self.db.pool(), &self.storage_key).await else {
            return;
        };
        for g in groups.iter().filter(|g| g.follows_chain()) {
            let gid = g.group_id;
            // Bounded: a chain cannot keep us walking forever.
            for _ in 0..64 {
                let Some(head) = g_head(self, &gid).await else {
                    break;
                };
                let key = info::record_key(&head.chain_pub, head.version.saturating_add(1));
                let bytes = match self.client.get_record(key.to_bytes()).await {
                    Ok(b) => b,
                    Err(NodeError::NotFound | NodeError::Unreachable) => break,
                    Err(e) => {
                        tracing::debug!(group = %hex(gid), error = %e, "cannot read group info");
                        break;
                    }
                };
                match self.apply_and_save(&gid, &bytes).await {
                    Ok(Applied::Advanced) => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::info!(group = %hex(gid), error = %e, "refused group info from the DHT");
                        break;
                    }
                }
            }
        }
        self.walk_joins().await;
        self.admin_duties().await;
    }

    /// Applies a record to the stored group and saves it (under the write lock).
    pub(super) async fn apply_and_save(
        &self,
        gid: &super::control::GroupId,
        bytes: &[u8],
    ) -> Result<Applied, GroupServiceError> {
        let applied = {
            let _guard = self.write.lock().await;
            let mut group = self.load(gid).await?;
            let before = group.flags.len();
            let applied = match self.apply_record(&mut group, bytes) {
                Ok(applied) => applied,
                Err(e) => {
                    // Refused; a flag it raised is kept (saved only then: the walk meets a
                    // refused version again every round).
                    if group.flags.len() != before {
                        self.save(&group).await?;
                    }
                    return Err(GroupError::Chain(e).into());
                }
            };
            if applied != Applied::Nothing {
                self.freeze_departed(&mut group).await?;
                self.save(&group).await?;
                self.flush(group).await?;
            }
            applied
        };
        if applied != Applied::Nothing {
            tracing::info!(group = %hex(gid), ?applied, "group info applied");
            self.emit(GroupEvent::Changed { group_id: *gid });
        }
        Ok(applied)
    }

    /// Admin: leaves to write out, and the scheduled rotation.
    async fn admin_duties(&self) {
        let Ok(groups) = gstore::all(self.db.pool(), &self.storage_key).await else {
            return;
        };
        let now = now_ms();
        let every = self.rotate_every_ms().await;
        for g in groups.iter().filter(|g| g.round_due(now)) {
            self.finish_round(&g.group_id).await;
        }
        let Ok(groups) = gstore::all(self.db.pool(), &self.storage_key).await else {
            return;
        };
        for g in &groups {
            let Some(change) = g.duty(every, now) else {
                continue;
            };
            if let Err(e) = self.write_version(&g.group_id, change, true).await {
                tracing::warn!(group = %hex(g.group_id), error = %e, "membership change not written");
                // A saved request that can no longer be made (the member is gone meanwhile)
                // is dropped, not retried forever.
                if let GroupServiceError::Transition(_) = e {
                    let _guard = self.write.lock().await;
                    if let Ok(mut fresh) = self.load(&g.group_id).await {
                        if fresh.life.pending_change.take().is_some() {
                            // Adding could not be written: those who accepted are told, and
                            // the round no longer blocks the next one.
                            fresh.void_round(now_ms());
                            let _ = self.save(&fresh).await;
                            let _ = self.flush(fresh).await;
                        }
                    }
                }
            }
        }
    }

    /// Admin: closes a due add round (its acceptors become the pending change, written next).
    async fn finish_round(&self, gid: &super::control::GroupId) {
        let _guard = self.write.lock().await;
        let Ok(mut group) = self.load(gid).await else {
            return;
        };
        if !group.finish_round(&mut random_id, now_ms()) {
            return;
        }
        tracing::info!(group = %hex(gid), joining = ?group.life.pending_change.as_ref().map(|c| c.kind()), "add round closed");
        if let Err(e) = async {
            self.save(&group).await?;
            self.flush(group).await
        }
        .await
        {
            tracing::warn!(group = %hex(gid), error = %e, "cannot save group");
        }
        self.emit(GroupEvent::Changed { group_id: *gid });
    }

    /// Someone who accepted an add round and missed the version that adds it (pushed while it
    /// was away): looks for it after the version the invitation named.
    async fn walk_joins(&self) {
        let Ok(groups) = gstore::all(self.db.pool(), &self.storage_key).await else {
            return;
        };
        for g in &groups {
            let Some(point) = g.join_point() else {
                continue;
            };
            // Versions written while the round was open come first; bounded.
            for version in point.version.saturating_add(1)..point.version.saturating_add(64) {
                let key = info::record_key(&point.chain_pub, version);
                let Ok(bytes) = self.client.get_record(key.to_bytes()).await else {
                    break;
                };
                match self.apply_and_save(&g.group_id, &bytes).await {
                    Ok(Applied::Advanced) => break,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::info!(group = %hex(g.group_id), error = %e, "refused group info while joining");
                        break;
                    }
                }
            }
        }
    }

    /// Re-publishes every group-info record we hold (exact bytes), so the chain stays
    /// readable while any member is around.
    pub async fn republish_chains(&self) {
        let Ok(groups) = gstore::all(self.db.pool(), &self.storage_key).await else {
            return;
        };
        for g in &groups {
            for (_, record) in &g.life.chain_records {
                self.store_record(record).await;
            }
        }
    }
}

async fn g_head(groups: &Groups, gid: &super::control::GroupId) -> Option<info::Head> {
    let g = groups.load(gid).await.ok()?;
    g.follows_chain().then(|| g.head()).flatten()
}

/// The DHT key an encoded group-info record was signed for.
pub fn record_dht_key(record: &[u8]) -> Option<crate::records::RecordKey> {
    let r = SignedRecord::decode(record, info::MAX_INFO_BYTES).ok()?;
    let key = info::record_key(&r.public_key, r.version);
    r.verify_signature(&key).ok()?;
    Some(key)
}
