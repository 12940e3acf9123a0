//! [`VocabMap`]: a model vocabulary's SID tokens, so a whole beam step of
//! `generate` is masked in one call that goes from token ids to the
//! allowed (beam, token id) pairs without a Python loop.

use adasid::{ReadView, Token};
use std::ops::Range;

use numpy::ndarray::{Array2, ArrayView2};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rustc_hash::FxHashMap;

use crate::index::SidView;
use crate::tokens::prefix;

/// Where each SID token sits in a vocabulary.
#[pyclass(frozen, module = "adasid._adasid")]
pub struct VocabMap {
    /// `[position][column]` → vocab id, -1 where the vocabulary lacks it.
    ids: Vec<Vec<i64>>,
    /// `[position][vocab id]` → column, -1 where the id is no token of that position.
    columns: Vec<Vec<i64>>,
    eos: Option<i64>,
}

#[pymethods]
impl VocabMap {
    /// `ids`: `(full_len, width)`, the vocab id of every (position, column)
    /// (-1: none); `eos`: the token that ends a finished SID.
    #[new]
    #[pyo3(signature = (ids, eos = None))]
    fn new(ids: PyReadonlyArray2<'_, i64>, eos: Option<i64>) -> PyResult<VocabMap> {
        let ids: Vec<Vec<i64>> = ids
            .as_array()
            .rows()
            .into_iter()
            .map(|r| r.to_vec())
            .collect();
        let top = ids.iter().flatten().copied().max().unwrap_or(-1);
        if top >= i32::MAX as i64 {
            return Err(PyValueError::new_err("vocab ids must be below 2^31"));
        }
        let columns = ids
            .iter()
            .map(|row| {
                let mut back = vec![-1i64; (top + 1).max(0) as usize];
                for (column, &id) in row.iter().enumerate().filter(|(_, id)| **id >= 0) {
                    back[id as usize] = column as i64;
                }
                back
            })
            .collect();
        Ok(VocabMap { ids, columns, eos })
    }

    /// The allowed entries of a `(beams, vocab_size)` score matrix for the
    /// sequences `input_ids` whose SIDs start at `start`: flat indices
    /// `beam * vocab_size + id`, ascending, and how many beams got none (a
    /// prefix no item has; a finished SID allows only `eos`).
    fn allowed<'py>(
        &self,
        py: Python<'py>,
        view: &SidView,
        input_ids: PyReadonlyArray2<'py, i64>,
        start: usize,
        vocab_size: usize,
    ) -> PyResult<(Bound<'py, PyArray1<i64>>, usize)> {
        let rows = input_ids.as_array();
        let mut flat = Vec::new();
        let empty = self.each_beam(py, view, rows, start, vocab_size, |b, ids| {
            let base = (b * vocab_size) as i64;
            flat.extend(ids.iter().map(|&i| base + i));
        })?;
        Ok((flat.into_pyarray(py), empty))
    }

    /// `scores` (`(beams, vocab_size)` float32) with every entry the SID
    /// prefixes do not allow set to -inf, as a new array (the input is left
    /// as it is), and how many beams got none: [`VocabMap::allowed`] and
    /// the masking in one pass, for scores on the CPU.
    fn masked<'py>(
        &self,
        py: Python<'py>,
        view: &SidView,
        input_ids: PyReadonlyArray2<'py, i64>,
        start: usize,
        scores: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<(Bound<'py, PyArray2<f32>>, usize)> {
        let rows = input_ids.as_array();
        let scores = scores.as_array();
        let (beams, vocab_size) = scores.dim();
        if beams != rows.nrows() {
            return Err(PyValueError::new_err(format!(
                "{} sequences for {beams} score rows",
                rows.nrows()
            )));
        }
        let mut out = Array2::<f32>::from_elem((beams, vocab_size), f32::NEG_INFINITY);
        let empty = self.each_beam(py, view, rows, start, vocab_size, |b, ids| {
            let (mut row, given) = (out.row_mut(b), scores.row(b));
            let row = row
                .as_slice_mut()
                .expect("a new array's rows are contiguous");
            match given.as_slice() {
                Some(given) => ids
                    .iter()
                    .for_each(|&i| row[i as usize] = given[i as usize]),
                None => ids
                    .iter()
                    .for_each(|&i| row[i as usize] = given[i as usize]),
            }
        })?;
        Ok((out.into_pyarray(py), empty))
    }

    /// The columns of `ids`, one per SID position from the first (-1 where
    /// an id is no token of its position).
    #[pyo3(name = "columns")]
    fn py_columns(&self, ids: Vec<i64>) -> Vec<i64> {
        ids.iter()
            .enumerate()
            .map(|(p, &id)| self.column(p, id))
            .collect()
    }
}

impl VocabMap {
    /// Calls `f(beam, allowed vocab ids)` for every beam (ids ascending;
    /// a finished SID allows only `eos`) and returns how many beams got
    /// none (a prefix no item has). Beams that spell the same prefix share
    /// one index read: in a beam step most of them do.
    fn each_beam(
        &self,
        py: Python<'_>,
        view: &SidView,
        rows: ArrayView2<'_, i64>,
        start: usize,
        vocab_size: usize,
        mut f: impl FnMut(usize, &[i64]) + Send,
    ) -> PyResult<usize> {
        if start > rows.ncols() {
            return Err(PyValueError::new_err(format!(
                "the SID starts at {start}, the sequences have {} tokens",
                rows.ncols()
            )));
        }
        let layout = *view.layout();
        let depth = rows.ncols() - start;
        Ok(view.read(py, |v| {
            let mut words = vec![0u64; v.mask_words()];
            // Prefix (columns) → its range of `ids`.
            let mut seen: FxHashMap<Vec<i64>, Range<usize>> = FxHashMap::default();
            let mut ids = Vec::new();
            let mut values = Vec::with_capacity(depth);
            let mut empty = 0;
            for (b, row) in rows.rows().into_iter().enumerate() {
                values.clear();
                values.extend(
                    row.iter()
                        .skip(start)
                        .enumerate()
                        .map(|(p, &id)| self.column(p, id)),
                );
                let range = match seen.get(&values) {
                    Some(range) => range.clone(),
                    None => {
                        let from = ids.len();
                        if depth >= layout.full_len() {
                            ids.extend(self.eos.filter(|&e| (e as usize) < vocab_size));
                        } else if let Ok(tokens) = prefix(&layout, &values) {
                            self.extend(v, &tokens, &mut words, vocab_size, &mut ids);
                        }
                        seen.insert(values.clone(), from..ids.len());
                        from..ids.len()
                    }
                };
                empty += usize::from(range.is_empty());
                f(b, &ids[range]);
            }
            empty
        }))
    }

    /// Column of vocab id `id` at SID position `pos` (-1: none, which no
    /// prefix check accepts).
    fn column(&self, pos: usize, id: i64) -> i64 {
        self.columns
            .get(pos)
            .and_then(|c| c.get(usize::try_from(id).ok()?))
            .copied()
            .unwrap_or(-1)
    }

    /// Appends the allowed entries after `tokens` for one beam: mask bits at
    /// a semantic position, the counters themselves at the disambiguation one.
    fn extend(
        &self,
        v: &dyn ReadView,
        tokens: &[Token],
        words: &mut [u64],
        vocab_size: usize,
        out: &mut Vec<i64>,
    ) {
        let depth = tokens.len();
        let start = out.len();
        let ids = self.ids.get(depth).map_or(&[][..], Vec::as_slice);
        // Ids past the model's vocabulary (a tokenizer larger than the
        // model's embedding) cannot be scored, so they are not allowed.
        let id = |column: usize| {
            ids.get(column)
                .copied()
                .filter(|&id| id >= 0 && id < vocab_size as i64)
        };
        if v.layout().is_disambiguation(depth) {
            let next = v.next_tokens(tokens).unwrap_or_default();
            out.extend(next.iter().filter_map(|&d| id(d as usize)));
        } else {
            v.write_mask(tokens, words);
            for (w, &word) in words.iter().enumerate() {
                let mut bits = word;
                while bits != 0 {
                    let column = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    out.extend(id(column));
                }
            }
        }
        // A vocabulary usually numbers a position's tokens in column order.
        if !out[start..].is_sorted() {
            out[start..].sort_unstable();
        }
    }
}
