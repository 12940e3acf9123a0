//! [`SidView`]: the read surface of a database or a snapshot file, as one
//! Python class. Every query releases the GIL while Rust works.

use std::path::PathBuf;

use adasid::snapshot::Snapshot;
use adasid::{CandidateMode, CandidateQuery, ReadView, Reader, SidLayout, Token};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::to_py;
use crate::tokens::{columns, next_columns, prefix};

/// What a [`SidView`] reads.
enum Source {
    /// A database folder: its published view, or the store when no
    /// writer holds it (see `adasid::Reader`).
    Database(Reader),
    /// A snapshot file, memory-mapped.
    Snapshot(Snapshot<memmap2::Mmap>),
}

/// Prefix queries over the semantic IDs of a database or a snapshot.
///
/// Tokens are written as mask columns: a semantic token `t < K` is `t`, the
/// masked behavior token is `K`, the disambiguation counter is itself.
#[pyclass(frozen, module = "adasid._adasid")]
pub struct SidView {
    source: Source,
    layout: SidLayout,
}

/// Opens the database folder at `path` for reading: the items of its last
/// published commit, mapped read-only, so a writer in another process goes
/// on (open again to see its later commits; `lagging` says whether a writer
/// had committed more than was published). Where no current publication
/// exists (a database an older version wrote, or one a crash left
/// unpublished) and no writer holds the store, it publishes one and reads
/// that; only if it cannot (a read-only folder) does the view read the
/// store itself, whose lock then keeps writers out until the view is
/// dropped (`source` says which).
#[pyfunction]
pub fn open(py: Python<'_>, path: PathBuf) -> PyResult<SidView> {
    let reader = py
        .detach(|| match Reader::open(&path)? {
            Reader::Store(db) if db.publish().is_ok() => {
                drop(db);
                Reader::open(&path)
            }
            reader => Ok(reader),
        })
        .map_err(to_py)?;
    let layout = reader.layout();
    Ok(SidView {
        source: Source::Database(reader),
        layout,
    })
}

/// Maps the snapshot file at `path` (O(1); checksums verified once).
#[pyfunction]
pub fn open_snapshot(py: Python<'_>, path: PathBuf) -> PyResult<SidView> {
    let snap = py
        .detach(|| {
            let snap = Snapshot::open(&path)?;
            snap.verify()?;
            Ok(snap)
        })
        .map_err(to_py)?;
    let layout = *adasid::SidIndex::layout(&snap);
    Ok(SidView {
        source: Source::Snapshot(snap),
        layout,
    })
}

impl SidView {
    /// Runs `f` on a consistent view, without the GIL.
    pub(crate) fn read<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&dyn ReadView) -> R + Send,
    ) -> R {
        py.detach(|| match &self.source {
            Source::Database(reader) => f(reader.view().get()),
            Source::Snapshot(snap) => f(snap),
        })
    }

    /// The SID layout.
    pub(crate) fn layout(&self) -> &SidLayout {
        &self.layout
    }

    fn prefix(&self, values: &[i64]) -> PyResult<Vec<Token>> {
        prefix(&self.layout, values).map_err(PyValueError::new_err)
    }
}

#[pymethods]
impl SidView {
    /// Semantic tokens per item (the disambiguation token comes on top).
    #[getter]
    fn levels(&self) -> usize {
        self.layout.levels()
    }

    /// Codebook size K (a mask row has K + 1 columns).
    #[getter]
    fn k(&self) -> u32 {
        self.layout.k()
    }

    /// How many of the last semantic positions are behavior SIDs.
    #[getter]
    fn behavior(&self) -> usize {
        self.layout.behavior as usize
    }

    /// Tokens in a full SID: `levels + 1`.
    #[getter]
    fn full_len(&self) -> usize {
        self.layout.full_len()
    }

    /// Whether a writer held the database with a commit not yet published
    /// when this view was opened (always false for a snapshot).
    #[getter]
    fn lagging(&self) -> bool {
        matches!(&self.source, Source::Database(r) if r.lagging())
    }

    /// What the view reads: `"published"` (a database's published view,
    /// no lock held), `"store"` (the database's store, its lock held) or
    /// `"snapshot"`.
    #[getter]
    fn source(&self) -> &'static str {
        match &self.source {
            Source::Database(Reader::Published(_)) => "published",
            Source::Database(_) => "store",
            Source::Snapshot(_) => "snapshot",
        }
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.read(py, |v| v.len() as usize)
    }

    /// Item ids under `prefix`, ascending (empty when none).
    fn items<'py>(&self, py: Python<'py>, prefix: Vec<i64>) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let prefix = self.prefix(&prefix)?;
        let ids = self.read(py, |v| {
            v.items(&prefix)
                .map(|p| p.to_sorted_vec())
                .unwrap_or_default()
        });
        Ok(ids.into_pyarray(py))
    }

    /// How many items live under `prefix`.
    fn count(&self, py: Python<'_>, prefix: Vec<i64>) -> PyResult<u64> {
        let prefix = self.prefix(&prefix)?;
        Ok(self.read(py, |v| v.count(&prefix)))
    }

    /// The tokens that may follow `prefix`, ascending; `None` when no item
    /// has that prefix.
    fn next_tokens(&self, py: Python<'_>, prefix: Vec<i64>) -> PyResult<Option<Vec<i64>>> {
        let prefix = self.prefix(&prefix)?;
        let layout = self.layout;
        let depth = prefix.len();
        Ok(self.read(py, |v| {
            v.next_tokens(&prefix)
                .map(|next| next_columns(&layout, depth, &next).collect())
        }))
    }

    /// One boolean row of `K + 1` columns per prefix (`prefixes`: an integer
    /// array `(beams, depth)`): which tokens may follow. A prefix no item has,
    /// or with a token out of range, gets an all-false row. At the
    /// disambiguation position column K stands for every counter ≥ K.
    fn allowed_mask<'py>(
        &self,
        py: Python<'py>,
        prefixes: PyReadonlyArray2<'py, i64>,
    ) -> PyResult<Bound<'py, PyArray2<bool>>> {
        let rows = prefixes.as_array();
        let (beams, depth) = rows.dim();
        let bits = self.layout.mask_bits();
        let mut out = Array2::<bool>::from_elem((beams, bits), false);
        let layout = self.layout;
        let rows = rows.to_owned();
        self.read(py, |v| {
            let mut words = vec![0u64; v.mask_words()];
            let mut values = Vec::with_capacity(depth);
            for (b, mut row) in out.rows_mut().into_iter().enumerate() {
                values.clear();
                values.extend(rows.row(b).iter().copied());
                let Ok(tokens) = prefix(&layout, &values) else {
                    continue;
                };
                v.write_mask(&tokens, &mut words);
                for (bit, cell) in row.iter_mut().enumerate() {
                    *cell = words[bit / 64] >> (bit % 64) & 1 == 1;
                }
            }
        });
        Ok(out.into_pyarray(py))
    }

    /// The next tokens of many prefixes (`prefixes`: an integer array
    /// `(beams, depth)`) in one call, as `(offsets, tokens)`: row `b`'s
    /// tokens are `tokens[offsets[b]:offsets[b + 1]]`, ascending, in the
    /// column spelling (disambiguation counters as they are). A prefix no
    /// item has gets none.
    fn next_tokens_batch<'py>(
        &self,
        py: Python<'py>,
        prefixes: PyReadonlyArray2<'py, i64>,
    ) -> (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>) {
        let rows = prefixes.as_array().to_owned();
        let layout = self.layout;
        let (offsets, tokens) = self.read(py, |v| {
            let mut offsets = vec![0i64];
            let mut tokens = Vec::new();
            let mut values = Vec::new();
            for row in rows.rows() {
                values.clear();
                values.extend(row.iter().copied());
                if let Ok(prefix) = prefix(&layout, &values)
                    && let Some(next) = v.next_tokens(&prefix)
                {
                    tokens.extend(next_columns(&layout, prefix.len(), &next));
                }
                offsets.push(tokens.len() as i64);
            }
            (offsets, tokens)
        });
        (offsets.into_pyarray(py), tokens.into_pyarray(py))
    }

    /// Item id of a key (`KeyError` when unknown).
    fn id(&self, py: Python<'_>, key: &str) -> PyResult<u32> {
        self.read(py, |v| v.id(key)).map_err(to_py)
    }

    /// Key of an item id, `None` when no item has it.
    fn key(&self, py: Python<'_>, id: u32) -> Option<String> {
        self.read(py, |v| v.key(id).map(str::to_string))
    }

    /// Full SID of a key, in the column spelling.
    fn sid(&self, py: Python<'_>, key: &str) -> PyResult<Vec<i64>> {
        let layout = self.layout;
        self.read(py, |v| {
            let id = v.id(key)?;
            let (sid, _) = v
                .sid(id)
                .ok_or_else(|| adasid::Error::UnknownKey(key.to_string()))?;
            Ok(columns(&layout, sid))
        })
        .map_err(to_py)
    }

    /// The key of the item whose full SID is `sid` (column spelling), `None`
    /// when no item has it: what a finished beam names.
    fn lookup(&self, py: Python<'_>, sid: Vec<i64>) -> PyResult<Option<String>> {
        if sid.len() != self.layout.full_len() {
            return Err(PyValueError::new_err(format!(
                "a full SID has {} tokens here, got {}",
                self.layout.full_len(),
                sid.len()
            )));
        }
        let Ok(tokens) = prefix(&self.layout, &sid) else {
            return Ok(None);
        };
        Ok(self.read(py, |v| {
            let item = v.items(&tokens)?.iter().next()?;
            v.key(item).map(str::to_string)
        }))
    }

    /// Up to `k` items near `key`'s SID, best first, as `(key, score)`:
    /// `mode="prefix"` (longest shared prefix) or `"overlap"` (weighted
    /// shared positions). The item itself is left out.
    #[pyo3(signature = (key, k = 10, mode = "prefix"))]
    fn candidates(
        &self,
        py: Python<'_>,
        key: &str,
        k: usize,
        mode: &str,
    ) -> PyResult<Vec<(String, f32)>> {
        let mode = match mode {
            "prefix" => CandidateMode::Prefix,
            "overlap" => CandidateMode::Overlap,
            other => {
                return Err(PyValueError::new_err(format!(
                    "mode must be 'prefix' or 'overlap', got '{other}'"
                )));
            }
        };
        self.read(py, |v| {
            let id = v.id(key)?;
            let (tokens, weights) = v
                .sid(id)
                .ok_or_else(|| adasid::Error::UnknownKey(key.to_string()))?;
            let q = CandidateQuery {
                tokens,
                weights,
                k,
                mode,
                exclude: Some(id),
            };
            Ok(v.candidates(&q)
                .into_iter()
                .filter_map(|c| Some((v.key(c.item)?.to_string(), c.score)))
                .collect())
        })
        .map_err(to_py)
    }

    /// The largest disambiguation counter in use (how many `<d_N>` tokens a
    /// vocabulary needs, less one); -1 when there are no items.
    fn max_counter(&self, py: Python<'_>) -> i64 {
        let levels = self.layout.levels();
        self.read(py, |v| {
            let mut top = -1i64;
            v.for_each_sid(&mut |_, sid| top = top.max(sid[levels] as i64));
            top
        })
    }
}
