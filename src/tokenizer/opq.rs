//! OPQ (RPG's tokenizer, and a baseline of the paper): product quantisation
//! of the concatenated, normalised modalities after a learned rotation. An
//! item's SID is `M` codes, one per sub-space; they carry no order of
//! importance, which suits a retriever that predicts every position at
//! once (long SIDs, 16–64 codes).

use std::path::Path;
use std::time::Instant;

use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Reconstruction;
use super::inputs::{Inputs, concatenated, model_inputs, residual_items, residual_layout, split};
use super::stored;
use crate::blobs::BlobSource;
use crate::codec::Matrix;
use crate::data::embeddings::{DataSpec, Dataset};
use crate::error::{Error, Result};
use crate::item::NewItem;
use crate::kmeans::{EuclideanParams, OpqParams, ProductQuantizer, gather};
use crate::sid::SidLayout;

/// Blob names of a stored OPQ model.
pub mod blobs {
    /// Its configuration (TOML).
    pub const CONFIG: &str = "opq/config";
    /// The widths of the modalities it reads.
    pub const WIDTHS: &str = "opq/widths";
    /// The `d × d` rotation (matrix frame).
    pub const ROTATION: &str = "opq/rotation";
    /// Prefix of each sub-space's codebook (matrix frame), then its index.
    pub const CODEBOOK: &str = "opq/codebook/";
}

/// Settings of OPQ (TOML, every field optional).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpqConfig {
    /// Sub-spaces M: the SID length. The input width must be a multiple.
    pub subspaces: usize,
    /// Codes per sub-space (K).
    pub codebook_size: usize,
    /// Alternations of sub-space k-means and rotation update (0: plain PQ).
    pub rotations: usize,
    /// Lloyd rounds per sub-space within each alternation.
    pub rotation_iterations: usize,
    /// Lloyd rounds of the final codebooks.
    pub iterations: usize,
    /// Training rows at most `codebook_size × this` (a sample above that).
    pub max_points_per_centroid: usize,
    /// Modalities quantised.
    pub inputs: Inputs,
    /// Seed of the rotation, sampling and seeding.
    pub seed: u64,
    /// Files of the data folder.
    pub data: DataSpec,
}

impl Default for OpqConfig {
    fn default() -> Self {
        OpqConfig {
            subspaces: 32,
            codebook_size: 256,
            rotations: 8,
            rotation_iterations: 4,
            iterations: 20,
            max_points_per_centroid: 256,
            inputs: Inputs::Content,
            seed: 42,
            data: DataSpec::default(),
        }
    }
}

impl OpqConfig {
    /// Reads a TOML file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self> {
        crate::settings::read(path, Self::validate)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        residual_layout(self.subspaces, self.codebook_size)?;
        if self.iterations == 0
            || self.rotation_iterations == 0
            || self.max_points_per_centroid == 0
        {
            return Err(Error::InvalidArgument(
                "iterations, rotation_iterations and max_points_per_centroid must be positive"
                    .into(),
            ));
        }
        Ok(())
    }

    fn params(&self) -> OpqParams {
        let kmeans = |iterations| EuclideanParams {
            k: self.codebook_size,
            iterations,
            max_points_per_centroid: self.max_points_per_centroid,
            ..Default::default()
        };
        OpqParams {
            m: self.subspaces,
            rotations: self.rotations,
            inner: kmeans(self.rotation_iterations),
            last: kmeans(self.iterations),
        }
    }
}

/// A trained OPQ tokenizer.
pub struct Opq {
    cfg: OpqConfig,
    widths: Vec<usize>,
    pq: ProductQuantizer,
}

impl Opq {
    /// Its name in the `tokenizer` blob and on the command line.
    pub const NAME: &'static str = "opq";

    /// Trains on `data` (a sample of at most `K × max_points_per_centroid`
    /// rows); `progress` sees the wall time when done.
    pub fn train(cfg: OpqConfig, data: &Dataset, progress: impl FnOnce(f64)) -> Result<Opq> {
        cfg.validate()?;
        let start = Instant::now();
        let (points, d) = concatenated(data, cfg.inputs);
        let n = points.len() / d.max(1);
        if n < cfg.codebook_size {
            return Err(Error::InvalidArgument(format!(
                "OPQ with K = {} needs at least as many items, got {n}",
                cfg.codebook_size
            )));
        }
        if !d.is_multiple_of(cfg.subspaces) {
            return Err(Error::InvalidArgument(format!(
                "the input width {d} is not a multiple of subspaces = {}",
                cfg.subspaces
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let cap = cfg
            .codebook_size
            .saturating_mul(cfg.max_points_per_centroid);
        let owned;
        let train: &[f32] = if n > cap {
            let mut rows = sample(&mut rng, n, cap).into_vec();
            rows.sort_unstable();
            owned = gather(&points, d, rows.into_iter());
            &owned
        } else {
            &points
        };
        let pq = ProductQuantizer::train(train, d, &cfg.params(), &mut rng);
        progress(start.elapsed().as_secs_f64());
        Ok(Opq {
            widths: cfg.inputs.widths(data),
            cfg,
            pq,
        })
    }

    /// The configuration trained with.
    pub fn config(&self) -> &OpqConfig {
        &self.cfg
    }

    /// The SID layout: `M` positions, no behavior.
    pub fn layout(&self) -> SidLayout {
        residual_layout(self.cfg.subspaces, self.cfg.codebook_size).expect("validated config")
    }

    fn inputs(&self, data: &Dataset) -> Result<Vec<f32>> {
        Ok(model_inputs(&self.widths, self.cfg.inputs, data)?.0)
    }

    /// The SID of every item of `data`, in row order.
    pub fn encode(&self, data: &Dataset) -> Result<Vec<NewItem>> {
        let codes = self.pq.encode(&self.inputs(data)?);
        Ok(residual_items(&codes, self.cfg.subspaces, &data.keys))
    }

    /// Each item's codes decoded and rotated back, split into modalities.
    pub fn reconstruct(&self, data: &Dataset) -> Result<Reconstruction> {
        let codes = self.pq.encode(&self.inputs(data)?);
        let tables = split(&self.pq.decode(&codes), &self.widths);
        Ok(Reconstruction::from_tables(tables, data.content.len()))
    }

    /// Its configuration, input widths, rotation and each sub-space's
    /// centroids, as the blobs a database needs to encode new items later.
    pub fn to_blobs(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let names = [blobs::CONFIG, blobs::WIDTHS];
        let mut out = stored::residual_header(Self::NAME, names, &self.cfg, &self.widths);
        let d = self.pq.d as u32;
        let rotation = Matrix::new(d, d, self.pq.rotation.clone())?;
        out.push((blobs::ROTATION.to_string(), rotation.encode()));
        let w = (self.pq.d / self.pq.m) as u32;
        for (s, cb) in self.pq.codebooks.iter().enumerate() {
            let m = Matrix::new(self.pq.k as u32, w, cb.clone())?;
            out.push((format!("{}{s}", blobs::CODEBOOK), m.encode()));
        }
        Ok(out)
    }

    /// Loads the model stored in `db`.
    pub fn from_blobs(db: &(impl BlobSource + ?Sized)) -> Result<Opq> {
        let (cfg, widths): (OpqConfig, Vec<usize>) =
            stored::config_and_widths(db, (blobs::CONFIG, OpqConfig::validate), blobs::WIDTHS)?;
        let d: usize = widths.iter().sum();
        if !d.is_multiple_of(cfg.subspaces) {
            return Err(Error::corruption(
                blobs::WIDTHS,
                format!(
                    "width {d} is not a multiple of {} sub-spaces",
                    cfg.subspaces
                ),
            ));
        }
        let w = d / cfg.subspaces;
        let rotation = stored::required_matrix(db, blobs::ROTATION, d, d)?.data;
        let codebooks = (0..cfg.subspaces)
            .map(|s| {
                let name = format!("{}{s}", blobs::CODEBOOK);
                Ok(stored::required_matrix(db, &name, cfg.codebook_size, w)?.data)
            })
            .collect::<Result<_>>()?;
        Ok(Opq {
            pq: ProductQuantizer {
                d,
                m: cfg.subspaces,
                k: cfg.codebook_size,
                rotation,
                codebooks,
            },
            widths,
            cfg,
        })
    }
}
