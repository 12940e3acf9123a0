//! The ADA-SID network in candle: layers, codebooks, router, losses.
//!
//! No I/O: weights go in and out as safetensors bytes ([`params::ParamStore`]).

pub mod codebook;
pub mod losses;
pub mod net;
pub mod params;
pub mod router;

pub use net::{AdaSidNet, Batch, ForwardOptions, NetShape};
pub use params::ParamStore;
pub use router::{ControllerConfig, SparsityController};
