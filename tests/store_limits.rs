//! Every limit the store enforces (issue 8.5), at the bound and just over it, with the
//! typed error it returns and nothing written when it refuses. The table of limits is in
//! `/work/notes/limits.md`.
//!
//! What breaks a rule about one object's contents (a name, description, id, path or
//! attribute too long, too many attributes, an actor too long) is a bad argument
//! (`Error::InvalidArgument`, as the reference has it for bad names); the size of a call,
//! of the store or of a bundle is `Error::LimitExceeded` naming the `Limit`; the log's own
//! limits are `Error::RecordTooLarge` and `Error::BatchTooLarge`; a bundle file too large
//! to read is `Error::Bundle { problem: BundleProblem::TooLarge, .. }`.

mod store_support;

use mdslog::log::format::{self, Slot, RECORD_PAYLOAD_BYTES_MAX};
use mdslog::model::query::{
    ATTRS_MAX, ATTR_BYTES_MAX, DESCRIPTION_BYTES_MAX, MOUNT_PATH_BYTES_MAX, NAME_BYTES_MAX,
};
use mdslog::state::BATCH_SNAPSHOTS_MAX;
use mdslog::sync::batch::{encode_bundle, BUNDLE_BYTES_MAX, BUNDLE_HEADER_BYTES_MAX};
use mdslog::*;
use store_support::*;

/// `n` bytes of text, in two-byte characters where it can (the limits count bytes).
fn text(n: usize) -> String {
    "é".repeat(n / 2) + &"x".repeat(n % 2)
}

fn invalid<T: std::fmt::Debug>(r: Result<T>, what: &str) {
    match r {
        Err(Error::InvalidArgument(_)) => {}
        other => panic!("{what}: expected InvalidArgument, got {other:?}"),
    }
}

fn over<T: std::fmt::Debug>(r: Result<T>, limit: Limit, value: usize, max: usize) {
    match r {
        Err(Error::LimitExceeded {
            limit: l,
            value: v,
            max: m,
        }) if l == limit && v == value as u64 && m == max as u64 => {}
        other => panic!("expected {limit:?} {value} > {max}, got {other:?}"),
    }
}

/// Options whose records can hold the largest payload the format allows (16 MiB), so the
/// snapshots-per-call limit binds before the record size does.
fn big_records() -> StoreOptions {
    let mut o = StoreOptions::default();
    o.log.durability = Durability::Buffered;
    o.log.record_bytes_max = RECORD_PAYLOAD_BYTES_MAX as usize;
    o.log.batch_bytes_max = 2 * format::frame_bytes(o.log.record_bytes_max);
    o.log.segment_bytes_max = 64 << 20;
    o
}

// ---- Text fields ------------------------------------------------------------------------------

#[test]
fn names_and_other_text_fields_hold_255_bytes_not_256() {
    let (_d, store) = open();
    let at = text(NAME_BYTES_MAX);
    let past = text(NAME_BYTES_MAX + 1);
    assert_eq!((at.len(), past.len()), (255, 256));

    // Volume set: name, prefix, creator, owner and their user names.
    type VsField = fn(&mut VolumeSet, String);
    let vs_fields: [(&str, VsField); 6] = [
        ("name", |v, s| v.name = s),
        ("prefix", |v, s| v.prefix = s),
        ("creator", |v, s| v.creator = s),
        ("creator name", |v, s| v.creator_name = s),
        ("owner", |v, s| v.owner = s),
        ("owner name", |v, s| v.owner_name = s),
    ];
    for (what, set) in vs_fields {
        let mut v = VolumeSet::new(VolumeSetId::random(), "vs");
        set(&mut v, past.clone());
        invalid(store.import_volume_set(&v), what);
        set(&mut v, at.clone());
        store.import_volume_set(&v).unwrap();
    }
    let vs = new_vs(&store, "limits").id;

    // Snapshot: name, creator, owner, their user names, blob id.
    type SnapField = fn(&mut Snapshot, String);
    let snap_fields: [(&str, SnapField); 6] = [
        ("snapshot name", |s, t| s.name = t),
        ("creator", |s, t| s.creator = t),
        ("creator name", |s, t| s.creator_name = t),
        ("owner", |s, t| s.owner = t),
        ("owner name", |s, t| s.owner_name = t),
        ("blob id", |s, t| s.blob = BlobId(t)),
    ];
    for (what, set) in snap_fields {
        let mut s = snap(vs, None);
        set(&mut s, past.clone());
        invalid(store.fork_branch("", std::slice::from_ref(&s)), what);
        set(&mut s, at.clone());
        store.fork_branch("", std::slice::from_ref(&s)).unwrap();
    }
    let s = fork(&store, vs, "master", None, 1)[0];
    invalid(
        store.set_blob_id_and_size(s, &BlobId(past.clone()), 1),
        "blob id",
    );
    store
        .set_blob_id_and_size(s, &BlobId(at.clone()), 1)
        .unwrap();

    // Branch names: fork and rename.
    let b = snap(vs, Some(s));
    invalid(
        store.fork_branch(&past, std::slice::from_ref(&b)),
        "branch name",
    );
    store.fork_branch(&at, std::slice::from_ref(&b)).unwrap();
    invalid(store.rename_branch(vs, "master", &text(256)), "rename");
    let other = "x".repeat(255);
    store.rename_branch(vs, "master", &other).unwrap();

    // Volume id and name.
    let mut v = volume(&past, vs, None, "/mnt/a");
    invalid(store.import_volume(&v), "volume id");
    v.id = VolumeId(at.clone());
    v.name = past.clone();
    invalid(store.import_volume(&v), "volume name");
    v.name = at.clone();
    store.import_volume(&v).unwrap();
    v.name = past.clone();
    invalid(store.update_volume(&v), "volume name on update");
}

#[test]
fn the_actor_holds_255_bytes_not_256() {
    let dir = tempfile::tempdir().unwrap();
    let with = |actor: String| StoreOptions {
        actor: Some(actor),
        ..StoreOptions::default()
    };
    invalid(Store::open(dir.path(), with(text(256))), "actor");
    invalid(
        Store::open(dir.path(), with("a\u{7}b".into())),
        "actor with a control character",
    );
    let store = Store::open(dir.path(), with(text(255))).unwrap();
    new_vs(&store, "a");
    store.close().unwrap();
    invalid(
        Store::open_read_only(dir.path(), with(text(256))),
        "actor, read-only",
    );
}

#[test]
fn descriptions_hold_64_kib() {
    let (_d, store) = open();
    let at = text(DESCRIPTION_BYTES_MAX);
    let past = text(DESCRIPTION_BYTES_MAX + 1);
    let mut v = VolumeSet::new(VolumeSetId::random(), "vs");
    v.description = past.clone();
    invalid(store.import_volume_set(&v), "volume set description");
    v.description = at.clone();
    store.import_volume_set(&v).unwrap();
    v.description = past.clone();
    invalid(
        store.update_volume_set(&v, None),
        "volume set description on update",
    );

    let mut s = snap(v.id, None);
    s.description = past.clone();
    invalid(
        store.fork_branch("", std::slice::from_ref(&s)),
        "snapshot description",
    );
    s.description = at.clone();
    store.fork_branch("", std::slice::from_ref(&s)).unwrap();
    let mut s = store.get_snapshot(s.id).unwrap();
    s.description = past;
    invalid(
        store.update_snapshot(&s, None),
        "snapshot description on update",
    );
}

#[test]
fn mount_paths_hold_4096_bytes() {
    let (_d, store) = open();
    let vs = new_vs(&store, "vs").id;
    let v = volume("v", vs, None, &text(MOUNT_PATH_BYTES_MAX + 1));
    invalid(store.import_volume(&v), "mount path");
    let v = volume("v", vs, None, &text(MOUNT_PATH_BYTES_MAX));
    store.import_volume(&v).unwrap();
}

// ---- Attributes ------------------------------------------------------------------------------

fn n_attrs(n: usize) -> Attrs {
    (0..n).map(|i| (format!("k{i}"), "v".to_string())).collect()
}

#[test]
fn an_object_holds_1024_attributes() {
    let (_d, store) = open();
    // Volume sets, on import and on update.
    let mut v = VolumeSet::new(VolumeSetId::random(), "vs");
    v.attrs = n_attrs(ATTRS_MAX + 1);
    invalid(store.import_volume_set(&v), "1025 attributes");
    v.attrs = n_attrs(ATTRS_MAX);
    store.import_volume_set(&v).unwrap();
    v.attrs = n_attrs(ATTRS_MAX + 1);
    invalid(store.update_volume_set(&v, None), "1025 attributes");
    assert_eq!(store.get_volume_set(v.id).unwrap().attrs.len(), ATTRS_MAX);

    // Snapshots, on fork and on update.
    let mut s = snap(v.id, None);
    s.attrs = n_attrs(ATTRS_MAX + 1);
    invalid(
        store.fork_branch("", std::slice::from_ref(&s)),
        "1025 attributes",
    );
    s.attrs = n_attrs(ATTRS_MAX);
    store.fork_branch("", std::slice::from_ref(&s)).unwrap();
    let mut s = store.get_snapshot(s.id).unwrap();
    s.attrs = n_attrs(ATTRS_MAX + 1);
    invalid(store.update_snapshot(&s, None), "1025 attributes");

    // Volumes, on import and on update.
    let mut vol = volume("vol", v.id, None, "/mnt/vol");
    vol.attrs = n_attrs(ATTRS_MAX + 1);
    invalid(store.import_volume(&vol), "1025 attributes");
    vol.attrs = n_attrs(ATTRS_MAX);
    store.import_volume(&vol).unwrap();
    vol.attrs = n_attrs(ATTRS_MAX + 1);
    invalid(store.update_volume(&vol), "1025 attributes");
    assert_eq!(store.counts().unwrap().snapshots, 1);
}

#[test]
fn attribute_keys_and_values_hold_16_kib() {
    let (_d, store) = open();
    let at = text(ATTR_BYTES_MAX);
    let past = text(ATTR_BYTES_MAX + 1);
    let cases = [
        attrs(&[(&past, "v")]),
        attrs(&[("k", &past)]),
        attrs(&[("a", "v"), ("k", &past)]),
    ];
    for a in &cases {
        let mut v = VolumeSet::new(VolumeSetId::random(), "vs");
        v.attrs = a.clone();
        invalid(store.import_volume_set(&v), "16 KiB + 1");
    }
    let mut v = VolumeSet::new(VolumeSetId::random(), "vs");
    v.attrs = attrs(&[(&at, &at)]);
    store.import_volume_set(&v).unwrap();

    let mut s = snap(v.id, None);
    s.attrs = attrs(&[("k", &past)]);
    invalid(
        store.fork_branch("", std::slice::from_ref(&s)),
        "16 KiB + 1",
    );
    s.attrs = attrs(&[(&at, &at)]);
    store.fork_branch("", std::slice::from_ref(&s)).unwrap();

    let mut vol = volume("vol", v.id, None, "/mnt/vol");
    vol.attrs = attrs(&[(&past, "v")]);
    invalid(store.import_volume(&vol), "16 KiB + 1");
    vol.attrs = attrs(&[(&at, &at)]);
    store.import_volume(&vol).unwrap();
}

// ---- Snapshots per call and records ----------------------------------------------------------

#[test]
fn a_call_holds_100k_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), big_records()).unwrap();
    let vs = new_vs(&store, "vs").id;
    let n = BATCH_SNAPSHOTS_MAX;

    // Fork and import.
    let c = chain(vs, None, n + 1);
    over(
        store.fork_branch("a", &c),
        Limit::SnapshotsPerCall,
        n + 1,
        n,
    );
    over(
        store.import_branch(BranchId::random(), "a", &c),
        Limit::SnapshotsPerCall,
        n + 1,
        n,
    );
    assert_eq!(store.counts().unwrap().snapshots, 0);
    store.fork_branch("a", &c[..n]).unwrap();
    let a: Vec<SnapshotId> = c[..n].iter().map(|s| s.id).collect();

    // Extend.
    let more = chain(vs, Some(a[n - 1]), n + 1);
    over(
        store.extend_branch(&more),
        Limit::SnapshotsPerCall,
        n + 1,
        n,
    );
    store.extend_branch(&more[..1]).unwrap();
    assert_eq!(store.counts().unwrap().snapshots as usize, n + 1);

    // Update.
    let mut pairs: Vec<SnapshotPair> = a
        .iter()
        .map(|id| {
            let mut s = store.get_snapshot(*id).unwrap();
            s.name = "renamed".into();
            (s, None)
        })
        .collect();
    pairs.push((store.get_snapshot(more[0].id).unwrap(), None));
    over(
        store.update_snapshots(&pairs),
        Limit::SnapshotsPerCall,
        n + 1,
        n,
    );
    pairs.pop();
    store.update_snapshots(&pairs).unwrap();
    assert_eq!(store.get_snapshot(a[7]).unwrap().name, "renamed");

    // Delete: the branch now holds n + 1 snapshots of its own.
    let mut all = a.clone();
    all.push(more[0].id);
    over(
        store.delete_snapshots(&all, None),
        Limit::SnapshotsPerCall,
        n + 1,
        n,
    );
    assert_eq!(store.counts().unwrap().snapshots as usize, n + 1);
    // All but the root go; the root takes the branch (and its name).
    store.delete_snapshots(&all[1..], Some(a[0])).unwrap();
    assert_eq!(store.counts().unwrap().snapshots, 1);
    assert_eq!(store.get_tip(vs, "a").unwrap().id, a[0]);
    // delete_branch computes its own list and is not bound by the per-call limit: a
    // branch holding n + 1 snapshots of its own goes whole, as two records of one batch.
    let c = chain(vs, Some(a[0]), n + 1);
    store.fork_branch("big", &c[..n]).unwrap();
    store.extend_branch(&c[n..]).unwrap();
    let before = store.flush().unwrap();
    let gone = store.delete_branch(vs, "big").unwrap();
    assert_eq!(gone.len(), n + 1);
    assert_eq!(store.flush().unwrap().0 - before.0, 2);
    assert_eq!(store.counts().unwrap().snapshots, 1);

    // A branch holding exactly n snapshots of its own deletes in one call (the walk stops
    // at the tip of "a").
    let c = chain(vs, Some(a[0]), n);
    store.fork_branch("b", &c).unwrap();
    assert_eq!(store.delete_branch(vs, "b").unwrap().len(), n);
    assert_eq!(store.counts().unwrap().snapshots, 1);
}

#[test]
fn with_default_options_the_record_limit_binds_before_100k_snapshots() {
    let (_d, store) = open();
    let vs = new_vs(&store, "vs").id;
    let c = chain(vs, None, BATCH_SNAPSHOTS_MAX);
    match store.fork_branch("a", &c) {
        Err(Error::RecordTooLarge { bytes, max }) => {
            assert_eq!(max, 4 << 20);
            assert!(bytes > max);
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert_eq!(store.counts().unwrap().snapshots, 0);
    // The record of 10,000 plain snapshots is far below it.
    store.fork_branch("a", &c[..10_000]).unwrap();
}

#[test]
fn a_record_holds_4_mib_by_default_and_16_mib_at_most() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogOptions::default()).unwrap();
    let max = LogOptions::default().record_bytes_max;
    assert_eq!(max, 4 << 20);
    match log.append(RecordKind(1), &vec![7u8; max + 1]) {
        Err(Error::RecordTooLarge { bytes, max: m }) => assert_eq!((bytes, m), (max + 1, max)),
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    let lsn = log.append(RecordKind(1), &vec![7u8; max]).unwrap();
    assert_eq!(lsn, Lsn(1));
    log.close().unwrap();

    // The format's hard limit: options beyond it are refused.
    let format_max = RECORD_PAYLOAD_BYTES_MAX as usize;
    let mut o = LogOptions {
        record_bytes_max: format_max + 1,
        batch_bytes_max: 2 * format::frame_bytes(format_max + 1),
        ..LogOptions::default()
    };
    invalid(
        Log::open(dir.path(), o.clone()),
        "record_bytes_max over the format",
    );
    o.record_bytes_max = format_max;
    let log = Log::open(dir.path(), o).unwrap();
    log.append(RecordKind(1), &vec![1u8; format_max]).unwrap();
    assert!(matches!(
        log.append(RecordKind(1), &vec![1u8; format_max + 1]),
        Err(Error::RecordTooLarge { .. })
    ));
    log.close().unwrap();

    // A reader refuses a frame that claims more than the format allows, before reading it.
    let mut frame = Vec::new();
    format::encode_frame(&mut frame, SegmentId(1), Lsn(1), RecordKind(1), 0, b"x");
    frame[0..4].copy_from_slice(&(RECORD_PAYLOAD_BYTES_MAX + 1).to_le_bytes());
    assert!(matches!(
        format::decode_slot(&frame, SegmentId(1)),
        Slot::Bad(format::FormatFault::RecordTooLarge { .. })
    ));
}

#[test]
fn a_store_mutation_over_the_record_limit_writes_nothing() {
    let (dir, store) = open();
    // 300 attributes of 16 KiB: within every attribute limit, but a 4.8 MiB record.
    let mut v = VolumeSet::new(VolumeSetId::random(), "vs");
    v.attrs = (0..300)
        .map(|i| (format!("k{i}"), text(ATTR_BYTES_MAX)))
        .collect();
    assert!(matches!(
        store.import_volume_set(&v),
        Err(Error::RecordTooLarge { .. })
    ));
    assert_eq!(store.counts().unwrap().volume_sets, 0);
    let lsn = store.durable_lsn();
    store.close().unwrap();
    let store = reopen(&dir);
    assert_eq!(store.durable_lsn(), lsn);
    assert_eq!(store.counts().unwrap().volume_sets, 0);
}

// ---- The log's batches, segments and queue ---------------------------------------------------

fn records(n: usize, bytes: usize) -> Vec<Record> {
    (0..n)
        .map(|_| Record::new(RecordKind(1), vec![3u8; bytes]))
        .collect()
}

#[test]
fn a_batch_holds_its_records_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let o = LogOptions {
        record_bytes_max: 1000,
        batch_records_max: 8,
        batch_bytes_max: 4 * format::frame_bytes(1000),
        ..LogOptions::default()
    };
    let log = Log::open(dir.path(), o.clone()).unwrap();
    match log.append_batch(records(9, 1)) {
        Err(Error::BatchTooLarge {
            records,
            records_max,
            ..
        }) => assert_eq!((records, records_max), (9, 8)),
        other => panic!("expected BatchTooLarge, got {other:?}"),
    }
    log.append_batch(records(8, 1)).unwrap();
    // Bytes: four frames of the largest record fill the batch exactly; one more frame
    // (of one byte: 32 framed) does not fit.
    assert_eq!(o.batch_bytes_max, 4096);
    log.append_batch(records(4, 1000)).unwrap();
    let mut five = records(4, 1000);
    five.extend(records(1, 1));
    match log.append_batch(five) {
        Err(Error::BatchTooLarge {
            bytes, bytes_max, ..
        }) => assert_eq!((bytes, bytes_max), (4096 + 32, 4096)),
        other => panic!("expected BatchTooLarge, got {other:?}"),
    }
    assert_eq!(log.durable_lsn(), Lsn(12));
    log.close().unwrap();

    // The options themselves: a batch must hold one record of the largest size.
    let bad = LogOptions {
        batch_bytes_max: format::frame_bytes(1000) - 1,
        ..o.clone()
    };
    invalid(Log::open(dir.path(), bad), "batch smaller than a record");
    let bad = LogOptions {
        batch_records_max: 0,
        ..o
    };
    invalid(Log::open(dir.path(), bad), "no records per batch");
}

#[test]
fn a_segment_holds_a_header_a_footer_and_a_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let overhead = (format::SEGMENT_HEADER_BYTES + format::FOOTER_BYTES) as u64;
    let mut o = LogOptions {
        record_bytes_max: 1000,
        batch_bytes_max: 2 * format::frame_bytes(1000),
        prewrite_bytes: 0,
        ..LogOptions::default()
    };
    o.segment_bytes_max = overhead + o.batch_bytes_max as u64 - 1;
    invalid(
        Log::open(dir.path(), o.clone()),
        "segment smaller than a batch",
    );
    o.segment_bytes_max += 1;
    let log = Log::open(dir.path(), o.clone()).unwrap();
    for _ in 0..20 {
        log.append_batch(records(2, 1000)).unwrap();
    }
    log.close().unwrap();
    // Full batches, one per segment: no segment passes the limit.
    let mut segments = 0;
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "seg") {
            segments += 1;
            let len = std::fs::metadata(&p).unwrap().len();
            assert!(len <= o.segment_bytes_max, "{}: {len}", p.display());
        }
    }
    assert!(segments >= 20, "{segments} segments");
}

#[test]
fn a_full_writer_queue_makes_appenders_wait_and_never_fails() {
    let dir = tempfile::tempdir().unwrap();
    let o = LogOptions {
        queue_depth_max: 0,
        ..LogOptions::default()
    };
    invalid(Log::open(dir.path(), o), "queue depth 0");
    let o = LogOptions {
        queue_depth_max: 1,
        durability: Durability::Buffered,
        ..LogOptions::default()
    };
    let log = std::sync::Arc::new(Log::open(dir.path(), o).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                for _ in 0..500 {
                    log.append(RecordKind(1), b"queued").unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(log.flush().unwrap(), Lsn(4000));
}

// ---- Bundles ------------------------------------------------------------------------------------

/// A volume set whose attributes make its bundle header `extra` bytes longer than with
/// the last attribute value `len` bytes long.
fn big_vs(store: &Store, id: VolumeSetId, len: usize) -> VolumeSet {
    let mut v = VolumeSet::new(id, "big");
    v.attrs = (0..63)
        .map(|i| (format!("k{i:02}"), "v".repeat(ATTR_BYTES_MAX)))
        .collect();
    v.attrs.insert("last".into(), "w".repeat(len));
    match store.get_volume_set(id) {
        Ok(_) => {
            store.update_volume_set(&v, None).unwrap();
        }
        Err(_) => store.import_volume_set(&v).unwrap(),
    }
    v
}

#[test]
fn a_bundle_header_holds_1_mib() {
    let (_d, store) = open();
    let id = VolumeSetId::random();
    // Just over: the error names the header's size, from which the size that fits exactly
    // follows (a longer attribute value makes the header longer byte for byte).
    let probe = 20_000.min(ATTR_BYTES_MAX);
    big_vs(&store, id, probe);
    let batch = store.export_batch(id, Lsn::ZERO, None).unwrap().unwrap();
    let header = match encode_bundle(&batch) {
        Err(Error::LimitExceeded {
            limit: Limit::BundleHeaderBytes,
            value,
            max,
        }) => {
            assert_eq!(max as usize, BUNDLE_HEADER_BYTES_MAX);
            value as usize
        }
        other => panic!("expected a header over the limit, got {other:?}"),
    };
    let fits = probe - (header - BUNDLE_HEADER_BYTES_MAX);
    assert!(fits > 300, "the probe stays within one length encoding");

    big_vs(&store, id, fits + 1);
    let batch = store.export_batch(id, Lsn::ZERO, None).unwrap().unwrap();
    over(
        encode_bundle(&batch),
        Limit::BundleHeaderBytes,
        BUNDLE_HEADER_BYTES_MAX + 1,
        BUNDLE_HEADER_BYTES_MAX,
    );
    let file = tempfile::tempdir().unwrap();
    let path = file.path().join("b.bundle");
    assert!(matches!(
        sync::write_bundle(&path, &batch),
        Err(Error::LimitExceeded { .. })
    ));
    assert!(!path.exists());

    // At the bound: the bundle is written, read back and applied.
    let v = big_vs(&store, id, fits);
    let batch = store.export_batch(id, Lsn::ZERO, None).unwrap().unwrap();
    sync::write_bundle(&path, &batch).unwrap();
    let back = sync::read_bundle(&path).unwrap();
    let (_d2, other) = open();
    other.apply_batch(&back, sync::Winner::Sender).unwrap();
    assert_eq!(other.get_volume_set(id).unwrap().attrs, v.attrs);
}

#[test]
fn a_bundle_file_holds_1_gib() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.bundle");
    // Sparse files: the size is checked before anything is read.
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(BUNDLE_BYTES_MAX + 1).unwrap();
    match sync::read_bundle(&path) {
        Err(Error::Bundle {
            problem: BundleProblem::TooLarge { bytes, max },
            ..
        }) => assert_eq!((bytes, max), (BUNDLE_BYTES_MAX + 1, BUNDLE_BYTES_MAX)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // At the bound the size passes and the content is judged (zeros: not a bundle).
    f.set_len(BUNDLE_BYTES_MAX).unwrap();
    assert!(matches!(
        sync::read_bundle(&path),
        Err(Error::Bundle {
            problem: BundleProblem::BadMagic,
            ..
        })
    ));
}
