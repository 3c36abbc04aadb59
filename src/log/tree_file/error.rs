//! [`TreeError`]: what can go wrong with the tree files, each with its stable code.

use std::io;
use std::path::PathBuf;

use super::LEVELS;

/// An error of the tree files.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Code `tree_io`: `path`: `source`.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Code `tree_level_out_of_range`: level `level` is out of range (levels are 0..`LEVELS`).
    #[error("level {level} is out of range (levels are 0..{LEVELS})")]
    LevelOutOfRange {
        /// The tree level (0: leaves).
        level: u8,
    },
    /// Code `tree_out_of_order`: node (`level`, `index`) appended out of order: the next index is `expected`.
    #[error("node ({level}, {index}) appended out of order: the next index is {expected}")]
    OutOfOrder {
        /// The tree level (0: leaves).
        level: u8,
        /// The node's index within its level.
        index: u64,
        /// The index due next.
        expected: u64,
    },
    /// Code `tree_missing_children`: node (`level`, `index`) appended before both its children exist at level below.
    #[error("node ({level}, {index}) appended before both its children exist at level below")]
    MissingChildren {
        /// The tree level (0: leaves).
        level: u8,
        /// The node's index within its level.
        index: u64,
    },
    /// Code `tree_short`: level `level` holds `have` nodes, fewer than the `need` that size `size` needs.
    #[error("level {level} holds {have} nodes, fewer than the {need} that size {size} needs")]
    Short {
        /// The tree level (0: leaves).
        level: u8,
        /// Nodes the level holds.
        have: u64,
        /// Nodes a tree of `size` needs at that level.
        need: u64,
        /// The tree size.
        size: u64,
    },
}

impl TreeError {
    /// Stable snake_case code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            TreeError::Io { .. } => "tree_io",
            TreeError::LevelOutOfRange { .. } => "tree_level_out_of_range",
            TreeError::OutOfOrder { .. } => "tree_out_of_order",
            TreeError::MissingChildren { .. } => "tree_missing_children",
            TreeError::Short { .. } => "tree_short",
        }
    }
}
