//! What the residual tokenizers quantise: the item's modalities, each scaled
//! to unit L2 norm and by `1/√M`, concatenated into one unit-norm vector. The
//! same view is used to measure every tokenizer's reconstruction error.

use serde::{Deserialize, Serialize};

use crate::data::embeddings::{Dataset, Table};
use crate::error::{Error, Result};
use crate::item::NewItem;
use crate::sid::{SidLayout, Token};

/// Which modalities a residual tokenizer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Inputs {
    /// Content modalities only (TIGER's RQ-VAE).
    Content,
    /// Content modalities and the behavior embedding.
    All,
}

impl Inputs {
    /// The tables this choice reads, in concatenation order.
    pub fn tables<'a>(&self, data: &'a Dataset) -> Vec<&'a Table> {
        let mut t: Vec<&Table> = data.content.iter().collect();
        if *self == Inputs::All {
            t.push(&data.behavior);
        }
        t
    }

    /// Width of each table this choice reads.
    pub fn widths(&self, data: &Dataset) -> Vec<usize> {
        self.tables(data).iter().map(|t| t.dim).collect()
    }
}

/// `rows × Σ widths` row-major: each modality's row L2-normalised and scaled
/// by `1/√M`. A zero row stays zero.
pub fn concatenated(data: &Dataset, inputs: Inputs) -> (Vec<f32>, usize) {
    concatenated_rows(data, inputs, 0..data.len())
}

/// [`concatenated`] of the rows `rows` alone.
pub fn concatenated_rows(
    data: &Dataset,
    inputs: Inputs,
    rows: std::ops::Range<usize>,
) -> (Vec<f32>, usize) {
    let tables = inputs.tables(data);
    let width: usize = tables.iter().map(|t| t.dim).sum();
    let scale = 1.0 / (tables.len() as f32).sqrt();
    let mut out = Vec::with_capacity(rows.len() * width);
    for i in rows {
        for t in &tables {
            let row = t.row(i);
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            let f = if norm > 0.0 { scale / norm } else { 0.0 };
            out.extend(row.iter().map(|x| x * f));
        }
    }
    (out, width)
}

/// Splits concatenated rows back into one table per modality.
pub fn split(rows: &[f32], widths: &[usize]) -> Vec<Table> {
    let width: usize = widths.iter().sum();
    let n = rows.len() / width.max(1);
    let mut offset = 0;
    widths
        .iter()
        .map(|&d| {
            let mut data = Vec::with_capacity(n * d);
            for r in rows.chunks_exact(width) {
                data.extend_from_slice(&r[offset..offset + d]);
            }
            offset += d;
            Table {
                source: "reconstruction".into(),
                rows: n,
                dim: d,
                data,
            }
        })
        .collect()
}

/// The concatenated view of `data` for a model trained on modality `widths`.
pub(crate) fn model_inputs(
    widths: &[usize],
    inputs: Inputs,
    data: &Dataset,
) -> Result<(Vec<f32>, usize)> {
    check_widths(widths, inputs, data)?;
    Ok(concatenated(data, inputs))
}

/// The error for data whose modality widths are not the model's.
pub(crate) fn check_widths(widths: &[usize], inputs: Inputs, data: &Dataset) -> Result<()> {
    let found = inputs.widths(data);
    if found != widths {
        return Err(Error::InvalidArgument(format!(
            "the model was trained on modality widths {widths:?}, the data has {found:?}"
        )));
    }
    Ok(())
}

/// The layout of a residual tokenizer's SIDs: `levels` positions of
/// `k ≥ 2` codes each, no behavior positions.
pub(crate) fn residual_layout(levels: usize, k: usize) -> Result<SidLayout> {
    if k < 2 {
        return Err(Error::InvalidArgument(format!(
            "codebook_size must be at least 2, got {k}"
        )));
    }
    SidLayout::new(levels as u32, k as u32, 0)
}

/// One item per `levels`-token row of `codes`, keyed in row order (no
/// behavior positions, so no routing weights).
pub(crate) fn residual_items(codes: &[u32], levels: usize, keys: &[String]) -> Vec<NewItem> {
    codes
        .chunks_exact(levels)
        .zip(keys)
        .map(|(sid, key)| NewItem {
            key: key.clone(),
            tokens: sid.iter().map(|&c| c as Token).collect(),
            weights: Vec::new(),
        })
        .collect()
}
