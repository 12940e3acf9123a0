//! Clustering: spherical k-means (codebook initialisation for the neural
//! tokenizers) and Euclidean k-means (residual quantisation, RQ-Kmeans).
//!
//! Both assign points with one matrix product per block of rows; the
//! Euclidean variant calls the `gemm` kernel directly so it controls
//! blocking and threads (FAISS-style: `‖x‖² − 2x·c + ‖c‖²`).

mod euclidean;
mod residual;
mod seeding;
mod spherical;

pub use euclidean::{EuclideanParams, nearest, train_euclidean};
pub use residual::ResidualQuantizer;
pub use spherical::{Clustering, dot, normalize_rows, spherical_kmeans};
