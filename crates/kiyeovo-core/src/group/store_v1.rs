//! A group's state as version 0.1 stored it (before protocol v2), kept only to read old
//! profiles: `store` opens a row with the v2 label first and falls back to this layout, which it
//! converts (and the next save writes as v2). Postcard is positional, so this struct must keep
//! the old fields in the old order and never change.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::control::{
    ControlId, GroupId, GroupKey, Invite, InviteeStatus, Member, MemberKey, Response,
};
use super::machine::{Flag, FlagKind, Group, Outgoing, Role, Status};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupV1 {
    pub group_id: GroupId,
    pub role: Role,
    pub me: MemberKey,
    pub creator: MemberKey,
    pub invite_id: ControlId,
    pub invite: Invite,
    pub status: Status,
    pub roster_version: u64,
    pub statuses: BTreeMap<MemberKey, InviteeStatus>,
    pub responses: BTreeMap<MemberKey, Vec<u8>>,
    pub my_response: Option<Response>,
    pub my_response_id: Option<ControlId>,
    pub bucket_seed: Option<GroupKey>,
    pub epoch: u32,
    pub epoch_key: Option<GroupKey>,
    pub members: Vec<Member>,
    pub list_mismatch: bool,
    pub seen: BTreeSet<ControlId>,
    pub outbox: Vec<Outgoing>,
    pub window_passed: bool,
    pub updated_at: u64,
}

impl From<GroupV1> for Group {
    fn from(g: GroupV1) -> Group {
        // v1 knew only "someone saw another list", not who.
        let flags = if g.list_mismatch {
            vec![Flag {
                who: None,
                kind: FlagKind::InvitationListDiffers,
                at: g.updated_at,
                dismissed: false,
            }]
        } else {
            Vec::new()
        };
        Group {
            group_id: g.group_id,
            role: g.role,
            me: g.me,
            creator: g.creator,
            invite_id: g.invite_id,
            invite: g.invite,
            status: g.status,
            roster_version: g.roster_version,
            statuses: g.statuses,
            responses: g.responses,
            my_response: g.my_response,
            my_response_id: g.my_response_id,
            bucket_seed: g.bucket_seed,
            epoch: g.epoch,
            epoch_key: g.epoch_key,
            members: g.members,
            seen: g.seen,
            outbox: g.outbox,
            window_passed: g.window_passed,
            updated_at: g.updated_at,
            flags,
        }
    }
}
