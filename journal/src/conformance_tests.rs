//! The conformance suite run against the memory and sled stores.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
use super::*;
use crate::ready::now_or_never;
use crate::store::memory::MemoryStore;
#[cfg(feature = "sled")]
use crate::store::sled::{Durability, SledStore};

struct MemoryHarness(MemoryStore);

impl Harness for MemoryHarness {
    type Store = MemoryStore;
    async fn open(&mut self) -> Result<MemoryStore, String> {
        Ok(self.0.clone())
    }
    async fn raw_frame(
        &mut self,
        store: &MemoryStore,
        stream: &StreamId,
        seq: u64,
    ) -> Result<Option<Vec<u8>>, String> {
        Ok(store.raw_get(stream, seq))
    }
    async fn overwrite_frame(
        &mut self,
        store: &MemoryStore,
        stream: &StreamId,
        seq: u64,
        bytes: Vec<u8>,
    ) -> Result<(), String> {
        store.raw_overwrite(stream, seq, Some(bytes));
        Ok(())
    }
    async fn overwrite_snapshot_frame(
        &mut self,
        store: &MemoryStore,
        stream: &StreamId,
        frame: Vec<u8>,
    ) -> Result<(), String> {
        store.raw_overwrite_snapshot(stream, frame);
        Ok(())
    }
}

#[cfg(feature = "sled")]
/// A sled store in a temp dir, opened with the given durability.
struct SledHarness(tempfile::TempDir, Durability);

#[cfg(feature = "sled")]
impl Harness for SledHarness {
    type Store = SledStore;
    async fn open(&mut self) -> Result<SledStore, String> {
        SledStore::open(self.0.path(), self.1).map_err(|e| {
            let source = std::error::Error::source(&e).map(ToString::to_string);
            format!("{e}: {source:?}")
        })
    }
    async fn raw_frame(
        &mut self,
        store: &SledStore,
        stream: &StreamId,
        seq: u64,
    ) -> Result<Option<Vec<u8>>, String> {
        store.raw_get(stream, seq).map_err(|e| e.to_string())
    }
    async fn overwrite_frame(
        &mut self,
        store: &SledStore,
        stream: &StreamId,
        seq: u64,
        bytes: Vec<u8>,
    ) -> Result<(), String> {
        store
            .raw_overwrite(stream, seq, Some(bytes))
            .map_err(|e| e.to_string())
    }
    async fn overwrite_snapshot_frame(
        &mut self,
        store: &SledStore,
        stream: &StreamId,
        frame: Vec<u8>,
    ) -> Result<(), String> {
        store
            .raw_overwrite_snapshot(stream, frame)
            .map_err(|e| e.to_string())
    }
}

#[test]
fn memory_store_conforms() {
    let result = now_or_never(run_all(|| MemoryHarness(MemoryStore::new()))).unwrap();
    assert_eq!(result, Ok(()));
}

#[cfg(feature = "sled")]
#[test]
fn sled_store_conforms() {
    let result = now_or_never(run_all(|| {
        SledHarness(tempfile::tempdir().unwrap(), Durability::Background)
    }))
    .unwrap();
    assert_eq!(result, Ok(()));
}

#[cfg(feature = "sled")]
#[test]
fn durable_sled_store_conforms_on_the_core_cases() {
    let mut h = SledHarness(tempfile::tempdir().unwrap(), Durability::Flush);
    now_or_never(ordering(&mut h)).unwrap().unwrap();
    now_or_never(reopen(&mut h)).unwrap().unwrap();
}
