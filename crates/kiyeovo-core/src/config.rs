//! Limits and timing defaults (PROTOCOL.md §6) in one place. Tests shrink these through
//! configuration, never through sleeps.

use std::time::Duration;

/// Size limits applied to everything that arrives from the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest DHT record value a node stores or accepts (PROTOCOL.md §3: 512 KiB).
    pub max_record_bytes: usize,
    /// Largest direct (request-response) payload.
    pub max_direct_bytes: usize,
    /// Largest gossipsub message.
    pub max_gossip_bytes: usize,
    /// How many records a node keeps in its DHT store.
    pub max_stored_records: usize,
    /// Bytes of record values a node stores for others in all (PROTOCOL.md §3).
    pub store_budget_bytes: usize,
    /// Bytes of record values one writing peer may have in this node's store.
    pub source_quota_bytes: usize,
}

impl Limits {
    /// Kademlia's packet limit must fit a whole record plus framing and a list of closer peers,
    /// otherwise large (but valid) records are silently cut off by the transport.
    pub fn kad_packet_bytes(&self) -> usize {
        self.max_record_bytes + 64 * 1024
    }

    /// A headless node: an always-on machine that stores for many users, so a larger budget.
    pub fn server() -> Self {
        Self::with_budget(512 * 1024 * 1024, 32 * 1024 * 1024)
    }

    /// These limits with another storing budget; the record count follows it, so the budget
    /// (each record charged at least [`crate::records::budget::RECORD_OVERHEAD`]) is always
    /// reached first, with room left for this node's own records.
    pub fn with_budget(store_budget_bytes: usize, source_quota_bytes: usize) -> Self {
        Self {
            store_budget_bytes,
            source_quota_bytes,
            max_stored_records: store_budget_bytes / crate::records::budget::RECORD_OVERHEAD
                + OWN_RECORDS,
            ..Self::default()
        }
    }

    pub fn budget(&self) -> crate::records::budget::Budget {
        crate::records::budget::Budget {
            total_bytes: self.store_budget_bytes,
            per_source_bytes: self.source_quota_bytes,
        }
    }
}

/// Records of our own (buckets we write) the store always has room for.
const OWN_RECORDS: usize = 4096;

impl Default for Limits {
    fn default() -> Self {
        // An app in DHT server mode stores for others on a user's machine: modest. One source's
        // share holds 16 full 512 KiB buckets, or thousands of ordinary ones.
        let (budget, quota) = (64 * 1024 * 1024, 8 * 1024 * 1024);
        Self {
            max_record_bytes: 512 * 1024,
            max_direct_bytes: 256 * 1024,
            max_gossip_bytes: 64 * 1024,
            max_stored_records: budget / crate::records::budget::RECORD_OVERHEAD + OWN_RECORDS,
            store_budget_bytes: budget,
            source_quota_bytes: quota,
        }
    }
}

/// Timers of the protocol. Every duration that tests need to shrink lives here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a Kademlia query may run before it reports what it has.
    pub query_timeout: Duration,
    /// How long to wait before dialing the bootstrap nodes again after a failure.
    pub bootstrap_retry: Duration,
    /// Re-publish interval for DHT records (PROTOCOL.md §3: ~30 min, jittered).
    pub republish: Duration,
    /// How long an idle connection is kept open.
    pub idle_connection_timeout: Duration,
    /// How long a QUIC dial may take before it counts as failed. A QUIC dial to a peer that is
    /// gone gets no answer at all, and DHT queries wait for it.
    pub quic_handshake_timeout: Duration,
    /// DHT record time-to-live (PROTOCOL.md §6: 7 days).
    pub record_ttl: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            query_timeout: Duration::from_secs(30),
            bootstrap_retry: Duration::from_secs(30),
            republish: Duration::from_secs(30 * 60),
            idle_connection_timeout: Duration::from_secs(120),
            quic_handshake_timeout: Duration::from_secs(5),
            record_ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Whether this node answers DHT queries and stores records for others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DhtMode {
    /// Let libp2p decide: server once an external address is confirmed (AutoNAT), client before.
    #[default]
    Auto,
    /// Always store and serve records (headless nodes, LAN demos, tests).
    Server,
    /// Never store records for others.
    Client,
}

/// The largest group, creator included (PROTOCOL.md §4). One constant, used everywhere.
pub const MAX_MEMBERS: usize = 10;
