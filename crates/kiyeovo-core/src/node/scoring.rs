//! Gossipsub peer scoring (PROTOCOL.md §5 "peer scoring on"; issue: no cheap denial of service).
//!
//! Every group message is validated by the application before it is forwarded; a message that
//! fails validation is *rejected*, and rejections count against the peer that sent it. With
//! scoring on, a peer that keeps pushing forged or undecryptable messages sinks below the
//! graylist threshold and everything further it sends is dropped before validation, so it cannot
//! make members spend CPU on signature checks and decryption for long.
//!
//! The parameters are chosen for small, quiet groups: the mesh-delivery penalties that suit busy
//! public topics (a mesh peer that delivers fewer than N messages per window is punished) would
//! punish honest members of a chat where nobody writes for hours, so they are off; and peers
//! sharing an IP address (a family behind one NAT, every test on 127.0.0.1) are not penalised.

use libp2p::gossipsub::{PeerScoreParams, PeerScoreThresholds, TopicScoreParams};

/// Weight of one invalid message (squared per peer and topic, decaying): three rejected
/// messages take a peer from 0 to -90, below [`thresholds`]' graylist threshold of -80.
pub const INVALID_MESSAGE_WEIGHT: f64 = -10.0;

pub fn params() -> PeerScoreParams {
    PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..PeerScoreParams::default()
    }
}

pub fn thresholds() -> PeerScoreThresholds {
    PeerScoreThresholds::default()
}

/// Parameters for one group topic, set when the app joins it.
pub fn topic_params() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        // No reward for being in the mesh or delivering first: in a quiet chat these would let
        // an attacker that sat in the mesh long enough bank credit against its later rejections.
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: INVALID_MESSAGE_WEIGHT,
        // Decay per second (gossipsub's default decay interval): three rejections keep a peer
        // graylisted for about ten seconds, and every further rejected message it gets through
        // sends it back; counters reach zero after a few minutes.
        invalid_message_deliveries_decay: 0.99,
        ..TopicScoreParams::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_valid_and_three_rejections_graylist_a_peer() {
        params().validate().unwrap();
        thresholds().validate().unwrap();
        topic_params().validate().unwrap();
        let after_three = topic_params().topic_weight * INVALID_MESSAGE_WEIGHT * 3.0 * 3.0;
        assert!(after_three < thresholds().graylist_threshold);
        let after_one = topic_params().topic_weight * INVALID_MESSAGE_WEIGHT;
        assert!(
            after_one > thresholds().graylist_threshold,
            "one mistake is forgiven"
        );
    }
}
