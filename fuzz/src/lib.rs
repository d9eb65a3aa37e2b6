//! Shared by the fuzz targets and the seed generator (`examples/gen_seeds.rs`).
//!
//! * `fix_*`: recompute the checksums and digests of a mutated input so that the fuzzer's
//!   mutations reach the checks behind them (a CRC-32 or a blake3 digest is otherwise a
//!   wall no random mutation gets through). Each target applies them only when a mode bit
//!   of its first input byte asks for it, so the unfixed paths are fuzzed too.
//! * `sample_*`: valid bytes of every kind the targets read, made with the crate's public
//!   API only, to seed the corpora.

use std::sync::Arc;

use mdslog::event::{Conflict, Envelope, Event, NewBranch, NewTip, SnapshotUpdate};
use mdslog::log::format::{
    self, Digest, Footer, SegmentHeader, DIGEST_NONE, FOOTER_BYTES, FOOTER_MARKER,
    FRAME_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX, SEGMENT_HEADER_BYTES,
};
use mdslog::log::fs::SimStorage;
use mdslog::sync::batch::encode_bundle;
use mdslog::sync::Batch;
use mdslog::*;

/// Log options small enough that a writable open of a fuzzed segment stays cheap (the
/// defaults pre-write 4 MiB of zeros).
pub fn small_log_options() -> LogOptions {
    LogOptions {
        segment_bytes_max: 1 << 20,
        prewrite_bytes: 4096,
        record_bytes_max: 64 << 10,
        batch_bytes_max: 256 << 10,
        ..LogOptions::default()
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn footer_crc(segment: u64, first68: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&segment.to_le_bytes());
    h.update(first68);
    h.finalize()
}

/// Recomputes the CRCs of the frames laid out from `start` to `end` of `b` (salted with
/// `salt`), and of a footer found on the way (with its digest over `b[..footer]` when
/// `digest` is set). Stops where no frame or footer can start.
fn fix_frames(b: &mut [u8], start: usize, end: usize, salt: u64, digest: bool) {
    let mut pos = start;
    while pos + FRAME_HEADER_BYTES <= end {
        let len = u32_at(b, pos);
        if len == FOOTER_MARKER {
            if pos + FOOTER_BYTES <= end {
                if digest {
                    let d = blake3::hash(&b[..pos]);
                    b[pos + 32..pos + 64].copy_from_slice(d.as_bytes());
                }
                let crc = footer_crc(salt, &b[pos..pos + 68]);
                b[pos + 68..pos + 72].copy_from_slice(&crc.to_le_bytes());
            }
            return;
        }
        if len > RECORD_PAYLOAD_BYTES_MAX
            || b[pos..pos + FRAME_HEADER_BYTES].iter().all(|&x| x == 0)
        {
            return;
        }
        let total = format::frame_bytes(len as usize);
        if pos + total > end {
            return;
        }
        let payload_end = pos + FRAME_HEADER_BYTES + len as usize;
        let crc = format::frame_crc(
            SegmentId(salt),
            &b[pos..pos + 20],
            &b[pos + FRAME_HEADER_BYTES..payload_end],
        );
        b[pos + 20..pos + 24].copy_from_slice(&crc.to_le_bytes());
        pos += total;
    }
}

/// Fixes a segment file's header CRC, every frame CRC, and the footer's CRC and digest.
pub fn fix_segment(b: &mut [u8]) {
    if b.len() < SEGMENT_HEADER_BYTES {
        return;
    }
    let crc = crc32fast::hash(&b[0..68]);
    b[68..72].copy_from_slice(&crc.to_le_bytes());
    let salt = u64_at(b, 16);
    let end = b.len();
    fix_frames(b, SEGMENT_HEADER_BYTES, end, salt, true);
}

/// Fixes what lies at the start of `b` as one slot of segment `salt`: a frame's CRC or a
/// footer's CRC (its digest covers bytes the slot decoder never sees).
pub fn fix_slot(b: &mut [u8], salt: u64) {
    let end = b.len();
    fix_frames(b, 0, end, salt, false);
}

/// Fixes a segment header's CRC (the first 72 bytes of `b`).
pub fn fix_header(b: &mut [u8]) {
    if b.len() >= SEGMENT_HEADER_BYTES {
        let crc = crc32fast::hash(&b[0..68]);
        b[68..72].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Fixes a bundle's frame CRCs (salt 0) and its trailing blake3 digest.
pub fn fix_bundle(b: &mut [u8]) {
    const PREAMBLE: usize = 16;
    const TRAILER: usize = 48;
    if b.len() < PREAMBLE + TRAILER {
        return;
    }
    let header_len = u32_at(b, 12) as usize;
    let start = format::align_up(PREAMBLE.saturating_add(header_len.min(1 << 30)));
    let trailer = b.len() - TRAILER;
    if start <= trailer {
        fix_frames(b, start, trailer, 0, false);
    }
    let body = b.len() - 32;
    let d = blake3::hash(&b[..body]);
    b[body..].copy_from_slice(d.as_bytes());
}

/// Fixes a checkpoint's payload length field and its trailing blake3 digest.
pub fn fix_checkpoint(b: &mut [u8]) {
    const HEADER: usize = 64;
    if b.len() < HEADER + 32 {
        return;
    }
    let payload = (b.len() - HEADER - 32) as u64;
    b[24..32].copy_from_slice(&payload.to_le_bytes());
    let body = b.len() - 32;
    // Checkpoint version 2: blake3 of the header followed by the blake3 of the payload.
    let mut h = blake3::Hasher::new();
    h.update(&b[..HEADER]);
    h.update(blake3::hash(&b[HEADER..body]).as_bytes());
    let d = h.finalize();
    b[body..].copy_from_slice(d.as_bytes());
}

// ---- Valid samples ------------------------------------------------------------------

fn id(n: u8) -> uuid::Uuid {
    uuid::Uuid::from_bytes([n; 16])
}

fn meta_vs(name: &str) -> VolumeSetMeta {
    let mut vs = VolumeSet::new(VolumeSetId(id(1)), name);
    vs.attrs.insert("k".into(), "v".into());
    vs.owner = "o".into();
    vs.last_modified = Timestamp(1_700_000_000_000_000);
    vs.meta()
}

fn snapshot(n: u8, parent: Option<u8>) -> Snapshot {
    let mut s = Snapshot::new(
        SnapshotId(id(n)),
        VolumeSetId(id(1)),
        parent.map(|p| SnapshotId(id(p))),
    );
    s.created = Timestamp(1_700_000_000_000_000 + n as i64);
    s.last_modified = s.created;
    s
}

/// One event of every kind (1..=20), in kind order.
pub fn sample_events() -> Vec<Event> {
    let vsid = VolumeSetId(id(1));
    let mut vs = VolumeSet::new(vsid, "vs");
    vs.description = "a volume set".into();
    vs.attrs.insert("team".into(), "x".into());
    let snaps = vec![snapshot(10, None), snapshot(11, Some(10))];
    let mut sm = snaps[0].meta();
    let old = sm.clone();
    sm.name = "named".into();
    let events = vec![
        Event::ImportVolumeSet { volume_set: vs },
        Event::UpdateVolumeSet {
            id: vsid,
            new: meta_vs("new"),
            old: meta_vs("old"),
        },
        Event::SetVolumeSetSize {
            id: vsid,
            size: 1 << 40,
            old_size: 3,
        },
        Event::DeleteVolumeSet { id: vsid },
        Event::ForkBranch(NewBranch {
            volume_set: vsid,
            branch: BranchId(id(20)),
            name: "master".into(),
            snapshots: snaps.clone(),
            tip: snaps[1].id,
        }),
        Event::ImportBranch(NewBranch {
            volume_set: vsid,
            branch: BranchId(id(21)),
            name: "imported".into(),
            snapshots: vec![snapshot(12, Some(10))],
            tip: SnapshotId(id(12)),
        }),
        Event::ExtendBranch {
            volume_set: vsid,
            branch: BranchId(id(20)),
            old_tip: snaps[1].id,
            snapshots: vec![snapshot(13, Some(11))],
        },
        Event::RenameBranch {
            volume_set: vsid,
            branch: BranchId(id(20)),
            old_name: "master".into(),
            new_name: "main".into(),
        },
        Event::UpdateSnapshots {
            updates: vec![SnapshotUpdate {
                id: snaps[0].id,
                new: sm,
                old,
                set_blob: Some(BlobId::from("blob-1")),
            }],
        },
        Event::SetBlobIdAndSize {
            snapshot: snaps[1].id,
            blob: BlobId::from("blob-2"),
            size: 300,
            old_blob: BlobId::nil(),
            old_size: 0,
        },
        Event::DeleteSnapshots {
            volume_set: vsid,
            snapshots: vec![SnapshotId(id(13))],
            removed_branches: vec![BranchId(id(20))],
            new_tip: Some(NewTip {
                snapshot: snaps[1].id,
                branch: BranchId(id(22)),
                name: "main".into(),
            }),
        },
        Event::ImportBush {
            bush: Bush {
                root: snaps[0].id,
                volume_set: vsid,
                data_server: -7,
            },
        },
        Event::DeleteBush { root: snaps[0].id },
        Event::ImportVolume {
            volume: Volume {
                id: VolumeId::from("vol-1"),
                volume_set: vsid,
                base: Some(snaps[1].id),
                mount_path: "/mnt/v".into(),
                attrs: [("a".to_string(), "b".to_string())].into(),
                created: Timestamp(5),
                size: 9,
                name: "v".into(),
            },
        },
        Event::UpdateVolume {
            id: VolumeId::from("vol-1"),
            name: "w".into(),
            attrs: Attrs::new(),
            old_name: "v".into(),
            old_attrs: [("a".to_string(), "b".to_string())].into(),
        },
        Event::DeleteVolume {
            id: VolumeId::from("vol-1"),
        },
        Event::SetStoreId {
            id: StoreId(id(30)),
        },
        Event::MoveBranch {
            volume_set: vsid,
            branch: BranchId(id(21)),
            old_tip: SnapshotId(id(12)),
            new_tip: SnapshotId(id(11)),
        },
        Event::SyncApplied {
            peer: StoreId(id(31)),
            volume_set: vsid,
            through: Lsn(u64::MAX - 1),
            records: 2,
        },
        Event::SyncConflict {
            peer: StoreId(id(31)),
            conflict: Box::new(Conflict::BranchNameClash {
                volume_set: vsid,
                branch: BranchId(id(23)),
                wanted: "main".into(),
                given: "main-1".into(),
                holder: BranchId(id(22)),
            }),
            adopted: false,
        },
    ];
    assert!(events
        .iter()
        .enumerate()
        .all(|(i, e)| e.kind().0 as usize == i + 1));
    events
}

/// The other conflict variants (the sample above holds one).
pub fn sample_conflicts() -> Vec<Conflict> {
    let vsid = VolumeSetId(id(1));
    let sm = snapshot(10, None).meta();
    vec![
        Conflict::VolumeSet {
            id: vsid,
            target: meta_vs("t"),
            current: meta_vs("c"),
            initial: meta_vs("i"),
        },
        Conflict::Snapshot {
            id: SnapshotId(id(10)),
            target: sm.clone(),
            current: sm.clone(),
            initial: sm,
        },
        Conflict::BranchRename {
            volume_set: vsid,
            branch: BranchId(id(20)),
            target: "a".into(),
            current: "b".into(),
            initial: "c".into(),
        },
        Conflict::BranchTipTaken {
            volume_set: vsid,
            branch: BranchId(id(23)),
            tip: SnapshotId(id(11)),
            holder: BranchId(id(20)),
        },
    ]
}

/// The envelope of `event` as written by a store.
pub fn envelope(event: Event) -> Envelope {
    Envelope {
        time: Timestamp(1_700_000_000_000_000),
        actor: Some("fuzz".into()),
        event,
    }
}

/// A segment built by hand: header, one frame per payload (LSNs from `first_lsn`; every
/// third record continues a batch into the next), and a footer when `sealed`. Returns
/// the bytes and the segment digest.
pub fn build_segment(
    segment: u64,
    first_lsn: u64,
    prev: Digest,
    records: &[(u16, Vec<u8>)],
    sealed: bool,
) -> (Vec<u8>, Digest) {
    let mut b = format::encode_segment_header(&SegmentHeader {
        version: format::FORMAT_VERSION,
        segment: SegmentId(segment),
        first_lsn: Lsn(first_lsn),
        prev_digest: prev,
    })
    .to_vec();
    for (i, (kind, payload)) in records.iter().enumerate() {
        let last = i + 1 == records.len();
        let flags = if i % 3 == 1 && !last {
            format::FLAG_BATCH_CONTINUES
        } else {
            0
        };
        format::encode_frame(
            &mut b,
            SegmentId(segment),
            Lsn(first_lsn + i as u64),
            RecordKind(*kind),
            flags,
            payload,
        );
    }
    let digest = *blake3::hash(&b).as_bytes();
    if sealed {
        let f = Footer {
            record_count: records.len() as u64,
            last_lsn: Lsn(first_lsn + records.len() as u64 - 1),
            digest,
        };
        b.extend_from_slice(&format::encode_footer(SegmentId(segment), &f));
    }
    (b, digest)
}

/// The records of the sample events, as (kind, payload).
pub fn sample_records() -> Vec<(u16, Vec<u8>)> {
    sample_events()
        .into_iter()
        .map(|e| {
            let k = e.kind().0;
            (k, envelope(e).encode().unwrap())
        })
        .collect()
}

/// The fixed sealed segment 1 that the segment target puts before a fuzzed segment 2 in
/// its two-segment mode: (bytes, digest, last LSN).
pub fn fixed_first_segment() -> &'static (Vec<u8>, Digest, u64) {
    static S: std::sync::OnceLock<(Vec<u8>, Digest, u64)> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let recs: Vec<(u16, Vec<u8>)> = sample_records().into_iter().take(4).collect();
        let (b, d) = build_segment(1, 1, DIGEST_NONE, &recs, true);
        (b, d, recs.len() as u64)
    })
}

/// A hand-made batch of every kind a bundle may carry.
pub fn sample_batch() -> Batch {
    let vsid = VolumeSetId(id(1));
    let events = sample_events();
    let mut records = Vec::new();
    let mut lsn = 3;
    for e in events
        .into_iter()
        .chain(sample_conflicts().into_iter().map(|c| Event::SyncConflict {
            peer: StoreId(id(40)),
            conflict: Box::new(c),
            adopted: true,
        }))
    {
        if matches!(e.kind().0, 1 | 2 | 5 | 6 | 7 | 8 | 9 | 18 | 20) {
            records.push((Lsn(lsn), envelope(e)));
            lsn += 2;
        }
    }
    let mut origins = std::collections::BTreeMap::new();
    origins.insert(Lsn(5), StoreId(id(41)));
    Batch {
        source: StoreId(id(40)),
        volume_set: VolumeSet::new(vsid, "vs"),
        after: Lsn(0),
        through: Lsn(lsn + 1),
        records,
        origins,
        cursors: vec![(StoreId(id(41)), Lsn(17))],
        echoes: 1,
    }
}

/// Bundle bytes of [`sample_batch`].
pub fn sample_bundle() -> Vec<u8> {
    encode_bundle(&sample_batch()).unwrap()
}

/// A store with some history on simulated storage, made through the public API (every
/// record a real store writes: volume sets, branches, edits, blobs, bushes, volumes,
/// deletions). Returns the storage, closed.
pub fn sample_store() -> SimStorage {
    let sim = SimStorage::new();
    let s = Store::open_with(
        Arc::new(sim.clone()),
        StoreOptions {
            log: LogOptions {
                segment_bytes_max: 8192,
                prewrite_bytes: 1024,
                record_bytes_max: 2048,
                batch_bytes_max: 4096,
                ..LogOptions::default()
            },
            actor: Some("seed".into()),
        },
    )
    .unwrap();
    let vs = s
        .create_volume_set("vs", "p", Attrs::new(), "desc", "owner", "creator")
        .unwrap();
    let chain = |parent: Option<SnapshotId>, n: usize, base: u8| {
        let mut out: Vec<Snapshot> = Vec::new();
        let mut p = parent;
        for i in 0..n {
            let mut sn = Snapshot::new(SnapshotId(id(base + i as u8)), vs.id, p);
            sn.created = Timestamp(1_700_000_000_000_000 + i as i64);
            sn.last_modified = sn.created;
            p = Some(sn.id);
            out.push(sn);
        }
        out
    };
    let m = chain(None, 3, 100);
    s.fork_branch("master", &m).unwrap();
    s.extend_branch(&chain(Some(m[2].id), 2, 110)).unwrap();
    s.fork_branch("dev", &chain(Some(m[0].id), 2, 120)).unwrap();
    let init = s.get_volume_set(vs.id).unwrap();
    let mut cur = init.clone();
    cur.description = "edited".into();
    s.update_volume_set(&cur, Some(&init)).unwrap();
    let init = s.get_snapshot(m[1].id).unwrap();
    let mut cur = init.clone();
    cur.name = "named".into();
    s.update_snapshot(&cur, Some(&init)).unwrap();
    s.rename_branch(vs.id, "dev", "feature").unwrap();
    s.set_blob_id_and_size(m[0].id, &BlobId::from("b0"), 42)
        .unwrap();
    s.set_volume_set_size(vs.id, 4242).unwrap();
    s.import_bush(&Bush {
        root: m[0].id,
        volume_set: vs.id,
        data_server: 3,
    })
    .unwrap();
    s.import_volume(&Volume {
        id: VolumeId::from("vol"),
        volume_set: vs.id,
        base: Some(m[2].id),
        mount_path: "/mnt/vol".into(),
        attrs: Attrs::new(),
        created: Timestamp(1),
        size: 0,
        name: "vol".into(),
    })
    .unwrap();
    s.delete_volume(&VolumeId::from("vol")).unwrap();
    s.delete_branch(vs.id, "feature").unwrap();
    s.checkpoint().unwrap();
    s.close().unwrap();
    sim
}
