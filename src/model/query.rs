//! Query types of the reference API and name validation. Pure: no state, no I/O.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::ids::{BranchId, SnapshotId, VolumeSetId};
use crate::model::objects::Attrs;

/// What to sort a listing by (default: by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SortBy {
    #[default]
    Id,
    /// Creation time.
    Time,
    Size,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// Paging applied after filtering and sorting. Negative values are unrepresentable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Page {
    pub offset: usize,
    pub limit: Option<usize>,
}

impl Page {
    /// Applies offset and limit to a sorted list.
    pub fn apply<T>(&self, mut v: Vec<T>) -> Vec<T> {
        let start = self.offset.min(v.len());
        v.drain(..start);
        if let Some(l) = self.limit {
            v.truncate(l);
        }
        v
    }
}

/// A query over volume sets. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSetQuery {
    pub id: Option<VolumeSetId>,
    pub ids: Vec<VolumeSetId>,
    pub name: Option<String>,
    pub prefix: Option<String>,
    pub creator: Option<String>,
    pub creator_name: Option<String>,
    pub owner: Option<String>,
    pub owner_name: Option<String>,
    /// Every pair must match.
    pub attrs: Attrs,
    /// Substring of the name, the user names, or any attribute key or value.
    pub search: Option<String>,
    /// A prefix of the hyphenated id (a short UUID).
    pub short_id: Option<String>,
    /// A glob over `prefix/name`: a leading `/` anchors it at the start, otherwise it
    /// matches a suffix that starts at a `/` boundary (or the whole).
    pub glob: Option<String>,
    pub sort: SortBy,
    pub order: Order,
    pub page: Page,
}

/// A query over snapshots: `id`, `ids` or `volume_set` is required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotQuery {
    pub id: Option<SnapshotId>,
    pub ids: Vec<SnapshotId>,
    pub volume_set: Option<VolumeSetId>,
    pub name: Option<String>,
    pub creator: Option<String>,
    pub creator_name: Option<String>,
    pub owner: Option<String>,
    pub owner_name: Option<String>,
    pub attrs: Attrs,
    /// Substring of the name, the user names, or any attribute key or value.
    pub search: Option<String>,
    pub sort: SortBy,
    pub order: Order,
    pub page: Page,
}

/// A query over the branches of one volume set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchQuery {
    pub volume_set: VolumeSetId,
    pub id: Option<BranchId>,
    pub name: Option<String>,
    /// Substring of the branch name.
    pub search: Option<String>,
}

impl BranchQuery {
    /// All branches of a volume set.
    pub fn all(volume_set: VolumeSetId) -> Self {
        BranchQuery {
            volume_set,
            id: None,
            name: None,
            search: None,
        }
    }
    /// The branch with this name.
    pub fn named(volume_set: VolumeSetId, name: &str) -> Self {
        BranchQuery {
            volume_set,
            id: None,
            name: Some(name.to_string()),
            search: None,
        }
    }
}

/// Longest name accepted for a branch, volume set or snapshot, in bytes.
pub const NAME_BYTES_MAX: usize = 255;
/// Longest description, in bytes.
pub const DESCRIPTION_BYTES_MAX: usize = 64 * 1024;
/// Most attributes on one object.
pub const ATTRS_MAX: usize = 1024;
/// Longest attribute key or value, in bytes.
pub const ATTR_BYTES_MAX: usize = 16 * 1024;
/// Longest volume mount path, in bytes.
pub const MOUNT_PATH_BYTES_MAX: usize = 4096;

/// Checks a branch name: at most [`NAME_BYTES_MAX`] bytes, no `:` or `*`, no control
/// characters, no leading or trailing white space. The empty name (an unnamed branch) is
/// allowed here; callers that need a name check for it.
pub fn validate_branch_name(name: &str) -> Result<()> {
    validate_text("branch name", name, NAME_BYTES_MAX)?;
    if let Some(c) = name.chars().find(|c| *c == ':' || *c == '*') {
        return Err(Error::InvalidArgument(format!(
            "branch name {name:?} may not contain {c:?}"
        )));
    }
    if name.trim() != name {
        return Err(Error::InvalidArgument(format!(
            "branch name {name:?} has leading or trailing white space"
        )));
    }
    Ok(())
}

/// Checks a volume set name: not empty after trimming, otherwise like a text field.
pub fn validate_volume_set_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::InvalidArgument("volume set name is empty".into()));
    }
    validate_text("volume set name", name, NAME_BYTES_MAX)
}

/// Checks a free text field: length and no control characters (tabs and newlines are
/// allowed in descriptions only).
pub fn validate_text(what: &str, s: &str, max: usize) -> Result<()> {
    if s.len() > max {
        return Err(Error::InvalidArgument(format!(
            "{what} is {} bytes long; the limit is {max}",
            s.len()
        )));
    }
    let allow_ws = what == "description";
    if let Some(c) = s
        .chars()
        .find(|c| c.is_control() && !(allow_ws && (*c == '\n' || *c == '\t' || *c == '\r')))
    {
        return Err(Error::InvalidArgument(format!(
            "{what} {s:?} contains the control character {c:?}"
        )));
    }
    Ok(())
}

/// Checks an attribute map against the limits (an [`Error::InvalidArgument`], like every
/// other rule about an object's contents): at most [`ATTRS_MAX`] attributes, keys and
/// values of at most [`ATTR_BYTES_MAX`] bytes, keys not empty and without control
/// characters.
pub fn validate_attrs(attrs: &Attrs) -> Result<()> {
    if attrs.len() > ATTRS_MAX {
        return Err(Error::InvalidArgument(format!(
            "{} attributes; the limit is {ATTRS_MAX}",
            attrs.len()
        )));
    }
    for (k, v) in attrs {
        if k.is_empty() {
            return Err(Error::InvalidArgument("an attribute key is empty".into()));
        }
        validate_text("attribute key", k, ATTR_BYTES_MAX)?;
        if v.len() > ATTR_BYTES_MAX {
            return Err(Error::InvalidArgument(format!(
                "attribute {k:?} value exceeds {ATTR_BYTES_MAX} bytes"
            )));
        }
    }
    Ok(())
}

/// Whether `path` (`prefix/name`) matches a volume-set glob (see [`VolumeSetQuery::glob`]).
pub fn glob_matches(glob: &str, path: &str) -> bool {
    let opts = ::glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let (anchored, pat) = match glob.strip_prefix('/') {
        Some(rest) => (true, rest),
        None => (false, glob),
    };
    let Ok(p) = ::glob::Pattern::new(pat) else {
        return false;
    };
    if p.matches_with(path, opts) {
        return true;
    }
    !anchored
        && path
            .match_indices('/')
            .any(|(i, _)| p.matches_with(&path[i + 1..], opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names() {
        assert!(validate_branch_name("main").is_ok());
        assert!(validate_branch_name("").is_ok());
        for bad in ["a:b", "a*", "x\u{7}", " lead", &"x".repeat(256)] {
            assert!(validate_branch_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_matches("/acme/*", "acme/db"));
        assert!(!glob_matches("/db", "acme/db"));
        assert!(glob_matches("db", "acme/db"));
        assert!(glob_matches("d?", "acme/db"));
        assert!(!glob_matches("cme/db", "acme/db"));
        assert!(glob_matches("acme/*", "acme/db"));
    }

    #[test]
    fn paging() {
        let p = Page {
            offset: 1,
            limit: Some(2),
        };
        assert_eq!(p.apply(vec![1, 2, 3, 4]), vec![2, 3]);
        assert_eq!(
            Page {
                offset: 9,
                limit: None
            }
            .apply(vec![1]),
            Vec::<i32>::new()
        );
    }
}
