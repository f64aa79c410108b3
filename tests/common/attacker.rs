//! The attacker of the adversarial tests: a plain libp2p Kademlia node that runs none of
//! Kiyeovo's validation and stores or pushes whatever it is given, and signed records to feed it.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use futures::StreamExt;
use kiyeovo_core::node::behaviour::KAD_PROTOCOL;
use kiyeovo_core::records::{RecordKey, RecordKind, SignedRecord};
use libp2p::kad::store::MemoryStore;
use libp2p::kad::{self, Quorum};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, Swarm};

use crate::WAIT;

pub type Attacker = Swarm<kad::Behaviour<MemoryStore>>;

/// A signed pairwise-bucket-shaped record under `owner`'s self-certifying key.
pub fn signed(owner: &SigningKey, version: u64, payload: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let key = RecordKey::for_public_key(
        RecordKind::PairwiseBucket,
        &owner.verifying_key().to_bytes(),
    );
    let record = SignedRecord::sign(owner, &key, version, version, payload.to_vec());
    (key.to_bytes(), record.encode())
}

/// A plain Kademlia node (no validation, stores anything) that knows `targets`.
pub fn attacker(targets: &[(PeerId, Multiaddr)]) -> Attacker {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| {
            let peer = key.public().to_peer_id();
            kad::Behaviour::with_config(
                peer,
                MemoryStore::new(peer),
                kad::Config::new(KAD_PROTOCOL),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.behaviour_mut().set_mode(Some(kad::Mode::Server));
    for (peer, addr) in targets {
        swarm.behaviour_mut().add_address(peer, addr.clone());
    }
    swarm
}

/// Pushes `record` to every node the attacker knows and waits for the put query to end.
/// (Storing nodes answer "ok" whether or not they kept it: the outcome says nothing.)
pub async fn push(swarm: &mut Attacker, record: kad::Record) {
    let id = swarm
        .behaviour_mut()
        .put_record(record, Quorum::All)
        .unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                id: done,
                result: kad::QueryResult::PutRecord(_),
                step,
                ..
            }) = swarm.select_next_some().await
            {
                if done == id && step.last {
                    return;
                }
            }
        }
    })
    .await
    .expect("attacker's put finished");
}
