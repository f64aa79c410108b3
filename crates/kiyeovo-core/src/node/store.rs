//! The Kademlia record store: libp2p's in-memory store, with every change mirrored to the record
//! file when the node keeps its records across restarts ([`super::persist`]). Going through the
//! `RecordStore` trait means nothing that changes the store — our validated inbound writes,
//! Kademlia's own puts of our records, lazy expiry — can bypass the mirror.

use std::borrow::Cow;

use libp2p::kad::store::{MemoryStore, RecordStore, Result};
use libp2p::kad::{ProviderRecord, Record, RecordKey};
use libp2p::PeerId;

use super::persist::Mirror;

pub struct Store {
    memory: MemoryStore,
    mirror: Option<Mirror>,
}

impl Store {
    pub fn new(memory: MemoryStore, mirror: Option<Mirror>) -> Self {
        Self { memory, mirror }
    }

    /// Puts records read back from the file (not mirrored again: they are there already).
    /// Returns how many the memory store took (it refuses beyond its record count).
    pub fn restore(&mut self, records: Vec<Record>) -> usize {
        records
            .into_iter()
            .filter(|r| self.memory.put(r.clone()).is_ok())
            .count()
    }
}

impl RecordStore for Store {
    type RecordsIter<'a> = <MemoryStore as RecordStore>::RecordsIter<'a>;
    type ProvidedIter<'a> = <MemoryStore as RecordStore>::ProvidedIter<'a>;

    fn get(&self, k: &RecordKey) -> Option<Cow<'_, Record>> {
        self.memory.get(k)
    }

    fn put(&mut self, r: Record) -> Result<()> {
        if let Some(m) = &self.mirror {
            self.memory.put(r.clone())?;
            m.put(&r);
            Ok(())
        } else {
            self.memory.put(r)
        }
    }

    fn remove(&mut self, k: &RecordKey) {
        self.memory.remove(k);
        if let Some(m) = &self.mirror {
            m.remove(k);
        }
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        self.memory.records()
    }

    // Providers are not used by Kiyeovo (nothing is announced); kept in memory only.
    fn add_provider(&mut self, record: ProviderRecord) -> Result<()> {
        self.memory.add_provider(record)
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        self.memory.providers(key)
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.memory.provided()
    }

    fn remove_provider(&mut self, k: &RecordKey, p: &PeerId) {
        self.memory.remove_provider(k, p)
    }
}
