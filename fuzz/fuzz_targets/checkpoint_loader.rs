//! Arbitrary bytes as a checkpoint file, loaded the way a store open loads one
//! (`checkpoint::load_newest` on simulated storage), and the loaded state used.
//!
//! Input: `[mode, file bytes...]`. The file is named after the LSN in its header (bytes
//! 16..24). Mode bit 0: recompute the payload length and the blake3 digest first (so
//! mutations reach the state decoder: `codec::decode_unbounded::<State>`); bit 1: the
//! log's record at that LSN does not match (`last_record` check fails); bit 2: read it
//! first with `checkpoint::prefetch` (as an open does, beside log recovery).
//!
//! Properties: no panic; no allocation beyond the malloc limit (the file's size is what
//! bounds a checkpoint); a skipped checkpoint gives one warning; a loaded state is as of
//! the named LSN, answers its queries, and survives encode/decode unchanged.
#![no_main]

use std::sync::atomic::AtomicBool;

use libfuzzer_sys::fuzz_target;
use mdslog::checkpoint;
use mdslog::log::fs::SimStorage;
use mdslog::log::Lsn;
use mdslog::state::State;

/// Bug (tests/fuzz_decoders.rs `checkpoint_with_a_huge_length_prefix_is_skipped`): the
/// unbounded checkpoint decoder allocates whatever a string's length prefix says before
/// it reads the string (`vec![0u8; len]` in bincode), so a digest-valid file claiming a
/// 2^50-byte string aborts the process. While it stands, inputs that the bounded record
/// decoder refuses for claiming more than its 16 MiB limit are skipped, so the run goes
/// on past it. Set to `false` once the bug is fixed.
const KNOWN_BUG_HUGE_LENGTH: bool = false;

fn claims_too_much(b: &[u8]) -> bool {
    if b.len() < 96 {
        return false;
    }
    match mdslog::codec::decode::<State>(Lsn(0), &b[64..b.len() - 32]) {
        Err(mdslog::Error::Decode { message, .. }) => message.contains("LimitExceeded"),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut b = rest.to_vec();
    if mode & 1 != 0 {
        mdslog_fuzz::fix_checkpoint(&mut b);
    }
    let lsn = if b.len() >= 24 {
        Lsn(u64::from_le_bytes(b[16..24].try_into().unwrap()))
    } else {
        Lsn(0)
    };
    let record: Option<[u8; 32]> = if mode & 2 == 0 && b.len() >= 64 {
        Some(b[32..64].try_into().unwrap())
    } else {
        Some([0xa5; 32])
    };
    if KNOWN_BUG_HUGE_LENGTH && claims_too_much(&b) {
        return;
    }
    let sim = SimStorage::new();
    sim.put_file(&checkpoint::file_name(lsn), b.clone());
    let prefetched = if mode & 4 != 0 {
        checkpoint::prefetch(&sim, &AtomicBool::new(false))
    } else {
        None
    };
    let (state, warnings) =
        checkpoint::load_newest(&sim, Lsn(u64::MAX), &|_| Ok(record), prefetched)
            .expect("list simulated storage");
    let Some(state) = state else {
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        return;
    };
    assert!(warnings.is_empty());
    assert_eq!(state.applied_lsn(), lsn);
    let dump = state.canonical_dump();
    let counts = state.counts();
    for vs in &dump.volume_sets {
        let _ = state.get_volume_set(vs.id);
        let _ = state.get_snapshot_ids(vs.id);
        let _ = state.get_bushes(vs.id);
    }
    for s in &dump.snapshots {
        let _ = state.get_snapshot(s.id);
        let _ = state.num_children(s.id);
    }
    let bytes = mdslog::codec::encode_unbounded(&state).expect("a loaded state encodes");
    let back: State = mdslog::codec::decode_unbounded(&bytes).expect("re-encoded state decodes");
    assert_eq!(back.applied_lsn(), lsn);
    assert_eq!(back.canonical_dump(), dump);
    assert_eq!(back.counts(), counts);
});
