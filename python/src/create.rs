//! `adasid.create`: a new database from SIDs held in Python, in one
//! atomic commit (tests, notebooks, and repositories whose SIDs live in
//! arrays). Larger or incremental loads go through `adasid ingest-tokens`.

use std::path::PathBuf;

use adasid::{Database, NewItem, SidLayout};
use numpy::{PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::index::{SidView, open};
use crate::to_py;
use crate::tokens::prefix;

/// Creates the database `path` holding `keys[i]` with SID row `sids[i]`
/// (`(n, levels)` semantic tokens; with `full=True`, `(n, levels + 1)`
/// full SIDs whose last column is the disambiguation counter asked for;
/// column spelling, so `k` is a masked behavior token), codebook size `k`
/// and `behavior` behavior positions, and opens it for reading. `weights`
/// (`(n, behavior)` float32) are the routing weights. Nothing is left
/// behind when it fails.
#[pyfunction]
#[pyo3(signature = (path, keys, sids, k, behavior = 0, weights = None, full = false))]
#[allow(clippy::too_many_arguments)] // the Python signature, keyword arguments
pub fn create(
    py: Python<'_>,
    path: PathBuf,
    keys: Vec<String>,
    sids: PyReadonlyArray2<'_, i64>,
    k: u32,
    behavior: u32,
    weights: Option<PyReadonlyArray2<'_, f32>>,
    full: bool,
) -> PyResult<SidView> {
    let rows = sids.as_array();
    let (n, width) = rows.dim();
    if n != keys.len() {
        return Err(PyValueError::new_err(format!(
            "{} keys for {n} SID rows",
            keys.len()
        )));
    }
    if let Some(w) = &weights
        && w.shape() != [n, behavior as usize]
    {
        return Err(PyValueError::new_err(format!(
            "weights must have shape ({n}, {behavior}), got {:?}",
            w.shape()
        )));
    }
    let levels = width.saturating_sub(full as usize) as u32;
    let layout = SidLayout::new(levels, k, behavior).map_err(to_py)?;
    let items = (0..n)
        .map(|i| {
            let values: Vec<i64> = rows.row(i).to_vec();
            let tokens = prefix(&layout, &values).map_err(|e| format!("row {i}: {e}"))?;
            let weights = weights
                .as_ref()
                .map(|w| w.as_array().row(i).to_vec())
                .unwrap_or_default();
            Ok(NewItem {
                key: keys[i].clone(),
                tokens,
                weights,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(PyValueError::new_err)?;
    py.detach(|| Database::create_with(&path, layout, &items, &[], Vec::new()))
        .map_err(to_py)?;
    open(py, path)
}
