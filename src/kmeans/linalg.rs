//! The dense linear algebra OPQ needs: matrix products through `gemm`, and
//! the orthogonal polar factor (the Procrustes rotation) by Newton–Schulz
//! iteration, which needs nothing but products.

use gemm::{Parallelism, gemm};

/// An `rows × cols` row-major matrix, or the transpose of one stored as
/// `cols × rows`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl<'a, T> View<'a, T> {
    /// `data` as an `rows × cols` row-major matrix.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "a {rows}×{cols} matrix");
        View {
            data,
            rows,
            cols,
            transposed: false,
        }
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        View {
            rows: self.cols,
            cols: self.rows,
            transposed: !self.transposed,
            ..self
        }
    }

    /// (column stride, row stride) of the matrix as viewed.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (self.rows as isize, 1)
        } else {
            (1, self.cols as isize)
        }
    }
}

/// `a · b` as a new row-major matrix, on the current rayon pool.
pub fn matmul<T: Copy + Default + 'static>(a: View<'_, T>, b: View<'_, T>, one: T) -> Vec<T> {
    matmul_on(a, b, one, rayon::current_num_threads())
}

/// `a · b` on the calling thread alone: for products too small to share
/// (one request's forward pass, where a server runs requests side by side).
pub fn matmul_serial<T: Copy + Default + 'static>(
    a: View<'_, T>,
    b: View<'_, T>,
    one: T,
) -> Vec<T> {
    matmul_on(a, b, one, 1)
}

fn matmul_on<T: Copy + Default + 'static>(
    a: View<'_, T>,
    b: View<'_, T>,
    one: T,
    threads: usize,
) -> Vec<T> {
    assert_eq!(a.cols, b.rows, "inner dimensions");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut out = vec![T::default(); m * n];
    if m == 0 || n == 0 {
        return out;
    }
    let ((a_cs, a_rs), (b_cs, b_rs)) = (a.strides(), b.strides());
    // SAFETY: `out` is m×n row-major (column stride 1, row stride n); `a` and
    // `b` address exactly their slices with the strides their views give,
    // checked against the lengths in `View::new`; `read_dst` is false, so
    // `out`'s zeros are never read.
    unsafe {
        gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            T::default(),
            one,
            false,
            false,
            false,
            if threads > 1 {
                Parallelism::Rayon(threads)
            } else {
                Parallelism::None
            },
        );
    }
    out
}

/// The orthogonal factor `U Vᵀ` of `a = U Σ Vᵀ` (`d × d`, full rank): the
/// rotation `R` maximising `tr(Rᵀ a)`. Newton–Schulz: scaled so every
/// singular value is at most 1, `Z ← 1.5 Z − 0.5 Z Zᵀ Z` drives them all to
/// 1. `None` when it has not converged (`‖ZᵀZ − I‖ < 1e-9` entrywise)
/// within 200 rounds, as for a singular `a`.
pub fn polar(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let norm = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    if !(norm > 0.0 && norm.is_finite()) {
        return None;
    }
    let mut z: Vec<f64> = a.iter().map(|x| x / norm).collect();
    for _ in 0..200 {
        let ztz = matmul(View::new(&z, d, d).t(), View::new(&z, d, d), 1.0);
        let off = (0..d * d)
            .map(|i| (ztz[i] - if i % (d + 1) == 0 { 1.0 } else { 0.0 }).abs())
            .fold(0.0, f64::max);
        if off < 1e-9 {
            return Some(z);
        }
        let zz = matmul(View::new(&z, d, d), View::new(&ztz, d, d), 1.0);
        z.iter_mut()
            .zip(&zz)
            .for_each(|(x, y)| *x = 1.5 * *x - 0.5 * y);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_with_and_without_transposes() {
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3
        let b = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3×2
        let ab = matmul(View::new(&a, 2, 3), View::new(&b, 3, 2), 1.0);
        assert_eq!(ab, vec![4.0, 5.0, 10.0, 11.0]);
        let ata = matmul(View::new(&a, 2, 3).t(), View::new(&a, 2, 3), 1.0);
        assert_eq!(
            ata,
            vec![17.0, 22.0, 27.0, 22.0, 29.0, 36.0, 27.0, 36.0, 45.0]
        );
    }

    #[test]
    fn polar_factor_of_a_scaled_rotation_and_of_a_general_matrix() {
        // 2 · rotation by 30°: its polar factor is the rotation.
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let r = polar(&[2.0 * c, -2.0 * s, 2.0 * s, 2.0 * c], 2).unwrap();
        for (got, want) in r.iter().zip([c, -s, s, c]) {
            assert!((got - want).abs() < 1e-9, "{r:?}");
        }
        // A general full-rank matrix: the factor is orthogonal and beats
        // the identity on tr(Rᵀ a).
        let a = [3.0, 1.0, 0.5, -1.0, 2.0, 0.0, 0.2, 0.3, 1.0];
        let r = polar(&a, 3).unwrap();
        let rtr = matmul(View::new(&r, 3, 3).t(), View::new(&r, 3, 3), 1.0);
        for (i, v) in rtr.iter().enumerate() {
            let want = if i % 4 == 0 { 1.0 } else { 0.0 };
            assert!((v - want).abs() < 1e-8, "{rtr:?}");
        }
        let trace = |m: &[f64]| {
            (0..3)
                .map(|i| (0..3).map(|j| m[j * 3 + i] * a[j * 3 + i]).sum::<f64>())
                .sum::<f64>()
        };
        assert!(trace(&r) >= a[0] + a[4] + a[8] - 1e-9);
        assert!(polar(&[0.0; 4], 2).is_none());
    }
}
