//! A retriever's stored form, shared by both retrievers: a TOML settings
//! blob and a safetensors weights blob, either missing meaning "not trained".

use crate::blobs::BlobSource;
use crate::error::{Error, Result};
use crate::settings;

/// Where a retriever keeps itself, and what trains it (for the error).
pub(crate) struct Stored {
    /// Its settings blob (TOML).
    pub config: &'static str,
    /// Its weights blob (safetensors).
    pub weights: &'static str,
    /// What it is called in messages.
    pub what: &'static str,
    /// The command that trains it.
    pub trained_by: &'static str,
    /// Settings added after configs were first stored, with the value (TOML)
    /// a stored config that lacks one was trained with: a default may
    /// change without changing what an older database means.
    pub older: &'static [(&'static str, &'static str)],
}

impl Stored {
    /// The settings (checked by `validate`) and the weights stored in `db`.
    pub(crate) fn load<T: serde::de::DeserializeOwned>(
        &self,
        db: &(impl BlobSource + ?Sized),
        validate: fn(&T) -> Result<()>,
    ) -> Result<(T, Vec<u8>)> {
        let missing = |name: &str| {
            Error::InvalidArgument(format!(
                "{} holds no {} (missing '{name}'); run `{}` first",
                db.describe(),
                self.what,
                self.trained_by
            ))
        };
        let text = db.blob(self.config)?.ok_or_else(|| missing(self.config))?;
        let text =
            String::from_utf8(text).map_err(|_| Error::corruption(self.config, "not UTF-8"))?;
        let cfg = settings::parse(self.config, &self.with_older(&text)?, validate)?;
        let weights = db
            .blob(self.weights)?
            .ok_or_else(|| missing(self.weights))?;
        Ok((cfg, weights))
    }

    /// Stored settings `text` with each of [`Stored::older`] it lacks.
    fn with_older(&self, text: &str) -> Result<String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| Error::BadFile {
            file: self.config.into(),
            message: e.to_string(),
        })?;
        let mut text = text.to_string();
        for (key, value) in self.older.iter().filter(|(k, _)| !table.contains_key(*k)) {
            // First, so it belongs to the root table whatever follows.
            text.insert_str(0, &format!("{key} = {value}\n"));
        }
        Ok(text)
    }

    /// The two blobs of `config` and `weights`.
    pub(crate) fn blobs(
        &self,
        config: &impl serde::Serialize,
        weights: Vec<u8>,
    ) -> Vec<(String, Vec<u8>)> {
        vec![
            (
                self.config.to_string(),
                settings::to_toml(config).into_bytes(),
            ),
            (self.weights.to_string(), weights),
        ]
    }
}
