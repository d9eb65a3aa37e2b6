//! The three-way resolver: `target` is what this store holds, `current` what the caller
//! wants now, `initial` what the caller had before its edit. Pure: no state, no I/O.
//!
//! | cur = init | tgt = cur | tgt = init | status |
//! |---|---|---|---|
//! | yes | yes | – | no action |
//! | yes | no | – | use target (no conflict) |
//! | no | – | yes | use current |
//! | no | yes | no | use target (no conflict) |
//! | no | no | no | use target (conflict) |
//!
//! Without an `initial` the write is unconditional (use current), unless target already
//! equals current (no action); the caller then compares every writable field, not only
//! those the three-way comparison looks at (see `state::validate`).

use serde::{Deserialize, Serialize};

/// What a three-way resolution decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResolveStatus {
    /// All three agree: nothing to do.
    NoAction,
    /// Only current changed: write current.
    UseCurrent,
    /// Target changed (or equals current) and current did not conflict: adopt target.
    UseTargetNoConflict,
    /// Target and current both changed, differently: target wins, a real conflict.
    UseTargetConflict,
}

/// Resolves given the three equalities (`cur_eq_init` is `None` without an initial).
pub fn resolve(
    tgt_eq_cur: bool,
    cur_eq_init: Option<bool>,
    tgt_eq_init: Option<bool>,
) -> ResolveStatus {
    match (cur_eq_init, tgt_eq_init) {
        (None, _) if tgt_eq_cur => ResolveStatus::NoAction,
        (None, _) => ResolveStatus::UseCurrent,
        (Some(true), _) if tgt_eq_cur => ResolveStatus::NoAction,
        (Some(true), _) => ResolveStatus::UseTargetNoConflict,
        (Some(false), Some(true)) => ResolveStatus::UseCurrent,
        (Some(false), _) if tgt_eq_cur => ResolveStatus::UseTargetNoConflict,
        (Some(false), _) => ResolveStatus::UseTargetConflict,
    }
}

/// An entry returned by an update: target won (the caller should adopt it). A real
/// conflict only when `status` is [`ResolveStatus::UseTargetConflict`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaConflict<T> {
    pub target: T,
    pub current: T,
    pub initial: Option<T>,
    pub status: ResolveStatus,
}

impl<T> MetaConflict<T> {
    /// Whether both sides changed the object differently.
    pub fn is_conflict(&self) -> bool {
        self.status == ResolveStatus::UseTargetConflict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of the table, with values standing for the three versions.
    #[test]
    fn the_table() {
        let r =
            |t: i32, c: i32, i: Option<i32>| resolve(t == c, i.map(|i| c == i), i.map(|i| t == i));
        assert_eq!(r(1, 1, Some(1)), ResolveStatus::NoAction);
        assert_eq!(r(2, 1, Some(1)), ResolveStatus::UseTargetNoConflict);
        assert_eq!(r(1, 2, Some(1)), ResolveStatus::UseCurrent);
        assert_eq!(r(2, 2, Some(1)), ResolveStatus::UseTargetNoConflict);
        assert_eq!(r(3, 2, Some(1)), ResolveStatus::UseTargetConflict);
        assert_eq!(r(1, 2, None), ResolveStatus::UseCurrent);
        assert_eq!(r(2, 2, None), ResolveStatus::NoAction);
    }
}
