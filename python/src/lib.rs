//! The `adasid._adasid` extension module: a database (read-only, beside a
//! writer) or a snapshot file as an [`index::SidView`] object. The Python
//! package `adasid` wraps it; `adasid.hf` builds the Hugging Face logits
//! processor on it.

mod create;
mod index;
mod tokens;
mod vocab;

use pyo3::exceptions::{
    PyBlockingIOError, PyFileNotFoundError, PyKeyError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;

/// The library's error as the Python exception a caller expects: a missing
/// path is `FileNotFoundError`, an unknown key `KeyError`, a database another
/// process holds or is changing `BlockingIOError` (retry), what else the
/// caller can fix `ValueError`, anything underneath `RuntimeError`; the
/// message is the library's.
pub(crate) fn to_py(e: adasid::Error) -> PyErr {
    let message = e.to_string();
    match e {
        adasid::Error::NotFound { .. } => PyFileNotFoundError::new_err(message),
        adasid::Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(message)
        }
        adasid::Error::UnknownKey(key) => PyKeyError::new_err(key),
        adasid::Error::Locked { .. } | adasid::Error::Busy { .. } => {
            PyBlockingIOError::new_err(message)
        }
        e if e.is_input() => PyValueError::new_err(message),
        _ => PyRuntimeError::new_err(message),
    }
}

#[pymodule]
fn _adasid(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<index::SidView>()?;
    m.add_class::<vocab::VocabMap>()?;
    m.add_function(wrap_pyfunction!(index::open, m)?)?;
    m.add_function(wrap_pyfunction!(index::open_snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(create::create, m)?)?;
    Ok(())
}
