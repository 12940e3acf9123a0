//! Clustering: spherical k-means (codebook initialisation for the neural
//! tokenizers), Euclidean k-means (residual quantisation, RQ-Kmeans) and
//! product quantisation with a learned rotation (OPQ).
//!
//! Both assign points with one matrix product per block of rows; the
//! Euclidean variant calls the `gemm` kernel directly so it controls
//! blocking and threads (FAISS-style: `‖x‖² − 2x·c + ‖c‖²`).

mod euclidean;
mod linalg;
mod product;
mod residual;
mod seeding;
mod spherical;

pub(crate) use euclidean::gather;
pub use euclidean::{EuclideanParams, nearest, train_euclidean};
pub(crate) use linalg::{View, matmul_serial};
pub use product::{OpqParams, ProductQuantizer};
pub use residual::{ENCODE_ROWS, ResidualQuantizer};
pub use spherical::{Clustering, dot, normalize_rows, spherical_kmeans};
