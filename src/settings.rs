//! Settings files: TOML where every field is optional, unknown keys are
//! refused, and ranges are checked before anything is built from them.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Parses TOML text and checks it with `validate`; `file` names it in errors.
pub(crate) fn parse<T: DeserializeOwned>(
    file: &str,
    text: &str,
    validate: fn(&T) -> Result<()>,
) -> Result<T> {
    let value: T = toml::from_str(text).map_err(|e| Error::BadFile {
        file: file.into(),
        message: e.to_string(),
    })?;
    validate(&value)?;
    Ok(value)
}

/// Reads a TOML file and checks it with `validate`.
pub(crate) fn read<T: DeserializeOwned>(path: &Path, validate: fn(&T) -> Result<()>) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&path.display().to_string(), &text, validate)
}

/// Settings as TOML text (every settings type serialises).
pub(crate) fn to_toml<T: serde::Serialize>(value: &T) -> String {
    toml::to_string(value).expect("settings serialise")
}
