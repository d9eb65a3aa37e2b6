//! Sync between stores. So far: the three-way resolver that metadata updates go through.

pub mod resolve;

pub use resolve::{resolve, MetaConflict, ResolveStatus};
