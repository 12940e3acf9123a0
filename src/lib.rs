pub mod codec;
pub mod error;
pub mod index;
pub mod sid;

pub use error::{Error, Result};
