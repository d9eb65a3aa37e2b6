use mdslog::*;

#[test]
fn smoke() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let vs = store
        .create_volume_set("demo", "acme", Attrs::new(), "a demo", "me", "me")
        .unwrap();
    let root = store
        .snapshot_fork(
            vs.id,
            SnapshotId::random(),
            "master",
            None,
            BlobId::nil(),
            Attrs::new(),
            "s1",
            10,
            "",
        )
        .unwrap();
    assert_eq!(root.depth, 1);
    assert_eq!(root.branch_name.as_deref(), Some("master"));
    let s2 = store
        .snapshot_extend(
            SnapshotId::random(),
            root.id,
            BlobId::from("b2"),
            Attrs::new(),
            "s2",
            20,
            "",
        )
        .unwrap();
    assert_eq!(s2.depth, 2);
    assert_eq!(store.get_tip(vs.id, "master").unwrap().id, s2.id);
    let f = store
        .snapshot_fork(
            vs.id,
            SnapshotId::random(),
            "dev",
            Some(root.id),
            BlobId::nil(),
            Attrs::new(),
            "f",
            1,
            "",
        )
        .unwrap();
    assert_eq!(store.num_children(root.id).unwrap(), 2);
    store.rename_branch(vs.id, "dev", "feature").unwrap();
    assert_eq!(store.get_tip(vs.id, "feature").unwrap().id, f.id);
    let before = store.canonical_dump().unwrap();
    drop(store);
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.canonical_dump().unwrap(), before);
    assert_eq!(
        store.get_branches(&BranchQuery::all(vs.id)).unwrap().len(),
        2
    );
}
