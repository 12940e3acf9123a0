pub mod codec;
pub mod database;
pub mod error;
pub mod index;
pub mod keymap;
pub mod sid;
pub mod store;

pub use database::{Database, NewItem, State, WriteReport};
pub use error::{Error, Result};
pub use index::{Candidate, CandidateMode, CandidateQuery, Index, ItemId, Postings};
pub use sid::{EMPTY, SidLayout, Token};
pub mod cli;
pub mod data;
pub mod stats;
