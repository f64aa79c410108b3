import type { GroupStatus } from "../bindings/GroupStatus";
import type { MemberStatus } from "../bindings/MemberStatus";

export const GROUP_STATUS_TEXT: Record<GroupStatus, string> = {
  inviting: "inviting",
  invited: "invitation: answer before the window closes",
  accepted: "accepted, waiting for the others",
  waiting_for_creator: "waiting for the creator to establish the group",
  rejected: "you declined",
  expired: "closed: the invitation expired",
  active: "active",
  left: "you left (read-only)",
  removed: "you were removed (read-only)",
  disbanded: "ended (read-only)",
};

export const MEMBER_STATUS_TEXT: Record<MemberStatus, string> = {
  creator: "creator",
  not_delivered: "not yet delivered",
  delivered: "delivered",
  accepted: "accepted",
  rejected: "rejected",
  expired: "expired",
  member: "member",
  admin: "admin",
};

/** A group's status in words; someone invited into a running group waits for its admin. */
export function statusText(g: { status: GroupStatus; joining: boolean }): string {
  if (g.joining && g.status === "waiting_for_creator") return "waiting for the admin to add you";
  return GROUP_STATUS_TEXT[g.status];
}

/** "5 h 59 min", "12 min 3 s", "closed". */
export function timeLeft(expiresAt: number, now: number): string {
  const ms = expiresAt - now;
  if (ms <= 0) return "closed";
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${sec} s`;
  return `${sec} s`;
}
