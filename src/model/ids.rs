//! Typed identifiers: UUID newtypes for volume sets, snapshots and branches (16 bytes,
//! globally unique), string newtypes for the store-local blob and volume ids, and the
//! wall-clock [`Timestamp`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

macro_rules! uuid_id {
    ($(#[$m:meta])* $name:ident, $what:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id.
            pub fn random() -> Self {
                $name(Uuid::new_v4())
            }
            /// The id as a hyphenated lower-case string.
            pub fn to_hyphenated(&self) -> String {
                self.0.hyphenated().to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Uuid::parse_str(s.trim())
                    .map($name)
                    .map_err(|e| Error::InvalidArgument(format!("bad {} {s:?}: {e}", $what)))
            }
        }
    };
}

uuid_id!(
    /// A volume set (repository).
    VolumeSetId,
    "volume set id"
);
uuid_id!(
    /// A snapshot; globally unique across volume sets and stores.
    SnapshotId,
    "snapshot id"
);
uuid_id!(
    /// A branch; the same id names the same branch in every store it syncs to.
    BranchId,
    "branch id"
);
uuid_id!(
    /// A store's identity: sync cursors name the peer they belong to by it. A follower
    /// that receives shipped segments holds the same log, so it has the same identity.
    StoreId,
    "store id"
);

/// The data layer's handle for a snapshot's bytes, local to one store. Empty = nil: "this
/// store does not hold the data". Never synced.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlobId(pub String);

impl BlobId {
    /// The nil blob id.
    pub fn nil() -> Self {
        BlobId(String::new())
    }
    /// Whether this is the nil blob id.
    pub fn is_nil(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({:?})", self.0)
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for BlobId {
    fn from(s: &str) -> Self {
        BlobId(s.to_string())
    }
}

/// A volume (a writable working copy), local to one store.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VolumeId(pub String);

impl fmt::Debug for VolumeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VolumeId({:?})", self.0)
    }
}

impl fmt::Display for VolumeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for VolumeId {
    fn from(s: &str) -> Self {
        VolumeId(s.to_string())
    }
}

/// Wall-clock time in microseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Now, from the system clock.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_micros() as i64)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.0)
    }
}
