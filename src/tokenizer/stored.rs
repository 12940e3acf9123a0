//! Reading a tokenizer's blobs back out of a database.

use serde::de::DeserializeOwned;

use crate::blobs::BlobSource;
use crate::codec::{self, Kind, Matrix};
use crate::error::{Error, Result};

/// Blob naming which tokenizer made a database's SIDs.
pub const TOKENIZER: &str = "tokenizer";

/// A required blob, or an error that says which model is missing.
pub(crate) fn required(db: &(impl BlobSource + ?Sized), name: &str) -> Result<Vec<u8>> {
    db.blob(name)?.ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{} holds no trained model (missing '{name}'); train one first",
            db.describe()
        ))
    })
}

/// A required UTF-8 blob (a TOML configuration).
pub(crate) fn required_text(db: &(impl BlobSource + ?Sized), name: &str) -> Result<String> {
    String::from_utf8(required(db, name)?)
        .map_err(|_| Error::corruption(name.to_string(), "not UTF-8"))
}

/// A required matrix blob with the expected shape.
pub(crate) fn required_matrix(
    db: &(impl BlobSource + ?Sized),
    name: &str,
    rows: usize,
    cols: usize,
) -> Result<Matrix> {
    let m = Matrix::decode(&required(db, name)?)?;
    if m.rows as usize != rows || m.cols as usize != cols {
        return Err(Error::corruption(
            name.to_string(),
            format!("{}×{} matrix, expected {rows}×{cols}", m.rows, m.cols),
        ));
    }
    Ok(m)
}

/// A residual tokenizer's TOML configuration (checked by `validate`) and
/// input widths.
pub(crate) fn config_and_widths<T: DeserializeOwned>(
    db: &(impl BlobSource + ?Sized),
    (config, validate): (&str, fn(&T) -> Result<()>),
    widths: &str,
) -> Result<(T, Vec<usize>)> {
    let cfg = crate::settings::parse(config, &required_text(db, config)?, validate)?;
    let w = codec::decode(Kind::Blob, &required(db, widths)?)?;
    Ok((cfg, w))
}

/// The blobs every residual tokenizer starts with: its name, its TOML
/// configuration and its input widths.
pub(crate) fn residual_header<T: serde::Serialize>(
    name: &str,
    [config_blob, widths_blob]: [&str; 2],
    config: &T,
    widths: &[usize],
) -> Vec<(String, Vec<u8>)> {
    vec![
        (TOKENIZER.to_string(), name.as_bytes().to_vec()),
        (
            config_blob.to_string(),
            crate::settings::to_toml(config).into_bytes(),
        ),
        (
            widths_blob.to_string(),
            codec::encode(Kind::Blob, &widths.to_vec()),
        ),
    ]
}
