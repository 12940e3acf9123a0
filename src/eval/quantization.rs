//! Reconstruction error, measured the same way for every tokenizer: each
//! modality's reconstruction and input are L2-normalised, and the error is
//! the mean squared distance between them (`2 − 2·cos`, in `[0, 4]`).

use serde::Serialize;

use crate::data::embeddings::{Dataset, Table};
use crate::error::{Error, Result};
use crate::tokenizer::Reconstruction;

/// Reconstruction error of a tokenizer's SIDs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReconError {
    /// Mean over content modalities (every tokenizer reconstructs these).
    pub content: f64,
    /// Per content modality, in data order.
    pub per_content: Vec<f64>,
    /// The behavior embedding, when the tokenizer reconstructs it.
    pub behavior: Option<f64>,
}

fn unit(row: &[f32]) -> impl Iterator<Item = f64> + '_ {
    let n = row
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt();
    let f = if n > 0.0 { 1.0 / n } else { 0.0 };
    row.iter().map(move |&x| x as f64 * f)
}

/// Mean over rows of `‖x̂/‖x̂‖ − x/‖x‖‖²`.
pub fn normalized_mse(input: &Table, recon: &Table) -> Result<f64> {
    if input.rows != recon.rows || input.dim != recon.dim {
        return Err(Error::InvalidArgument(format!(
            "reconstruction of {} is {}×{}, the input {}×{}",
            input.source, recon.rows, recon.dim, input.rows, input.dim
        )));
    }
    let total: f64 = (0..input.rows)
        .map(|i| {
            unit(input.row(i))
                .zip(unit(recon.row(i)))
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
        })
        .sum();
    Ok(total / input.rows.max(1) as f64)
}

/// Errors of `recon` against `data`'s tables.
pub fn recon_error(data: &Dataset, recon: &Reconstruction) -> Result<ReconError> {
    let per_content = data
        .content
        .iter()
        .zip(&recon.content)
        .map(|(x, r)| normalized_mse(x, r))
        .collect::<Result<Vec<_>>>()?;
    let behavior = recon
        .behavior
        .as_ref()
        .map(|r| normalized_mse(&data.behavior, r))
        .transpose()?;
    Ok(ReconError {
        content: per_content.iter().sum::<f64>() / per_content.len().max(1) as f64,
        per_content,
        behavior,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(data: Vec<f32>, dim: usize) -> Table {
        Table {
            source: "t".into(),
            rows: data.len() / dim,
            dim,
            data,
        }
    }

    #[test]
    fn scale_free_and_hand_computed() {
        let x = table(vec![1.0, 0.0, 0.0, 2.0], 2);
        // Same directions at other lengths: no error.
        assert!(normalized_mse(&x, &table(vec![3.0, 0.0, 0.0, 0.5], 2)).unwrap() < 1e-12);
        // Orthogonal rows: ‖u − v‖² = 2 each; opposite: 4. Mean of 2 and 4 = 3.
        let e = normalized_mse(&x, &table(vec![0.0, 1.0, 0.0, -1.0], 2)).unwrap();
        assert!((e - 3.0).abs() < 1e-12);
        assert!(normalized_mse(&x, &table(vec![1.0, 0.0], 2)).is_err());
    }
}
