//! # adasid
//!
//! An embedded semantic-ID index for recommender systems. Items carry *semantic
//! IDs* (SIDs): short token sequences, one token per quantiser expert. adasid
//! stores them durably and answers the questions generative retrieval asks:
//! which items live under a SID prefix, which tokens may come next (for
//! trie-constrained beam decoding), and which items are close to a given one.
//!
//! ## Tutorial
//!
//! A database fixes the shape of its SIDs: `levels` tokens from a codebook of
//! size `K`, the last `behavior` of which are behavior SIDs that may be masked.
//!
//! ```
//! use adasid::{CandidateMode, CandidateQuery, Database, NewItem, SidIndex, SidLayout, EMPTY};
//!
//! # fn main() -> adasid::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let layout = SidLayout::new(3, 256, 1)?; // 3 tokens, K = 256, last one is behavior
//! let db = Database::create(&dir.path().join("db"), layout)?;
//!
//! // One atomic, durable batch. A zero routing weight masks the behavior SID.
//! db.upsert(&[
//!     NewItem { key: "lipstick".into(), tokens: vec![3, 17, 5], weights: vec![0.8] },
//!     NewItem { key: "gloss".into(), tokens: vec![3, 17, 9], weights: vec![0.0] },
//!     NewItem { key: "mascara".into(), tokens: vec![3, 4, 5], weights: vec![0.3] },
//! ])?;
//!
//! let state = db.read();
//! let index = &*state; // a `SidIndex` (and a `ReadView`: keys too)
//! // Every item gets a trailing disambiguation token, so full SIDs are unique.
//! let gloss = state.id("gloss")?;
//! assert_eq!(index.sid(gloss).unwrap().0, &[3, 17, EMPTY, 0]);
//!
//! // Items under a prefix: a borrowed posting list, no copy.
//! assert_eq!(index.items(&[3, 17]).unwrap().len(), 2);
//! // Valid next tokens after a prefix (EMPTY sorts last).
//! assert_eq!(&*index.next_tokens(&[3, 17]).unwrap(), &[5, EMPTY]);
//!
//! // One next-token bitmask per beam, for a whole beam step.
//! let beams = [vec![3u16], vec![3, 17]];
//! let mut masks = vec![0u64; beams.len() * index.mask_words()];
//! index.allowed_mask(&beams, &mut masks)?;
//! assert_eq!(masks[0], (1 << 4) | (1 << 17));
//!
//! // Candidates near an item: longest shared prefix first.
//! let lipstick = state.id("lipstick")?;
//! let (sid, weights) = index.sid(lipstick).unwrap();
//! let query = CandidateQuery { tokens: sid, weights, k: 2, mode: CandidateMode::Prefix, exclude: Some(lipstick) };
//! let found: Vec<&str> = index.candidates(&query).iter().map(|c| state.key(c.item).unwrap()).collect();
//! assert_eq!(found, ["gloss", "mascara"]);
//! # Ok(())
//! # }
//! ```
//!
//! ## Constrained decoding
//!
//! A generative retriever writes an item's SID token by token. Any model
//! that scores next tokens implements [`decode::StepScorer`];
//! [`decode::BeamSearch`] keeps it to SIDs that exist:
//!
//! ```
//! use adasid::decode::{BeamSearch, StepScorer};
//! use adasid::{Database, NewItem, SidLayout, Token};
//!
//! /// Prefers low tokens: log-probability −column at every step.
//! struct PreferLow;
//! impl StepScorer for PreferLow {
//!     fn score(&mut self, _: &[Token], _: usize, beams: usize, out: &mut [f32]) -> adasid::Result<()> {
//!         let vocab = out.len() / beams;
//!         for (i, x) in out.iter_mut().enumerate() {
//!             *x = -((i % vocab) as f32);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # fn main() -> adasid::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let layout = SidLayout::new(2, 8, 0)?;
//! let db = Database::create(&dir.path().join("db"), layout)?;
//! let item = |key: &str, tokens: Vec<u16>| NewItem { key: key.into(), tokens, weights: vec![] };
//! db.upsert(&[item("a", vec![5, 1]), item("b", vec![2, 7]), item("c", vec![2, 3])])?;
//!
//! let state = db.read();
//! let mut search = BeamSearch::new(layout, 2)?;
//! let hits = search.search(&*state, &mut PreferLow)?;
//! let keys: Vec<&str> = hits.iter().map(|h| state.key(h.item).unwrap()).collect();
//! // Scores: c = −2 −3 = −5, a = −5 −1 = −6, b = −2 −7 = −9; never 0,0, which does not exist.
//! assert_eq!(keys, ["c", "a"]);
//! # Ok(())
//! # }
//! ```
//!
//! ## Serving: metadata filters, live updates, snapshots
//!
//! Items can carry metadata (a JSON object, e.g. a `meta.jsonl` line). It is
//! stored in the same atomic commit and indexed with tantivy, so a lookup can
//! be restricted to items whose metadata matches a query. Writes may run
//! while other threads read; each call is visible in full when it returns.
//!
//! ```
//! use adasid::filter::Meta;
//! use adasid::snapshot::Snapshot;
//! use adasid::{Database, NewItem, ReadView, SidIndex, SidLayout};
//!
//! # fn main() -> adasid::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let db = Database::create(&dir.path().join("db"), SidLayout::new(2, 64, 0)?)?;
//! let item = |key: &str, tokens: Vec<u16>| NewItem { key: key.into(), tokens, weights: vec![] };
//! let meta = |json: &str| -> Meta { serde_json::from_str(json).unwrap() };
//! db.upsert_with_meta(
//!     &[item("red", vec![3, 17]), item("pink", vec![3, 17]), item("base", vec![3, 4])],
//!     &[
//!         ("red".into(), meta(r#"{"title": "Red nail polish", "brand": "OPI", "price": 12}"#)),
//!         ("pink".into(), meta(r#"{"title": "Pink nail polish", "brand": "OPI", "price": 30}"#)),
//!         ("base".into(), meta(r#"{"title": "Base coat", "brand": "Essie", "price": 9}"#)),
//!     ],
//!     vec![],
//! )?;
//!
//! // Items under a prefix whose metadata matches a tantivy query.
//! let cheap_opi = db.search(&[3], Some("brand:opi AND price:[0 TO 20]"))?;
//! assert_eq!(cheap_opi, [db.read().id("red")?]);
//!
//! // Live updates: re-encode, remove; readers see each call whole.
//! db.upsert(&[item("pink", vec![3, 4])])?;
//! db.remove(&["base"])?;
//! assert_eq!(db.search(&[3, 4], Some("polish"))?, [db.read().id("pink")?]);
//!
//! // An immutable snapshot for a serving process: opened in O(1) and read
//! // in place (a memory map), answering exactly as the live index.
//! let path = dir.path().join("index.snap");
//! db.snapshot(&path)?;
//! let snap = Snapshot::open(&path)?;
//! snap.verify()?; // optional: checks every section's checksum
//! let pink = snap.id("pink")?;
//! assert_eq!(snap.items(&[3, 4]).unwrap().to_sorted_vec(), [pink]);
//! assert_eq!(snap.next_tokens(&[3]), db.read().next_tokens(&[3]));
//! // Filters work over a snapshot too: its ids are the database's ids.
//! let docs = db.filters()?.expect("items have metadata").matching("brand:opi")?;
//! assert_eq!(adasid::filter::intersect(snap.items(&[3]).unwrap(), &docs).len(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! ## Readers in other processes
//!
//! The store admits one process at a time. Every commit is therefore also
//! published in the database folder (a snapshot of index and keys, and the
//! model blobs), and [`Reader::open`] reads that publication when it holds
//! every acknowledged write, without opening the store: any number of
//! processes read beside the one that writes, and none of them blocks it.
//!
//! ```
//! use adasid::{Database, NewItem, ReadView, Reader, SidIndex, SidLayout};
//!
//! # fn main() -> adasid::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("db");
//! let db = Database::create(&path, SidLayout::new(2, 64, 0)?)?;
//! let item = |key: &str, tokens: Vec<u16>| NewItem { key: key.into(), tokens, weights: vec![] };
//! db.upsert(&[item("red", vec![3, 17]), item("base", vec![3, 4])])?;
//!
//! // Elsewhere (another process, typically) while `db` stays open:
//! let reader = Reader::open(&path)?;
//! assert!(matches!(reader, Reader::Published(_)));
//! let view = reader.view();
//! assert_eq!(view.get().items(&[3]).map(|p| p.len()), Some(2));
//! assert!(view.get().id("red").is_ok());
//! # Ok(())
//! # }
//! ```
//!
//! A bulk load can publish once at the end instead
//! ([`Database::publish_each_commit`], [`Database::publish`]); until then
//! readers see the last publication, and [`Reader::lagging`] says so.
//!
//! With a trained tokenizer in the database, [`pipeline::encode`] turns
//! embeddings of new or changed items into SIDs and upserts them
//! (`train` feature).
//!
//! Reopening the folder with [`Database::open`] maps the last publication
//! when it shows every commit (in O(1) and a checksum pass, not a rebuild),
//! and otherwise rebuilds the same index from the stored records. Between
//! publications a database holds in memory only what changed since the
//! last one. See `docs/ARCHITECTURE.md` for the design and
//! `docs/FORMAT.md` for the on-disk format and durability guarantees.

#![warn(missing_docs)]

// Core: always built, no storage, ML or CLI dependencies.
pub mod decode;
pub mod error;
pub mod index;
pub mod item;
pub mod keymap;
pub mod sid;
pub mod snapshot;
mod stale;
pub mod stats;
pub mod view;

// `store`: the durable database.
#[cfg(feature = "store")]
pub mod blobs;
#[cfg(feature = "store")]
#[doc(hidden)]
pub mod codec;
#[cfg(feature = "store")]
pub mod data;
#[cfg(feature = "store")]
pub mod database;
#[cfg(feature = "store")]
pub mod heap;
#[cfg(feature = "store")]
mod store;

// `filters`: the tantivy metadata index.
#[cfg(feature = "filters")]
pub mod filter;

// `train`: tokenizers, evaluation, the retrievers, ranking evaluation.
#[cfg(feature = "train")]
pub mod eval;
#[cfg(feature = "train")]
pub mod generative;
#[cfg(feature = "train")]
pub mod kmeans;
#[cfg(feature = "train")]
mod nn;
#[cfg(feature = "train")]
pub mod pipeline;
#[cfg(feature = "train")]
pub mod ranking;
#[cfg(feature = "train")]
mod settings;
#[cfg(feature = "train")]
pub mod tokenizer;

#[cfg(feature = "store")]
pub use data::meta::Meta;
#[cfg(feature = "store")]
pub use database::{Database, Health, Published, ReadGuard, Reader, ReaderView, WriteReport};
pub use error::{Error, Result};
pub use index::{Candidate, CandidateMode, CandidateQuery, Index, ItemId, Postings, SidIndex};
pub use item::{ItemInput, NewItem, ValidItem, ValidSid};
pub use sid::{EMPTY, SidLayout, Token};
pub use view::{ReadView, State};
