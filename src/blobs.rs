//! [`BlobSource`]: where a stored model's named blobs come from. A database
//! is one; so is the list of blobs a training run just produced, so a model
//! can be loaded back without a database (and tokenizers need not know
//! about databases at all).

use crate::error::Result;

/// Named byte blobs (model weights, codebooks, configuration).
pub trait BlobSource {
    /// The blob called `name`, if present.
    fn blob(&self, name: &str) -> Result<Option<Vec<u8>>>;

    /// What the blobs come from, for error messages (a database path).
    fn describe(&self) -> String;
}

impl BlobSource for [(String, Vec<u8>)] {
    fn blob(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.iter().find(|(n, _)| n == name).map(|(_, b)| b.clone()))
    }

    fn describe(&self) -> String {
        "the given blobs".to_string()
    }
}
