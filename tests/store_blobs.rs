//! Blob ids: setting them, reading them, and the two negotiations for moving data between
//! stores (find-non-missing for uploads, request-blob-diff for downloads).

mod store_support;

use mdslog::*;
use store_support::*;

/// A store with one branch of `n` snapshots, none holding data yet.
fn setup(n: usize) -> (tempfile::TempDir, Store, Vec<SnapshotId>) {
    let (d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, n);
    (d, store, m)
}

fn blob(s: &str) -> BlobId {
    BlobId::from(s)
}

#[test]
fn set_blob_id_and_size_is_unconditional() {
    let (_d, store, m) = setup(2);
    store.set_blob_id_and_size(m[0], &blob("b1"), 100).unwrap();
    let s = store.get_snapshot(m[0]).unwrap();
    assert_eq!((s.blob.clone(), s.size), (blob("b1"), 100));
    // Value to another value: allowed here (unlike an update).
    store.set_blob_id_and_size(m[0], &blob("b2"), 200).unwrap();
    let s = store.get_snapshot(m[0]).unwrap();
    assert_eq!((s.blob.clone(), s.size), (blob("b2"), 200));
    // And back to nil.
    store.set_blob_id_and_size(m[0], &BlobId::nil(), 0).unwrap();
    assert!(store.get_blob_id(m[0]).unwrap().is_nil());
    assert_eq!(store.get_snapshot(m[0]).unwrap().size, 0);
    // The other snapshot is untouched.
    assert!(store.get_blob_id(m[1]).unwrap().is_nil());

    let ghost = SnapshotId::random();
    let lsn = store.durable_lsn();
    let err = store
        .set_blob_id_and_size(ghost, &blob("x"), 1)
        .unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost),
        "{err:?}"
    );
    let err = store
        .set_blob_id_and_size(m[1], &blob("bad\u{1}"), 1)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(store.durable_lsn(), lsn);
}

#[test]
fn get_blob_ids_nil_for_known_without_data_unknown_absent() {
    let (_d, store, m) = setup(3);
    store.set_blob_id_and_size(m[1], &blob("b1"), 1).unwrap();
    let ghost = SnapshotId::random();
    let got = store.get_blob_ids(&[m[0], m[1], m[2], ghost]).unwrap();
    assert_eq!(got.len(), 3, "the unknown id is absent");
    assert_eq!(got[&m[0]], BlobId::nil());
    assert_eq!(got[&m[1]], blob("b1"));
    assert_eq!(got[&m[2]], BlobId::nil());
    assert!(!got.contains_key(&ghost));
    assert!(store.get_blob_ids(&[]).unwrap().is_empty());
    assert!(store.get_blob_ids(&[ghost]).unwrap().is_empty());
}

#[test]
fn get_blob_id_of_one() {
    let (_d, store, m) = setup(2);
    store.set_blob_id_and_size(m[1], &blob("b"), 1).unwrap();
    assert_eq!(store.get_blob_id(m[1]).unwrap(), blob("b"));
    assert!(store.get_blob_id(m[0]).unwrap().is_nil());
    let ghost = SnapshotId::random();
    let err = store.get_blob_id(ghost).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost),
        "{err:?}"
    );
}

#[test]
fn a_blob_given_at_fork_is_kept() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let mut s = snap(vs.id, None);
    s.blob = blob("from-fork");
    store
        .fork_branch("master", std::slice::from_ref(&s))
        .unwrap();
    assert_eq!(store.get_blob_id(s.id).unwrap(), blob("from-fork"));
}

// ---- FindNonMissingSnapshot (upload) ---------------------------------------------------------

#[test]
fn find_non_missing_unknown_target_is_snapshot_not_found() {
    let (_d, store, m) = setup(2);
    let ghost = SnapshotId::random();
    let err = store.find_non_missing_snapshot(ghost, &[m[0]]).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost),
        "{err:?}"
    );
}

#[test]
fn find_non_missing_target_with_blob_declines() {
    let (_d, store, m) = setup(2);
    store.set_blob_id_and_size(m[1], &blob("have"), 1).unwrap();
    let err = store.find_non_missing_snapshot(m[1], &[m[0]]).unwrap_err();
    assert!(
        matches!(err, Error::AlreadyHaveBlob(x) if x == m[1]),
        "{err:?}"
    );
    assert!(err.to_string().contains(&m[1].to_string()), "{err}");
}

#[test]
fn find_non_missing_returns_the_newest_candidate_with_a_blob() {
    let (_d, store, m) = setup(5);
    store.set_blob_id_and_size(m[0], &blob("b0"), 1).unwrap();
    store.set_blob_id_and_size(m[1], &blob("b1"), 1).unwrap();
    store.set_blob_id_and_size(m[2], &blob("b2"), 1).unwrap();
    // Candidates oldest to newest: m[3] has no blob, m[2] is the newest with one.
    let got = store
        .find_non_missing_snapshot(m[4], &[m[0], m[1], m[2], m[3]])
        .unwrap();
    assert_eq!(
        got,
        BlobBase {
            base: Some(m[2]),
            base_blob: blob("b2")
        }
    );
    let got = store
        .find_non_missing_snapshot(m[4], &[m[0], m[1]])
        .unwrap();
    assert_eq!(
        got,
        BlobBase {
            base: Some(m[1]),
            base_blob: blob("b1")
        }
    );
    let got = store.find_non_missing_snapshot(m[3], &[m[0]]).unwrap();
    assert_eq!(
        got,
        BlobBase {
            base: Some(m[0]),
            base_blob: blob("b0")
        }
    );
}

#[test]
fn find_non_missing_unknown_candidate_is_snapshot_not_found() {
    let (_d, store, m) = setup(3);
    store.set_blob_id_and_size(m[1], &blob("b1"), 1).unwrap();
    let ghost = SnapshotId::random();
    let err = store
        .find_non_missing_snapshot(m[2], &[m[0], ghost, m[1]])
        .unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost),
        "{err:?}"
    );
}

#[test]
fn find_non_missing_with_no_blob_starts_from_empty() {
    let (_d, store, m) = setup(3);
    let got = store
        .find_non_missing_snapshot(m[2], &[m[0], m[1]])
        .unwrap();
    assert_eq!(
        got,
        BlobBase {
            base: None,
            base_blob: BlobId::nil()
        }
    );
    let got = store.find_non_missing_snapshot(m[2], &[]).unwrap();
    assert_eq!(
        got,
        BlobBase {
            base: None,
            base_blob: BlobId::nil()
        }
    );
}

// ---- RequestBlobDiff (download) --------------------------------------------------------------

#[test]
fn request_blob_diff_needs_a_known_target_with_a_blob() {
    let (_d, store, m) = setup(2);
    let ghost = SnapshotId::random();
    let err = store.request_blob_diff(ghost, &[m[0]]).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost),
        "{err:?}"
    );
    // The original returned an untyped error here.
    let err = store.request_blob_diff(m[1], &[m[0]]).unwrap_err();
    assert!(matches!(err, Error::NoBlob(x) if x == m[1]), "{err:?}");
    assert!(err.to_string().contains(&m[1].to_string()), "{err}");
}

#[test]
fn request_blob_diff_returns_newest_base_and_target_blob() {
    let (_d, store, m) = setup(4);
    store.set_blob_id_and_size(m[0], &blob("b0"), 1).unwrap();
    store.set_blob_id_and_size(m[1], &blob("b1"), 1).unwrap();
    store.set_blob_id_and_size(m[3], &blob("b3"), 1).unwrap();
    let (base, target) = store.request_blob_diff(m[3], &[m[0], m[1], m[2]]).unwrap();
    assert_eq!(
        base,
        BlobBase {
            base: Some(m[1]),
            base_blob: blob("b1")
        }
    );
    assert_eq!(target, blob("b3"));
    let (base, target) = store.request_blob_diff(m[3], &[m[0]]).unwrap();
    assert_eq!(
        (base.base, base.base_blob, target),
        (Some(m[0]), blob("b0"), blob("b3"))
    );
}

#[test]
fn request_blob_diff_with_no_base_diffs_from_empty() {
    let (_d, store, m) = setup(3);
    store.set_blob_id_and_size(m[2], &blob("b2"), 1).unwrap();
    let (base, target) = store.request_blob_diff(m[2], &[m[0], m[1]]).unwrap();
    assert_eq!(
        base,
        BlobBase {
            base: None,
            base_blob: BlobId::nil()
        }
    );
    assert_eq!(target, blob("b2"));
    let (base, _) = store.request_blob_diff(m[2], &[]).unwrap();
    assert_eq!(base.base, None);
}

#[test]
fn request_blob_diff_unknown_candidate_is_snapshot_not_found() {
    let (_d, store, m) = setup(2);
    store.set_blob_id_and_size(m[1], &blob("b1"), 1).unwrap();
    let ghost = SnapshotId::random();
    let err = store.request_blob_diff(m[1], &[ghost, m[0]]).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost),
        "{err:?}"
    );
}

/// Upload and download agree: what one store can send as a diff base, the other finds.
#[test]
fn negotiation_between_two_stores() {
    let (_d1, src) = open();
    let (_d2, dst) = open();
    let vs = new_vs(&src, "repo");
    dst.import_volume_set(&src.get_volume_set(vs.id).unwrap())
        .unwrap();
    let c = chain(vs.id, None, 3);
    src.fork_branch("master", &c).unwrap();
    dst.fork_branch("master", &c).unwrap();
    for (i, s) in c.iter().enumerate() {
        src.set_blob_id_and_size(s.id, &blob(&format!("src-{i}")), 1)
            .unwrap();
    }
    dst.set_blob_id_and_size(c[0].id, &blob("dst-0"), 1)
        .unwrap();
    let ids = snap_ids(&c);
    // The destination is asked to receive c[2]: its base is c[0].
    let up = dst.find_non_missing_snapshot(ids[2], &ids[..2]).unwrap();
    assert_eq!(
        up,
        BlobBase {
            base: Some(ids[0]),
            base_blob: blob("dst-0")
        }
    );
    // The source makes the diff from that base.
    let (down, target) = src.request_blob_diff(ids[2], &ids[..1]).unwrap();
    assert_eq!((down.base, target), (Some(ids[0]), blob("src-2")));
    // After the transfer the destination declines a second offer.
    dst.set_blob_id_and_size(ids[2], &blob("dst-2"), 1).unwrap();
    let err = dst
        .find_non_missing_snapshot(ids[2], &ids[..2])
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyHaveBlob(_)), "{err:?}");
}
