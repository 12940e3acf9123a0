//! Input data: token files made elsewhere and synthetic SIDs.
//!
//! Invariant: every validation error names the file and the 1-based line.

pub mod catalog;
pub mod embeddings;
pub mod synthetic;
pub mod tokens;
