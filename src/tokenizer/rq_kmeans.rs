//! RQ-Kmeans (OneRec, GRID): residual Euclidean k-means over the
//! concatenated, normalised modalities. No network: level `l`'s token is the
//! nearest of `K` centroids to what levels `0..l` left over.

use std::path::Path;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Reconstruction;
use super::inputs::{
    Inputs, check_widths, concatenated, concatenated_rows, residual_items, residual_layout, split,
};
use super::stored;
use crate::blobs::BlobSource;
use crate::codec::Matrix;
use crate::data::embeddings::{DataSpec, Dataset};
use crate::error::{Error, Result};
use crate::item::NewItem;
use crate::kmeans::ENCODE_ROWS;
use crate::kmeans::{EuclideanParams, ResidualQuantizer};
use crate::sid::SidLayout;

/// Blob names of a stored RQ-Kmeans model.
pub mod blobs {
    /// Its configuration (TOML).
    pub const CONFIG: &str = "rq-kmeans/config";
    /// The widths of the modalities it reads.
    pub const WIDTHS: &str = "rq-kmeans/widths";
    /// Prefix of each level's codebook (matrix frame), followed by the level.
    pub const CODEBOOK: &str = "rq-kmeans/codebook/";
}

/// Settings of RQ-Kmeans (TOML, every field optional).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RqKmeansConfig {
    /// SID levels.
    pub levels: usize,
    /// Centroids per level (K).
    pub codebook_size: usize,
    /// Lloyd rounds per level.
    pub iterations: usize,
    /// Training sample cap per centroid (FAISS's default).
    pub max_points_per_centroid: usize,
    /// Modalities quantised.
    pub inputs: Inputs,
    /// Seed of sampling and seeding.
    pub seed: u64,
    /// Files of the data folder.
    pub data: DataSpec,
}

impl Default for RqKmeansConfig {
    fn default() -> Self {
        RqKmeansConfig {
            levels: 3,
            codebook_size: 256,
            iterations: 20,
            max_points_per_centroid: 256,
            inputs: Inputs::All,
            seed: 42,
            data: DataSpec::default(),
        }
    }
}

impl RqKmeansConfig {
    /// Reads a TOML file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self> {
        crate::settings::read(path, Self::validate)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        residual_layout(self.levels, self.codebook_size)?;
        if self.iterations == 0 || self.max_points_per_centroid == 0 {
            return Err(Error::InvalidArgument(
                "iterations and max_points_per_centroid must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// A trained RQ-Kmeans tokenizer.
pub struct RqKmeans {
    cfg: RqKmeansConfig,
    widths: Vec<usize>,
    quantizer: ResidualQuantizer,
}

impl RqKmeans {
    /// Its name in the `tokenizer` blob and on the command line.
    pub const NAME: &'static str = "rq-kmeans";

    /// Trains on `data`; `progress` sees each level's mean squared residual.
    pub fn train(
        cfg: RqKmeansConfig,
        data: &Dataset,
        mut progress: impl FnMut(usize, f64, f64),
    ) -> Result<RqKmeans> {
        cfg.validate()?;
        if data.is_empty() {
            return Err(Error::InvalidArgument(
                "training needs at least 1 item".into(),
            ));
        }
        let (points, d) = concatenated(data, cfg.inputs);
        let params = EuclideanParams {
            k: cfg.codebook_size,
            iterations: cfg.iterations,
            max_points_per_centroid: cfg.max_points_per_centroid,
            ..Default::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let start = Instant::now();
        let quantizer =
            ResidualQuantizer::train(&points, d, cfg.levels, &params, &mut rng, |l, mse| {
                progress(l, mse, start.elapsed().as_secs_f64())
            });
        Ok(RqKmeans {
            widths: cfg.inputs.widths(data),
            cfg,
            quantizer,
        })
    }

    /// The configuration trained with.
    pub fn config(&self) -> &RqKmeansConfig {
        &self.cfg
    }

    /// The SID layout (no behavior positions: every token is semantic).
    pub fn layout(&self) -> SidLayout {
        residual_layout(self.cfg.levels, self.cfg.codebook_size).expect("validated config")
    }

    /// Every item's codes (`n × levels`), the concatenated view built one
    /// batch of rows at a time, so only one batch of it is held.
    fn codes(&self, data: &Dataset) -> Result<Vec<u32>> {
        check_widths(&self.widths, self.cfg.inputs, data)?;
        let mut codes = Vec::with_capacity(data.len() * self.cfg.levels);
        for start in (0..data.len()).step_by(ENCODE_ROWS) {
            let rows = start..(start + ENCODE_ROWS).min(data.len());
            let (batch, _) = concatenated_rows(data, self.cfg.inputs, rows);
            codes.extend(self.quantizer.encode(&batch).0);
        }
        Ok(codes)
    }

    /// The SID of every item of `data`, in row order.
    pub fn encode(&self, data: &Dataset) -> Result<Vec<NewItem>> {
        let codes = self.codes(data)?;
        Ok(residual_items(&codes, self.cfg.levels, &data.keys))
    }

    /// The sum of each item's centroids, split back into modalities.
    pub fn reconstruct(&self, data: &Dataset) -> Result<Reconstruction> {
        let codes = self.codes(data)?;
        let tables = split(&self.quantizer.decode(&codes), &self.widths);
        Ok(Reconstruction::from_tables(tables, data.content.len()))
    }

    /// Its configuration, input widths and each level's centroids, as the
    /// blobs a database needs to encode new items later.
    pub fn to_blobs(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let names = [blobs::CONFIG, blobs::WIDTHS];
        let mut out = stored::residual_header(Self::NAME, names, &self.cfg, &self.widths);
        for (l, cb) in self.quantizer.codebooks.iter().enumerate() {
            let m = Matrix::new(self.quantizer.k as u32, self.quantizer.d as u32, cb.clone())?;
            out.push((format!("{}{l}", blobs::CODEBOOK), m.encode()));
        }
        Ok(out)
    }

    /// Loads the model stored in `db`.
    pub fn from_blobs(db: &(impl BlobSource + ?Sized)) -> Result<RqKmeans> {
        let (cfg, widths): (RqKmeansConfig, Vec<usize>) = stored::config_and_widths(
            db,
            (blobs::CONFIG, RqKmeansConfig::validate),
            blobs::WIDTHS,
        )?;
        let d: usize = widths.iter().sum();
        let codebooks = (0..cfg.levels)
            .map(|l| {
                let name = format!("{}{l}", blobs::CODEBOOK);
                Ok(stored::required_matrix(db, &name, cfg.codebook_size, d)?.data)
            })
            .collect::<Result<_>>()?;
        Ok(RqKmeans {
            quantizer: ResidualQuantizer {
                d,
                k: cfg.codebook_size,
                codebooks,
            },
            widths,
            cfg,
        })
    }
}
