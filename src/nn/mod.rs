//! Candle building blocks shared by every trained model: a seeded parameter
//! registry with dense layers, the generic losses (a fused cross-entropy among them), the learning-rate
//! warm-up and cosine annealing, and the epoch loop with
//! dead-code re-seeding that the tokenizers train under.
//!
//! No I/O: weights go in and out as safetensors bytes ([`params::ParamStore`]).

pub mod cross_entropy;
pub(crate) mod dense;
pub mod early_stop;
pub mod epochs;
pub(crate) mod gemv;
pub mod losses;
pub mod params;
pub mod schedule;
pub(crate) mod softmax;

pub use cross_entropy::cross_entropy;
pub use early_stop::EarlyStop;
pub use params::ParamStore;
pub use schedule::{cosine_lr, warmup_lr};
