//! Dense f32 matrices (codebooks), hand-rolled: `rows u32 | cols u32 | f32 LE…`.
//! Tighter and faster than bincode for large float arrays.

use super::frame::{self, Kind};
use crate::error::{Error, Result};

/// A row-major f32 matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Number of rows (codes).
    pub rows: u32,
    /// Number of columns (dimension).
    pub cols: u32,
    /// `rows * cols` values, row-major.
    pub data: Vec<f32>,
}

impl Matrix {
    /// Builds a matrix, checking that `data` has `rows * cols` values.
    pub fn new(rows: u32, cols: u32, data: Vec<f32>) -> Result<Self> {
        if (rows as u64) * (cols as u64) != data.len() as u64 {
            return Err(Error::InvalidArgument(format!(
                "matrix {rows}x{cols} needs {} values, got {}",
                rows as u64 * cols as u64,
                data.len()
            )));
        }
        Ok(Matrix { rows, cols, data })
    }

    /// Row `r` as a slice.
    pub fn row(&self, r: usize) -> &[f32] {
        let c = self.cols as usize;
        &self.data[r * c..(r + 1) * c]
    }

    /// Frames the matrix.
    pub fn encode(&self) -> Vec<u8> {
        let mut payload = Vec::with_capacity(8 + self.data.len() * 4);
        payload.extend_from_slice(&self.rows.to_le_bytes());
        payload.extend_from_slice(&self.cols.to_le_bytes());
        for v in &self.data {
            payload.extend_from_slice(&v.to_le_bytes());
        }
        frame::encode(Kind::Matrix, &payload)
    }

    /// Decodes a framed matrix; the size must match the payload exactly.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let payload = frame::decode(Kind::Matrix, bytes)?;
        if payload.len() < 8 {
            return Err(Error::corruption(
                "matrix",
                "payload shorter than its header",
            ));
        }
        let rows = u32::from_le_bytes(payload[0..4].try_into().expect("4 bytes"));
        let cols = u32::from_le_bytes(payload[4..8].try_into().expect("4 bytes"));
        let body = &payload[8..];
        let expected = (rows as u64)
            .checked_mul(cols as u64)
            .and_then(|n| n.checked_mul(4));
        if expected != Some(body.len() as u64) {
            return Err(Error::corruption(
                "matrix",
                format!("{rows}x{cols} f32 values do not fit {} bytes", body.len()),
            ));
        }
        let data = body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Matrix { rows, cols, data })
    }
}
