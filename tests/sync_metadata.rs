//! Sync of metadata between stores: every row of the three-way table for volume sets and
//! snapshots, in both directions, with the report's conflicts and the `SyncConflict`
//! records; what never travels (blobs, sizes, other volume sets); pull-only; three stores.
//!
//! In a sync the remote side is the target: a real conflict is won by the remote's value,
//! and after the sync both stores hold it.

mod store_support;
mod sync_support;

use mdslog::event::{Conflict, Event};
use mdslog::sync::{sync, SyncMode, SyncReport};
use mdslog::*;
use store_support::*;
use sync_support::*;

/// Two stores holding one volume set (a branch "master" of `n` snapshots), synced once.
/// `l` is the side that syncs (local), `r` the other (remote, the target).
struct Two {
    _dl: tempfile::TempDir,
    l: Store,
    dr: tempfile::TempDir,
    r: Store,
    vs: VolumeSet,
    snaps: Vec<Snapshot>,
}

/// Builds [`Two`]; `creator_is_local` says which store created the volume set (the other
/// received it by a first sync), so that each row runs with the original records on
/// either side.
fn two(n: usize, creator_is_local: bool) -> Two {
    let (dl, l) = open();
    let (dr, r) = open();
    let (c, o) = if creator_is_local { (&l, &r) } else { (&r, &l) };
    let vs = new_vs(c, "db");
    let snaps = chain(vs.id, None, n);
    c.fork_branch("master", &snaps).unwrap();
    let rep = sync(c, o, vs.id, SyncMode::Both).unwrap();
    assert!(rep.conflicts.is_empty());
    assert_eq!(synced_view(&l, vs.id), synced_view(&r, vs.id));
    Two {
        _dl: dl,
        l,
        dr,
        r,
        vs,
        snaps,
    }
}

/// The object a scenario edits: the volume set, or its second snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Obj {
    Vs,
    Snap,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Meta {
    Vs(VolumeSetMeta),
    Snap(SnapshotMeta),
}

impl Meta {
    fn desc(&self) -> &str {
        match self {
            Meta::Vs(m) => &m.description,
            Meta::Snap(m) => &m.description,
        }
    }
}

impl Two {
    fn snap_id(&self) -> SnapshotId {
        self.snaps[1].id
    }

    fn meta(&self, s: &Store, obj: Obj) -> Meta {
        match obj {
            Obj::Vs => Meta::Vs(s.get_volume_set(self.vs.id).unwrap().meta()),
            Obj::Snap => Meta::Snap(s.get_snapshot(self.snap_id()).unwrap().meta()),
        }
    }

    /// A three-way edit of the object's description (initial = the store's value).
    fn set_desc(&self, s: &Store, obj: Obj, d: &str) {
        match obj {
            Obj::Vs => {
                let init = s.get_volume_set(self.vs.id).unwrap();
                let mut cur = init.clone();
                cur.description = d.to_string();
                assert!(s.update_volume_set(&cur, Some(&init)).unwrap().is_none());
            }
            Obj::Snap => {
                let init = s.get_snapshot(self.snap_id()).unwrap();
                let mut cur = init.clone();
                cur.description = d.to_string();
                assert!(s.update_snapshot(&cur, Some(&init)).unwrap().is_none());
            }
        }
    }

    /// The conflict a sync reports for the object, given the three versions.
    fn conflict(&self, obj: Obj, target: &Meta, current: &Meta, initial: &Meta) -> Conflict {
        match (obj, target, current, initial) {
            (Obj::Vs, Meta::Vs(t), Meta::Vs(c), Meta::Vs(i)) => Conflict::VolumeSet {
                id: self.vs.id,
                target: t.clone(),
                current: c.clone(),
                initial: i.clone(),
            },
            (Obj::Snap, Meta::Snap(t), Meta::Snap(c), Meta::Snap(i)) => Conflict::Snapshot {
                id: self.snap_id(),
                target: t.clone(),
                current: c.clone(),
                initial: i.clone(),
            },
            other => panic!("mixed kinds: {other:?}"),
        }
    }
}

/// What one scenario did: the object's value before the edits (`initial`), on each side
/// after its edits (`*_before` the sync) and after the sync, and whether each side's log
/// grew during the sync.
struct Outcome {
    t: Two,
    obj: Obj,
    report: SyncReport,
    initial: Meta,
    l_before: Meta,
    r_before: Meta,
    l_after: Meta,
    r_after: Meta,
    l_wrote: bool,
    r_wrote: bool,
}

/// Edits the object's description on the local side (`local`, in order; "" is the
/// original value) and on the remote side, then syncs local → remote.
fn scenario(obj: Obj, creator_is_local: bool, local: &[&str], remote: &[&str]) -> Outcome {
    let t = two(3, creator_is_local);
    let initial = t.meta(&t.l, obj);
    assert_eq!(initial, t.meta(&t.r, obj));
    assert_eq!(initial.desc(), "");
    for d in local {
        t.set_desc(&t.l, obj, d);
    }
    for d in remote {
        t.set_desc(&t.r, obj, d);
    }
    let l_before = t.meta(&t.l, obj);
    let r_before = t.meta(&t.r, obj);
    let (ll, lr) = (t.l.durable_lsn(), t.r.durable_lsn());
    let report = sync(&t.l, &t.r, t.vs.id, SyncMode::Both).unwrap();
    let l_after = t.meta(&t.l, obj);
    let r_after = t.meta(&t.r, obj);
    // Whether a side wrote anything but sync bookkeeping: a cursor that moves past
    // records that changed nothing, or an agreement (a no-op edit recording that both
    // sides made the same change) is not a write of data.
    let wrote = |s: &Store, from: Lsn| {
        use mdslog::event::Event;
        log_events(s, from.next()).iter().any(|(_, e)| match e {
            Event::SyncApplied { .. } => false,
            Event::UpdateVolumeSet { new, old, .. } => new != old,
            Event::UpdateSnapshots { updates } => updates.iter().any(|u| u.new != u.old),
            Event::RenameBranch {
                old_name, new_name, ..
            } => old_name != new_name,
            _ => true,
        })
    };
    let (l_wrote, r_wrote) = (wrote(&t.l, ll), wrote(&t.r, lr));
    assert!(report.divergences.is_empty() && report.missing.is_empty());
    Outcome {
        t,
        obj,
        report,
        initial,
        l_before,
        r_before,
        l_after,
        r_after,
        l_wrote,
        r_wrote,
    }
}

/// Every combination a row runs in: both kinds of object, either store the creator.
fn each(mut f: impl FnMut(Obj, bool)) {
    for obj in [Obj::Vs, Obj::Snap] {
        for creator_is_local in [true, false] {
            f(obj, creator_is_local);
        }
    }
}

impl Outcome {
    fn ctx(&self) -> String {
        format!("{:?}: {:?}", self.obj, self.report)
    }

    /// No conflict reported, none recorded in either log.
    fn assert_no_conflict(&self) {
        assert!(self.report.conflicts.is_empty(), "{}", self.ctx());
        assert_eq!(count_kind(&self.t.l, 20), 0, "{}", self.ctx());
        assert_eq!(count_kind(&self.t.r, 20), 0, "{}", self.ctx());
    }

    /// Both sides end with `d` as the description.
    fn assert_both(&self, d: &str) {
        assert_eq!(self.l_after.desc(), d, "local: {}", self.ctx());
        assert_eq!(self.r_after.desc(), d, "remote: {}", self.ctx());
    }

    /// A second sync finds nothing: no conflict, values unchanged, nothing written but
    /// cursors (a side moves its cursor past the records the other wrote from it in the
    /// first); a third writes nothing at all.
    fn assert_second_sync_quiet(&self) {
        let (ll, lr) = (self.t.l.durable_lsn(), self.t.r.durable_lsn());
        let r2 = sync(&self.t.l, &self.t.r, self.t.vs.id, SyncMode::Both).unwrap();
        assert!(r2.conflicts.is_empty(), "{r2:?}");
        for (s, from) in [(&self.t.l, ll), (&self.t.r, lr)] {
            for (lsn, e) in log_events(s, from.next()) {
                assert!(
                    matches!(e, mdslog::event::Event::SyncApplied { records: 0, .. }),
                    "second sync wrote {e:?} at {lsn}: {r2:?}"
                );
            }
        }
        let (ll, lr) = (self.t.l.durable_lsn(), self.t.r.durable_lsn());
        let r3 = sync(&self.t.l, &self.t.r, self.t.vs.id, SyncMode::Both).unwrap();
        assert_eq!(
            (self.t.l.durable_lsn(), self.t.r.durable_lsn()),
            (ll, lr),
            "third sync wrote: {r3:?}"
        );
        assert_eq!(self.t.meta(&self.t.l, self.obj), self.l_after);
        assert_eq!(self.t.meta(&self.t.r, self.obj), self.r_after);
    }

    fn pushed(&self) -> &mdslog::sync::ApplyReport {
        self.report.pushed.as_ref().unwrap()
    }

    fn pulled(&self) -> &mdslog::sync::ApplyReport {
        self.report.pulled.as_ref().unwrap()
    }

    /// Objects updated by an apply, of this scenario's kind.
    fn updated(&self, r: &mdslog::sync::ApplyReport) -> u64 {
        match self.obj {
            Obj::Vs => u64::from(r.volume_set_updated),
            Obj::Snap => r.snapshots_updated,
        }
    }
}

/// The local side of a sync may record the conflicts the remote decided (addressed to
/// the remote); if it does, exactly those.
fn assert_local_record(l: &Store, remote: StoreId, want: &[Conflict]) {
    let got = conflict_records(l);
    let mut want: Vec<_> = want.iter().map(|c| (remote, c.clone())).collect();
    let key = |x: &(StoreId, Conflict)| format!("{x:?}");
    want.sort_by_key(key);
    let mut sorted = got.clone();
    sorted.sort_by_key(key);
    assert!(got.is_empty() || sorted == want, "{got:?}");
}

// ---- The three-way table, row by row -------------------------------------------------

/// cur = init, tgt = cur: no action. The pushing side edited and undid its edit (the
/// batch composes to no change); and the mirror, the remote did.
#[test]
fn row_no_action() {
    each(|obj, creator_is_local| {
        // Local edits and undoes; remote untouched: nothing written on the remote.
        let o = scenario(obj, creator_is_local, &["v1", ""], &[]);
        o.assert_both("");
        o.assert_no_conflict();
        assert!(!o.r_wrote, "{}", o.ctx());
        assert_eq!(o.updated(o.pushed()), 0);
        assert_eq!(o.pushed().adopted, 0);
        assert_eq!(o.r_after, o.r_before);
        o.assert_second_sync_quiet();

        // The remote edits and undoes; local untouched: nothing written on local.
        let o = scenario(obj, creator_is_local, &[], &["v1", ""]);
        o.assert_both("");
        o.assert_no_conflict();
        assert!(!o.l_wrote, "{}", o.ctx());
        assert_eq!(o.updated(o.pulled()), 0);
        assert_eq!(o.l_after, o.l_before);
        o.assert_second_sync_quiet();
    });
}

/// cur = init, tgt ≠ cur: use target, no conflict; the pusher adopts the target's value
/// when it pulls.
#[test]
fn row_use_target() {
    each(|obj, creator_is_local| {
        // The local batch composes to no change; the remote changed: adopted on the push
        // (nothing written there), written on local by the pull.
        let o = scenario(obj, creator_is_local, &["v1", ""], &["v2"]);
        o.assert_both("v2");
        o.assert_no_conflict();
        assert!(!o.r_wrote, "{}", o.ctx());
        assert_eq!(o.pushed().adopted, 1, "{}", o.ctx());
        assert_eq!(o.updated(o.pushed()), 0);
        assert_eq!(o.updated(o.pulled()), 1);
        assert_eq!(
            o.l_after, o.r_before,
            "local takes the remote's whole value"
        );
        assert_eq!(
            synced_view(&o.t.l, o.t.vs.id),
            synced_view(&o.t.r, o.t.vs.id)
        );
        o.assert_second_sync_quiet();

        // Only the remote edited: local takes it; nothing written on the remote.
        let o = scenario(obj, creator_is_local, &[], &["v2"]);
        o.assert_both("v2");
        o.assert_no_conflict();
        assert!(!o.r_wrote, "{}", o.ctx());
        assert_eq!(o.updated(o.pulled()), 1);
        assert_eq!(o.l_after, o.r_before);
        assert_eq!(
            synced_view(&o.t.l, o.t.vs.id),
            synced_view(&o.t.r, o.t.vs.id)
        );
        o.assert_second_sync_quiet();
    });
}

/// cur ≠ init, tgt = init: use current, written on the remote.
#[test]
fn row_use_current() {
    each(|obj, creator_is_local| {
        // Only local edited: the remote takes it; nothing comes back.
        let o = scenario(obj, creator_is_local, &["v1"], &[]);
        o.assert_both("v1");
        o.assert_no_conflict();
        assert_eq!(o.updated(o.pushed()), 1, "{}", o.ctx());
        assert_eq!(
            o.r_after, o.l_before,
            "the remote takes local's whole value"
        );
        assert!(!o.l_wrote, "the pull brings nothing back: {}", o.ctx());
        assert_eq!(
            synced_view(&o.t.l, o.t.vs.id),
            synced_view(&o.t.r, o.t.vs.id)
        );
        o.assert_second_sync_quiet();

        // Local edited twice (composed: initial = original, current = the last); the
        // remote edited and undid (still the initial value).
        let o = scenario(obj, creator_is_local, &["v1", "v3"], &["v2", ""]);
        o.assert_both("v3");
        o.assert_no_conflict();
        assert_eq!(o.updated(o.pushed()), 1, "{}", o.ctx());
        assert_eq!(o.r_after, o.l_before);
        assert_eq!(o.l_after, o.l_before, "local keeps its value");
        o.assert_second_sync_quiet();
    });
}

/// cur ≠ init, tgt = cur: both made the same change: nothing, no conflict.
#[test]
fn row_same_change_on_both_sides() {
    each(|obj, creator_is_local| {
        for (local, remote) in [
            (&["v1"][..], &["v1"][..]),
            (&["v2", "v1"][..], &["v1"][..]),
            (&["v1"][..], &["v3", "v1"][..]),
        ] {
            let o = scenario(obj, creator_is_local, local, remote);
            o.assert_both("v1");
            o.assert_no_conflict();
            assert!(
                !o.r_wrote && !o.l_wrote,
                "{local:?} {remote:?}: {}",
                o.ctx()
            );
            assert_eq!(o.pushed().adopted, 0);
            o.assert_second_sync_quiet();
        }
    });
}

/// All three differ: a conflict, the remote's value wins, reported once with the three
/// versions and recorded in both logs.
#[test]
fn row_conflict_remote_wins() {
    each(|obj, creator_is_local| {
        for (local, remote) in [
            (&["v1"][..], &["v2"][..]),
            // Composed edits: current is local's last value, target the remote's last.
            (&["v1", "v3"][..], &["v2"][..]),
            (&["v1"][..], &["v2", "v4"][..]),
        ] {
            let o = scenario(obj, creator_is_local, local, remote);
            let t = &o.t;
            let want = t.conflict(obj, &o.r_before, &o.l_before, &o.initial);
            assert_eq!(
                o.report.conflicts,
                vec![want.clone()],
                "{local:?} {remote:?}"
            );
            match obj {
                Obj::Vs => {
                    assert_eq!(o.report.volume_set_conflicts().count(), 1);
                    assert_eq!(o.report.snapshot_conflicts().count(), 0);
                }
                Obj::Snap => {
                    assert_eq!(o.report.volume_set_conflicts().count(), 0);
                    assert_eq!(o.report.snapshot_conflicts().count(), 1);
                }
            }
            assert_eq!(o.pushed().conflicts, vec![want.clone()]);
            assert_eq!(o.updated(o.pushed()), 0, "the remote keeps its value");
            assert_eq!(o.r_after, o.r_before);
            assert_eq!(o.l_after, o.r_before, "local takes the remote's value");
            // The remote recorded the conflict addressed to local; local, if it records
            // one, records the same addressed to the remote.
            assert_eq!(conflict_records(&t.r), vec![(id_of(&t.l), want.clone())]);
            assert_local_record(&t.l, id_of(&t.r), std::slice::from_ref(&want));
            assert_eq!(synced_view(&t.l, t.vs.id), synced_view(&t.r, t.vs.id));
            let counts = (count_kind(&t.l, 20), count_kind(&t.r, 20));
            o.assert_second_sync_quiet();
            assert_eq!(
                (count_kind(&t.l, 20), count_kind(&t.r, 20)),
                counts,
                "no new conflict records"
            );
        }
    });
}

/// After a conflict, the side that lost edits again (from the value it adopted): that
/// edit is the only change since, so the next sync carries it to the remote, no conflict.
#[test]
fn after_a_conflict_the_losers_next_edit_goes_through() {
    let (mut got, mut want) = (Vec::new(), Vec::new());
    each(|obj, creator_is_local| {
        let o = scenario(obj, creator_is_local, &["v1"], &["v2"]);
        assert_eq!(o.report.conflicts.len(), 1);
        let t = &o.t;
        let before = count_kind(&t.l, 20) + count_kind(&t.r, 20);
        t.set_desc(&t.l, obj, "v5");
        let rep = sync(&t.l, &t.r, t.vs.id, SyncMode::Both).unwrap();
        got.push(format!(
            "{obj:?} creator_is_local={creator_is_local}: conflicts {}, local {:?}, remote {:?}, conflict records {}",
            rep.conflicts.len(),
            t.meta(&t.l, obj).desc(),
            t.meta(&t.r, obj).desc(),
            count_kind(&t.l, 20) + count_kind(&t.r, 20) - before,
        ));
        want.push(format!(
            "{obj:?} creator_is_local={creator_is_local}: conflicts 0, local \"v5\", remote \"v5\", conflict records 0"
        ));
    });
    assert_eq!(got, want);
}

/// After a conflict, the side that won edits again: the other side takes it, no conflict.
#[test]
fn after_a_conflict_the_winners_next_edit_goes_through() {
    let (mut got, mut want) = (Vec::new(), Vec::new());
    each(|obj, creator_is_local| {
        let o = scenario(obj, creator_is_local, &["v1"], &["v2"]);
        assert_eq!(o.report.conflicts.len(), 1);
        let t = &o.t;
        let before = count_kind(&t.l, 20) + count_kind(&t.r, 20);
        t.set_desc(&t.r, obj, "v6");
        let rep = sync(&t.l, &t.r, t.vs.id, SyncMode::Both).unwrap();
        got.push(format!(
            "{obj:?} creator_is_local={creator_is_local}: conflicts {}, local {:?}, remote {:?}, conflict records {}",
            rep.conflicts.len(),
            t.meta(&t.l, obj).desc(),
            t.meta(&t.r, obj).desc(),
            count_kind(&t.l, 20) + count_kind(&t.r, 20) - before,
        ));
        want.push(format!(
            "{obj:?} creator_is_local={creator_is_local}: conflicts 0, local \"v6\", remote \"v6\", conflict records 0"
        ));
    });
    assert_eq!(got, want);
}

/// A full sync (whole histories, as after a divergence) of stores that agree but for one
/// plain edit, made on either side, reports no conflict and carries the edit.
#[test]
fn a_full_sync_reports_no_conflict_for_a_plain_edit() {
    let mut got = Vec::new();
    for edit_on_remote in [true, false] {
        let o = scenario(Obj::Vs, true, &["v1"], &[]);
        let t = &o.t;
        t.set_desc(if edit_on_remote { &t.r } else { &t.l }, Obj::Vs, "v2");
        let rep = mdslog::sync::sync_with(
            &t.l,
            &t.r,
            t.vs.id,
            SyncMode::Both,
            mdslog::sync::SyncOptions { full: true },
        )
        .unwrap();
        got.push((
            edit_on_remote,
            rep.conflicts.len(),
            t.meta(&t.l, Obj::Vs).desc().to_string(),
            t.meta(&t.r, Obj::Vs).desc().to_string(),
        ));
    }
    assert_eq!(
        got,
        vec![
            (true, 0, "v2".to_string(), "v2".to_string()),
            (false, 0, "v2".to_string(), "v2".to_string()),
        ]
    );
}

/// A snapshot created and edited between two syncs arrives with its latest metadata.
#[test]
fn a_new_snapshot_edited_before_the_sync_arrives_edited() {
    let t = two(2, true);
    let more = chain(t.vs.id, Some(t.snaps[1].id), 2);
    t.l.extend_branch(&more).unwrap();
    for d in ["first", "second"] {
        let init = t.l.get_snapshot(more[0].id).unwrap();
        let mut cur = init.clone();
        cur.description = d.into();
        cur.attrs = attrs(&[("edit", d)]);
        assert!(t.l.update_snapshot(&cur, Some(&init)).unwrap().is_none());
    }
    let rep = sync(&t.l, &t.r, t.vs.id, SyncMode::Both).unwrap();
    assert!(rep.conflicts.is_empty(), "{rep:?}");
    let got = t.r.get_snapshot(more[0].id).unwrap();
    assert_eq!(got.description, "second");
    assert_eq!(got.attrs, attrs(&[("edit", "second")]));
    assert_eq!(synced_view(&t.l, t.vs.id), synced_view(&t.r, t.vs.id));
}

/// The other direction of a conflict: the store that edited first syncs as the remote.
/// Whichever side is the remote of a sync wins.
#[test]
fn conflict_the_remote_of_the_sync_wins_whichever_store_it_is() {
    for obj in [Obj::Vs, Obj::Snap] {
        let t = two(3, true);
        let initial = t.meta(&t.l, obj);
        t.set_desc(&t.l, obj, "from-l");
        t.set_desc(&t.r, obj, "from-r");
        let (lm, rm) = (t.meta(&t.l, obj), t.meta(&t.r, obj));
        // `l` is the remote of this sync.
        let rep = sync(&t.r, &t.l, t.vs.id, SyncMode::Both).unwrap();
        assert_eq!(rep.conflicts, vec![t.conflict(obj, &lm, &rm, &initial)]);
        assert_eq!(t.meta(&t.l, obj), lm);
        assert_eq!(t.meta(&t.r, obj), lm);
        assert_eq!(synced_view(&t.l, t.vs.id), synced_view(&t.r, t.vs.id));
    }
}

/// A conflict is decided on the whole object: an edit of the description on one side and
/// of the attributes on the other is a conflict, and the remote's whole value wins.
#[test]
fn edits_of_different_fields_conflict_as_a_whole() {
    let t = two(2, true);
    let initial = t.l.get_volume_set(t.vs.id).unwrap();
    let mut on_l = initial.clone();
    on_l.description = "described on l".into();
    assert!(t
        .l
        .update_volume_set(&on_l, Some(&initial))
        .unwrap()
        .is_none());
    let mut on_r = initial.clone();
    on_r.attrs = attrs(&[("k", "v")]);
    on_r.owner = "someone else".into();
    assert!(t
        .r
        .update_volume_set(&on_r, Some(&initial))
        .unwrap()
        .is_none());
    let rep = sync(&t.l, &t.r, t.vs.id, SyncMode::Both).unwrap();
    assert_eq!(
        rep.conflicts,
        vec![Conflict::VolumeSet {
            id: t.vs.id,
            target: on_r.meta(),
            current: on_l.meta(),
            initial: initial.meta(),
        }]
    );
    for s in [&t.l, &t.r] {
        let v = s.get_volume_set(t.vs.id).unwrap();
        assert_eq!(v.description, "");
        assert_eq!(v.attrs, attrs(&[("k", "v")]));
        assert_eq!(v.owner, "someone else");
    }
}

/// Fields the three-way comparison leaves out (user names, last-modified) do not make a
/// conflict: the same compared change with different user names is "the same change".
#[test]
fn fields_not_compared_make_no_conflict() {
    let t = two(2, true);
    let initial = t.l.get_volume_set(t.vs.id).unwrap();
    let mut on_l = initial.clone();
    on_l.description = "same".into();
    on_l.owner_name = "alice".into();
    on_l.last_modified = Timestamp(initial.last_modified.0 + 5);
    let mut on_r = initial.clone();
    on_r.description = "same".into();
    on_r.owner_name = "bob".into();
    on_r.last_modified = Timestamp(initial.last_modified.0 + 9);
    assert!(t
        .l
        .update_volume_set(&on_l, Some(&initial))
        .unwrap()
        .is_none());
    assert!(t
        .r
        .update_volume_set(&on_r, Some(&initial))
        .unwrap()
        .is_none());
    let sid = t.snaps[0].id;
    let s0 = t.l.get_snapshot(sid).unwrap();
    let mut sl = s0.clone();
    sl.creator_name = "carol".into();
    let mut sr = s0.clone();
    sr.creator_name = "dave".into();
    // Only a non-compared field changed: with an initial, that is "no action" locally.
    assert!(t
        .l
        .update_snapshots(&[(sl, Some(s0.clone()))])
        .unwrap()
        .is_empty());
    assert!(t.r.update_snapshots(&[(sr, Some(s0))]).unwrap().is_empty());

    let rep = sync(&t.l, &t.r, t.vs.id, SyncMode::Both).unwrap();
    assert!(rep.conflicts.is_empty(), "{rep:?}");
    assert_eq!(count_kind(&t.l, 20) + count_kind(&t.r, 20), 0);
    for s in [&t.l, &t.r] {
        assert_eq!(s.get_volume_set(t.vs.id).unwrap().description, "same");
    }
}

// ---- What never travels ----------------------------------------------------------------

/// Blob ids and snapshot sizes are local: each side keeps its own, the other side's
/// arrive nowhere (nil blob, size 0).
#[test]
fn blob_ids_and_snapshot_sizes_never_travel() {
    let t = two(3, true);
    let (s0, s1, s2) = (t.snaps[0].id, t.snaps[1].id, t.snaps[2].id);
    t.l.set_blob_id_and_size(s0, &BlobId::from("blob-l"), 100)
        .unwrap();
    t.r.set_blob_id_and_size(s1, &BlobId::from("blob-r"), 200)
        .unwrap();
    // New snapshots created with a blob and a size.
    let mut more = chain(t.vs.id, Some(s2), 2);
    for (i, s) in more.iter_mut().enumerate() {
        s.blob = BlobId(format!("new-{i}"));
        s.size = 999;
    }
    t.l.extend_branch(&more).unwrap();
    // A metadata update that also sets the blob (nil to a value).
    let init = t.l.get_snapshot(s2).unwrap();
    let mut cur = init.clone();
    cur.description = "with blob".into();
    cur.blob = BlobId::from("blob-upd");
    assert!(t.l.update_snapshot(&cur, Some(&init)).unwrap().is_none());
    assert_eq!(t.l.get_blob_id(s2).unwrap(), BlobId::from("blob-upd"));

    // What local sends holds no blob, no size, no blob or size record.
    let batch = t.l.export_batch(t.vs.id, Lsn::ZERO, None).unwrap().unwrap();
    assert_eq!(batch.volume_set.size, 0);
    for (lsn, env) in &batch.records {
        assert!(!matches!(env.event.kind().0, 3 | 10), "{lsn}: {env:?}");
        let snaps: Vec<&Snapshot> = match &env.event {
            Event::ForkBranch(b) | Event::ImportBranch(b) => b.snapshots.iter().collect(),
            Event::ExtendBranch { snapshots, .. } => snapshots.iter().collect(),
            _ => Vec::new(),
        };
        for s in snaps {
            assert!(s.blob.is_nil() && s.size == 0, "{lsn}: {s:?}");
        }
        if let Event::UpdateSnapshots { updates } = &env.event {
            assert!(updates.iter().all(|u| u.set_blob.is_none()), "{lsn}");
        }
    }

    let rep = sync(&t.l, &t.r, t.vs.id, SyncMode::Both).unwrap();
    assert!(rep.conflicts.is_empty(), "{rep:?}");
    let blob_size = |s: &Store, id| {
        let x = s.get_snapshot(id).unwrap();
        (x.blob.0, x.size)
    };
    // The remote: its own blob kept, none of local's.
    assert_eq!(blob_size(&t.r, s0), (String::new(), 0));
    assert_eq!(blob_size(&t.r, s1), ("blob-r".into(), 200));
    assert_eq!(blob_size(&t.r, s2), (String::new(), 0));
    assert_eq!(t.r.get_snapshot(s2).unwrap().description, "with blob");
    for s in &more {
        assert_eq!(blob_size(&t.r, s.id), (String::new(), 0));
    }
    // Local: its own kept, none of the remote's.
    assert_eq!(blob_size(&t.l, s0), ("blob-l".into(), 100));
    assert_eq!(blob_size(&t.l, s1), (String::new(), 0));
    assert_eq!(blob_size(&t.l, s2).0, "blob-upd");
    for (i, s) in more.iter().enumerate() {
        assert_eq!(blob_size(&t.l, s.id), (format!("new-{i}"), 999));
    }
    assert_eq!(synced_view(&t.l, t.vs.id), synced_view(&t.r, t.vs.id));
}

/// A volume set's size is local too.
#[test]
fn volume_set_size_never_travels() {
    let t = two(2, true);
    t.l.set_volume_set_size(t.vs.id, 12345).unwrap();
    t.r.set_volume_set_size(t.vs.id, 77).unwrap();
    t.set_desc(&t.l, Obj::Vs, "edited");
    sync(&t.l, &t.r, t.vs.id, SyncMode::Both).unwrap();
    assert_eq!(t.l.get_volume_set(t.vs.id).unwrap().size, 12345);
    assert_eq!(t.r.get_volume_set(t.vs.id).unwrap().size, 77);
    assert_eq!(t.r.get_volume_set(t.vs.id).unwrap().description, "edited");

    // A volume set created with a size arrives without it.
    let mut v2 = VolumeSet::new(VolumeSetId::random(), "sized");
    v2.size = 4096;
    t.l.import_volume_set(&v2).unwrap();
    t.l.set_volume_set_size(v2.id, 5000).unwrap();
    sync(&t.l, &t.r, v2.id, SyncMode::Both).unwrap();
    assert_eq!(t.r.get_volume_set(v2.id).unwrap().size, 0);
    assert_eq!(t.l.get_volume_set(v2.id).unwrap().size, 5000);
}

// ---- Several objects, diverged branches, other volume sets ------------------------------

/// Edits of several snapshots on both sides: one sync, one report with every conflict,
/// and the rest applied each way.
#[test]
fn edits_of_several_snapshots_compose_into_one_report() {
    let t = two(5, true);
    let ids: Vec<SnapshotId> = t.snaps.iter().map(|s| s.id).collect();
    let batch_edit = |s: &Store, edits: &[(usize, &str)]| {
        let pairs: Vec<SnapshotPair> = edits
            .iter()
            .map(|(i, d)| {
                let init = s.get_snapshot(ids[*i]).unwrap();
                let mut cur = init.clone();
                cur.description = d.to_string();
                (cur, Some(init))
            })
            .collect();
        assert!(s.update_snapshots(&pairs).unwrap().is_empty());
    };
    let initial: Vec<SnapshotMeta> = ids
        .iter()
        .map(|id| t.l.get_snapshot(*id).unwrap().meta())
        .collect();
    batch_edit(&t.l, &[(0, "l0"), (1, "l1"), (2, "l2"), (4, "x")]);
    batch_edit(&t.l, &[(0, "l0b")]);
    batch_edit(&t.r, &[(1, "r1"), (2, "r2"), (3, "r3"), (4, "x")]);
    let lm: Vec<SnapshotMeta> = ids
        .iter()
        .map(|id| t.l.get_snapshot(*id).unwrap().meta())
        .collect();
    let rm: Vec<SnapshotMeta> = ids
        .iter()
        .map(|id| t.r.get_snapshot(*id).unwrap().meta())
        .collect();

    let rep = sync(&t.l, &t.r, t.vs.id, SyncMode::Both).unwrap();
    let mut got = rep.conflicts.clone();
    got.sort_by_key(|c| match c {
        Conflict::Snapshot { id, .. } => *id,
        other => panic!("{other:?}"),
    });
    let mut want: Vec<Conflict> = [1, 2]
        .iter()
        .map(|&i| Conflict::Snapshot {
            id: ids[i],
            target: rm[i].clone(),
            current: lm[i].clone(),
            initial: initial[i].clone(),
        })
        .collect();
    want.sort_by_key(|c| match c {
        Conflict::Snapshot { id, .. } => *id,
        _ => unreachable!(),
    });
    assert_eq!(got, want, "{rep:?}");
    assert_eq!(rep.pushed.as_ref().unwrap().snapshots_updated, 1, "s0");
    assert_eq!(
        rep.pulled.as_ref().unwrap().snapshots_updated,
        3,
        "s1 s2 s3"
    );
    for (i, d) in ["l0b", "r1", "r2", "r3", "x"].iter().enumerate() {
        for s in [&t.l, &t.r] {
            assert_eq!(s.get_snapshot(ids[i]).unwrap().description, *d, "s{i}");
        }
    }
    assert_eq!(count_kind(&t.r, 20), 2);
    assert!(conflict_records(&t.r)
        .iter()
        .all(|(p, _)| *p == id_of(&t.l)));
    assert_local_record(&t.l, id_of(&t.r), &want);
    assert_eq!(synced_view(&t.l, t.vs.id), synced_view(&t.r, t.vs.id));
}

/// A branch diverged: its shared snapshots' metadata edits still travel both ways.
#[test]
fn metadata_edit_on_a_diverged_branch_still_syncs() {
    let t = two(2, true);
    let (s0, s1) = (t.snaps[0].id, t.snaps[1].id);
    let on_l = chain(t.vs.id, Some(s1), 2);
    let on_r = chain(t.vs.id, Some(s1), 3);
    t.l.extend_branch(&on_l).unwrap();
    t.r.extend_branch(&on_r).unwrap();
    let edit = |s: &Store, id: SnapshotId, d: &str| {
        let init = s.get_snapshot(id).unwrap();
        let mut cur = init.clone();
        cur.description = d.into();
        assert!(s.update_snapshot(&cur, Some(&init)).unwrap().is_none());
    };
    edit(&t.l, s1, "from l");
    edit(&t.r, s0, "from r");
    // An edit of a snapshot only local holds: nothing to apply on the remote, no error.
    edit(&t.l, on_l[0].id, "only on l");

    let rep = sync(&t.l, &t.r, t.vs.id, SyncMode::Both).unwrap();
    assert!(!rep.divergences.is_empty(), "{rep:?}");
    assert!(rep.conflicts.is_empty(), "{rep:?}");
    for s in [&t.l, &t.r] {
        assert_eq!(s.get_snapshot(s1).unwrap().description, "from l");
        assert_eq!(s.get_snapshot(s0).unwrap().description, "from r");
    }
    assert!(matches!(
        t.r.get_snapshot(on_l[0].id),
        Err(Error::SnapshotNotFound(_))
    ));
    assert_eq!(t.l.get_tip(t.vs.id, "master").unwrap().id, on_l[1].id);
    assert_eq!(t.r.get_tip(t.vs.id, "master").unwrap().id, on_r[2].id);
}

/// Whether a record mentions any of the given ids.
fn mentions(env: &mdslog::event::Envelope, ids: &[String]) -> bool {
    let s = format!("{env:?}");
    ids.iter().any(|id| s.contains(id.as_str()))
}

/// A sync of volume set X carries nothing of volume set Y held by the same stores: not
/// its records, not its snapshots' updates (even in one update record with X's), not its
/// conflicts.
#[test]
fn a_sync_of_one_volume_set_never_sends_another() {
    let t = two(2, true);
    let x = t.vs.id;
    let y = new_vs(&t.l, "other");
    let ys = chain(y.id, None, 2);
    t.l.fork_branch("main", &ys).unwrap();
    let mut yv = t.l.get_volume_set(y.id).unwrap();
    let yinit = yv.clone();
    yv.description = "y edited".into();
    t.l.update_volume_set(&yv, Some(&yinit)).unwrap();
    t.l.set_blob_id_and_size(ys[0].id, &BlobId::from("yb"), 1)
        .unwrap();
    // One update record holding a snapshot of each.
    let pair = |id| {
        let init = t.l.get_snapshot(id).unwrap();
        let mut cur = init.clone();
        cur.description = "both in one record".into();
        (cur, Some(init))
    };
    t.l.update_snapshots(&[pair(t.snaps[0].id), pair(ys[1].id)])
        .unwrap();
    let mut y_ids: Vec<String> = vec![y.id.to_string()];
    y_ids.extend(ys.iter().map(|s| s.id.to_string()));

    let batch = t.l.export_batch(x, Lsn::ZERO, None).unwrap().unwrap();
    assert!(!batch.records.is_empty());
    for (lsn, env) in &batch.records {
        assert!(!mentions(env, &y_ids), "{lsn}: {env:?}");
    }
    let rep = sync(&t.l, &t.r, x, SyncMode::Both).unwrap();
    assert!(rep.conflicts.is_empty());
    assert!(matches!(
        t.r.get_volume_set(y.id),
        Err(Error::VolumeSetNotFound(_))
    ));
    for s in &ys {
        assert!(matches!(
            t.r.get_snapshot(s.id),
            Err(Error::SnapshotNotFound(_))
        ));
    }
    assert_eq!(
        t.r.get_snapshot(t.snaps[0].id).unwrap().description,
        "both in one record"
    );
    for r in all_records(&t.r) {
        let env = mdslog::event::Envelope::decode(r.0, r.1, &r.2).unwrap();
        assert!(!mentions(&env, &y_ids), "{env:?}");
    }

    // Y travels when asked for, then a conflict about one of Y's snapshots is recorded on
    // both sides; X's batches still carry nothing of Y.
    sync(&t.l, &t.r, y.id, SyncMode::Both).unwrap();
    assert_eq!(synced_view(&t.l, y.id), synced_view(&t.r, y.id));
    for (s, d) in [(&t.l, "yl"), (&t.r, "yr")] {
        let init = s.get_snapshot(ys[0].id).unwrap();
        let mut cur = init.clone();
        cur.description = d.into();
        assert!(s.update_snapshot(&cur, Some(&init)).unwrap().is_none());
    }
    let rep = sync(&t.l, &t.r, y.id, SyncMode::Both).unwrap();
    assert_eq!(rep.snapshot_conflicts().count(), 1, "{rep:?}");
    assert_eq!(count_kind(&t.r, 20), 1);
    t.set_desc(&t.l, Obj::Vs, "x again");
    for (from, to) in [(&t.l, &t.r), (&t.r, &t.l)] {
        let batch = from
            .export_batch(x, Lsn::ZERO, Some(id_of(to)))
            .unwrap()
            .unwrap();
        for (lsn, env) in &batch.records {
            assert!(!mentions(env, &y_ids), "{lsn}: {env:?}");
        }
    }
    let rep = sync(&t.l, &t.r, x, SyncMode::Both).unwrap();
    assert!(rep.conflicts.is_empty(), "{rep:?}");
    assert_eq!(t.r.get_volume_set(x).unwrap().description, "x again");
}

// ---- Pull only, three stores --------------------------------------------------------------

/// After a pull-only sync that decided a conflict on local (local lost), local edits
/// again from the value it adopted: the next full exchange carries that edit, no conflict.
#[test]
fn after_a_pull_only_conflict_the_losers_next_edit_goes_through() {
    let mut got = Vec::new();
    for obj in [Obj::Vs, Obj::Snap] {
        let t = two(3, true);
        t.set_desc(&t.l, obj, "local");
        t.set_desc(&t.r, obj, "remote");
        let rep = sync(&t.l, &t.r, t.vs.id, SyncMode::PullOnly).unwrap();
        assert_eq!(rep.conflicts.len(), 1);
        assert_eq!(t.meta(&t.l, obj).desc(), "remote");
        t.set_desc(&t.l, obj, "again");
        let rep = sync(&t.l, &t.r, t.vs.id, SyncMode::Both).unwrap();
        got.push((
            obj,
            rep.conflicts.len(),
            t.meta(&t.l, obj).desc().to_string(),
            t.meta(&t.r, obj).desc().to_string(),
        ));
    }
    assert_eq!(
        got,
        vec![
            (Obj::Vs, 0, "again".to_string(), "again".to_string()),
            (Obj::Snap, 0, "again".to_string(), "again".to_string()),
        ]
    );
}

/// Pull-only with conflicting edits: the remote is not touched at all; local takes the
/// remote's values and reports the conflicts.
#[test]
fn pull_only_conflict_leaves_the_remote_untouched() {
    let t = two(3, true);
    let init_vs = t.meta(&t.l, Obj::Vs);
    let init_snap = t.meta(&t.l, Obj::Snap);
    for obj in [Obj::Vs, Obj::Snap] {
        t.set_desc(&t.l, obj, "local");
        t.set_desc(&t.r, obj, "remote");
    }
    let (lv, ls) = (t.meta(&t.l, Obj::Vs), t.meta(&t.l, Obj::Snap));
    let (rv, rs) = (t.meta(&t.r, Obj::Vs), t.meta(&t.r, Obj::Snap));
    let r_lsn = t.r.durable_lsn();
    let r_records = all_records(&t.r);
    let r_files = dir_digest(t.dr.path());

    let rep = sync(&t.l, &t.r, t.vs.id, SyncMode::PullOnly).unwrap();
    assert!(rep.pushed.is_none());
    assert_eq!(t.r.durable_lsn(), r_lsn);
    assert_eq!(
        all_records(&t.r),
        r_records,
        "the remote's log is unchanged"
    );
    assert_eq!(
        dir_digest(t.dr.path()),
        r_files,
        "the remote's files are unchanged"
    );
    assert_eq!(
        rep.conflicts,
        vec![
            t.conflict(Obj::Vs, &rv, &lv, &init_vs),
            t.conflict(Obj::Snap, &rs, &ls, &init_snap),
        ]
    );
    assert_eq!(t.meta(&t.l, Obj::Vs), rv);
    assert_eq!(t.meta(&t.l, Obj::Snap), rs);
    assert_eq!(t.meta(&t.r, Obj::Vs), rv);
    let recorded = conflict_records(&t.l);
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|(peer, _)| *peer == id_of(&t.r)));
    assert_eq!(count_kind(&t.r, 20), 0);
    assert_eq!(synced_view(&t.l, t.vs.id), synced_view(&t.r, t.vs.id));

    // A later full exchange converges without reporting the conflicts again.
    let rep = sync(&t.l, &t.r, t.vs.id, SyncMode::Both).unwrap();
    assert!(rep.conflicts.is_empty(), "{rep:?}");
    assert_eq!(synced_view(&t.l, t.vs.id), synced_view(&t.r, t.vs.id));
    assert_eq!(t.meta(&t.r, Obj::Vs), rv);
}

/// A, a hub B and C: edits travel A → B → C and back; conflicting edits on A and C end,
/// after A-B, C-B, A-B, with B's winning value everywhere.
#[test]
fn three_stores_through_a_hub() {
    let (_da, a) = open();
    let (_db, b) = open();
    let (_dc, c) = open();
    let vs = new_vs(&a, "hub");
    let snaps = chain(vs.id, None, 3);
    a.fork_branch("master", &snaps).unwrap();
    sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    sync(&c, &b, vs.id, SyncMode::Both).unwrap();
    assert_eq!(synced_view(&a, vs.id), synced_view(&c, vs.id));
    let sid = snaps[1].id;
    let edit = |s: &Store, d: &str| {
        let init = s.get_volume_set(vs.id).unwrap();
        let mut cur = init.clone();
        cur.description = d.into();
        assert!(s.update_volume_set(&cur, Some(&init)).unwrap().is_none());
        let init = s.get_snapshot(sid).unwrap();
        let mut cur = init.clone();
        cur.description = d.into();
        assert!(s.update_snapshot(&cur, Some(&init)).unwrap().is_none());
    };
    let descs = |s: &Store| {
        (
            s.get_volume_set(vs.id).unwrap().description,
            s.get_snapshot(sid).unwrap().description,
        )
    };

    // A's edit reaches C through B.
    edit(&a, "from a");
    sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    let rep = sync(&c, &b, vs.id, SyncMode::Both).unwrap();
    assert!(rep.conflicts.is_empty(), "{rep:?}");
    assert_eq!(descs(&c), ("from a".into(), "from a".into()));
    // And C's edit reaches A.
    edit(&c, "from c");
    sync(&c, &b, vs.id, SyncMode::Both).unwrap();
    sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    assert_eq!(descs(&a), ("from c".into(), "from c".into()));
    let view = synced_view(&a, vs.id);
    assert_eq!(view, synced_view(&b, vs.id));
    assert_eq!(view, synced_view(&c, vs.id));

    // Conflicting edits on A and C: B takes A's (first to arrive), C loses to B.
    edit(&a, "A");
    edit(&c, "C");
    let r1 = sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    assert!(r1.conflicts.is_empty(), "{r1:?}");
    let r2 = sync(&c, &b, vs.id, SyncMode::Both).unwrap();
    assert_eq!(r2.conflicts.len(), 2, "{r2:?}");
    for cf in &r2.conflicts {
        match cf {
            Conflict::VolumeSet {
                target,
                current,
                initial,
                ..
            } => assert_eq!(
                (
                    target.description.as_str(),
                    current.description.as_str(),
                    initial.description.as_str()
                ),
                ("A", "C", "from c")
            ),
            Conflict::Snapshot {
                target,
                current,
                initial,
                ..
            } => assert_eq!(
                (
                    target.description.as_str(),
                    current.description.as_str(),
                    initial.description.as_str()
                ),
                ("A", "C", "from c")
            ),
            other => panic!("{other:?}"),
        }
    }
    let r3 = sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    assert!(r3.conflicts.is_empty(), "{r3:?}");
    for s in [&a, &b, &c] {
        assert_eq!(descs(s), ("A".into(), "A".into()));
    }
    let view = synced_view(&b, vs.id);
    assert_eq!(synced_view(&a, vs.id), view);
    assert_eq!(synced_view(&c, vs.id), view);
    // And the next rounds change nothing anywhere (the first may still move cursors past
    // records each side wrote from the other; the second writes nothing at all).
    let mut lsns = [a.durable_lsn(), b.durable_lsn(), c.durable_lsn()];
    for round in 0..2 {
        for s in [&a, &c] {
            let r = sync(s, &b, vs.id, SyncMode::Both).unwrap();
            assert!(r.conflicts.is_empty(), "{r:?}");
            assert!(!r.pushed.unwrap().changed_anything() && !r.pulled.unwrap().changed_anything());
        }
        assert_eq!(synced_view(&a, vs.id), view);
        assert_eq!(synced_view(&c, vs.id), view);
        let now = [a.durable_lsn(), b.durable_lsn(), c.durable_lsn()];
        if round == 1 {
            assert_eq!(now, lsns, "a quiet round writes nothing");
        }
        lsns = now;
    }
}
