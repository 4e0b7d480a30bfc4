//! A safe, bounds-checked wrapper over the `gemm` crate (the same kernels candle's CPU matmul uses).

use candle_core::{bail, Result};
use gemm::Parallelism;

/// A row-major matrix view: `rows x cols`, element `(r, c)` at `data[r * row_stride + c]`.
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
}

impl<'a> Mat<'a> {
    pub fn new(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride,
        }
    }

    fn fits(&self, len: usize) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.row_stride + self.cols <= len
    }
}

/// `dst = lhs @ rhs` (or `dst += lhs @ rhs` with `accumulate`), where `dst` is `lhs.rows x rhs.cols`
/// stored row-major with `dst_row_stride`.
pub fn matmul(
    dst: &mut [f32],
    dst_row_stride: usize,
    lhs: &Mat,
    rhs: &Mat,
    accumulate: bool,
) -> Result<()> {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    if rhs.rows != k {
        bail!(
            "matmul: inner dimensions differ ({m}x{k} @ {}x{n})",
            rhs.rows
        );
    }
    let dst_fits = m == 0 || n == 0 || (m - 1) * dst_row_stride + n <= dst.len();
    if !lhs.fits(lhs.data.len()) || !rhs.fits(rhs.data.len()) || !dst_fits {
        bail!("matmul: a {m}x{k} @ {k}x{n} product does not fit its buffers");
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * dst_row_stride..r * dst_row_stride + n].fill(0.0);
            }
        }
        return Ok(());
    }
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 && m * n * k >= 1 << 16 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: every index the kernel touches, (r * stride + c) for r < rows and c < cols, was
    // checked above to lie inside its slice; `dst` is borrowed mutably and does not alias the inputs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            1,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            1,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_product_with_strides_and_accumulation() {
        let (m, k, n) = (5, 7, 9);
        let lhs: Vec<f32> = (0..m * (k + 2)).map(|i| (i as f32 * 0.37).sin()).collect();
        let rhs: Vec<f32> = (0..k * (n + 1)).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut dst = vec![1.0f32; m * (n + 3)];
        let l = Mat::new(&lhs, m, k, k + 2);
        let r = Mat::new(&rhs, k, n, n + 1);
        matmul(&mut dst, n + 3, &l, &r, true).unwrap();
        for i in 0..m {
            for j in 0..n {
                let want: f32 = 1.0
                    + (0..k)
                        .map(|p| lhs[i * (k + 2) + p] * rhs[p * (n + 1) + j])
                        .sum::<f32>();
                assert!((dst[i * (n + 3) + j] - want).abs() < 1e-5);
            }
            // Padding columns are untouched.
            assert_eq!(dst[i * (n + 3) + n], 1.0);
        }
    }

    #[test]
    fn rejects_buffers_that_are_too_small() {
        let a = vec![0.0f32; 6];
        let mut d = vec![0.0f32; 3];
        let l = Mat::new(&a, 2, 3, 3);
        let r = Mat::new(&a, 3, 2, 2);
        assert!(matmul(&mut d, 2, &l, &r, false).is_err());
    }
}
