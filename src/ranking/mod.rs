//! Ranking evaluation (the paper's second table): a CTR-style model scores
//! candidate items after a user's history, with item ids or SID tokens as
//! the item features, measured by AUC and GAUC.
//!
//! `protocol` builds the labelled impressions from user sequences (DIN's
//! protocol: each next item against sampled negatives the user never
//! touched), `metrics` scores them. Neither does I/O.

pub mod metrics;
pub mod protocol;

pub use metrics::{AucReport, Impression, auc, auc_report};
pub use protocol::{Example, Part, Protocol};
