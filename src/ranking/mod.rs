//! Ranking evaluation (the paper's second table): a CTR-style model scores
//! candidate items after a user's history, with item ids or SID tokens as
//! the item features, measured by AUC and GAUC.
//!
//! `protocol` builds the labelled impressions from user sequences (DIN's
//! protocol: each next item against sampled negatives the user never
//! touched), `features` what the model knows of each item, `net` the
//! DIN-style model, `train` trains it with validation early stopping and
//! scores the test step, `metrics` computes AUC and GAUC. None does I/O.

pub mod features;
pub mod metrics;
mod net;
pub mod protocol;
mod train;

pub use features::{FeatureSet, ItemFeatures};
pub use metrics::{AucReport, Impression, auc, auc_report};
pub use net::{DinNet, DinShape};
pub use protocol::{Example, Part, Protocol};
pub use train::{RankConfig, RankEpoch, RankReport, rank_eval};
