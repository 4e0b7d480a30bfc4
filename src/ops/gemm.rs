//! Safe, bounds-checked GEMM: f32 through the `gemm` crate (the same kernels candle's CPU matmul
//! uses), and bf16 operands with f32 accumulation, the weights laid out once at load:
//! - on Intel AMX (Sapphire Rapids and later) through our tile kernel (`ops::amx`), which writes
//!   f32 sums: 2-3x the f32 GEMM's speed here;
//! - elsewhere through `gemmkit`, which runs `vdpbf16ps` where the CPU has AVX-512 BF16 and widens
//!   to f32 FMA otherwise. Neither beats the f32 GEMM (measured in docs/PERF.md), so `auto` only
//!   picks bf16 with AMX; this path keeps the same rounding of the operands, so the quality tests
//!   run on any CPU.

use candle_core::{bail, Result};
use gemm::Parallelism;
use half::bf16;

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

    pub(crate) fn fits(&self, len: usize) -> bool {
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

/// A weight matrix (`rows x cols`, row-major) rounded to bf16 and packed once, for AMX where the
/// CPU has it, for gemmkit elsewhere.
pub struct Bf16Weights {
    packed: Bf16Packed,
    rows: usize,
    cols: usize,
}

enum Bf16Packed {
    Amx(super::amx::PackedA),
    Gemmkit(gemmkit::PackedLhs<bf16>),
}

impl std::fmt::Debug for Bf16Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bf16Weights({}x{})", self.rows, self.cols)
    }
}

impl Bf16Weights {
    pub fn new(w: &[f32], rows: usize, cols: usize) -> Result<Self> {
        if w.len() != rows * cols {
            bail!(
                "bf16 weights: {} values for a {rows}x{cols} matrix",
                w.len()
            )
        }
        let amx = super::amx::available()
            .then(|| super::amx::PackedA::new(w, rows, cols))
            .flatten();
        let packed = match amx {
            Some(a) => Bf16Packed::Amx(a),
            None => {
                let b: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
                Bf16Packed::Gemmkit(gemmkit::prepack_lhs(gemmkit::MatRef::from_row_major(
                    &b, rows, cols,
                )))
            }
        };
        Ok(Self { packed, rows, cols })
    }
}

/// Scratch for the bf16 product: the right-hand side and the product rounded to bf16.
#[derive(Debug, Default)]
pub struct Bf16Scratch {
    rhs: Vec<bf16>,
    out: Vec<bf16>,
}

/// The left-hand side of a product: f32 values, or bf16 weights packed at load.
#[derive(Clone, Copy)]
pub enum Lhs<'a> {
    F32(&'a Mat<'a>),
    Bf16(&'a Bf16Weights),
}

/// `dst (+)= lhs @ rhs` in the precision of `lhs`. For bf16 the right-hand side is rounded to bf16
/// and the product accumulated in f32; with AMX the f32 sums are added to (or stored in) `dst`,
/// with gemmkit they are first rounded to bf16 (its output type).
pub fn matmul_any(
    dst: &mut [f32],
    dst_row_stride: usize,
    lhs: Lhs,
    rhs: &Mat,
    accumulate: bool,
    scratch: &mut Bf16Scratch,
) -> Result<()> {
    let w = match lhs {
        Lhs::F32(m) => return matmul(dst, dst_row_stride, m, rhs, accumulate),
        Lhs::Bf16(w) => w,
    };
    let (m, k, n) = (w.rows, w.cols, rhs.cols);
    if rhs.rows != k {
        bail!(
            "matmul: inner dimensions differ ({m}x{k} @ {}x{n})",
            rhs.rows
        );
    }
    let dst_fits = m == 0 || n == 0 || (m - 1) * dst_row_stride + n <= dst.len();
    if !rhs.fits(rhs.data.len()) || !dst_fits {
        bail!("matmul: a {m}x{k} @ {k}x{n} product does not fit its buffers");
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let threads = rayon::current_num_threads();
    let packed = match &w.packed {
        Bf16Packed::Amx(a) => {
            if !super::amx::gemm(
                dst,
                dst_row_stride,
                a,
                rhs.data,
                rhs.row_stride,
                n,
                accumulate,
                threads,
            ) {
                bail!("matmul: the AMX kernel refused a {m}x{k} @ {k}x{n} product");
            }
            return Ok(());
        }
        Bf16Packed::Gemmkit(p) => p,
    };
    scratch.rhs.resize(k * n, bf16::ZERO);
    scratch.out.resize(m * n, bf16::ZERO);
    {
        use rayon::prelude::*;
        scratch
            .rhs
            .par_chunks_mut(n)
            .enumerate()
            .for_each(|(r, row)| {
                let src = &rhs.data[r * rhs.row_stride..][..n];
                for (o, &v) in row.iter_mut().zip(src) {
                    *o = bf16::from_f32(v);
                }
            });
    }
    gemmkit::gemm_packed_a(
        bf16::ONE,
        packed,
        gemmkit::MatRef::from_row_major(&scratch.rhs, k, n),
        bf16::ZERO,
        gemmkit::MatMut::from_row_major(&mut scratch.out, m, n),
        if threads > 1 && m * n * k >= 1 << 16 {
            gemmkit::Parallelism::Rayon(threads)
        } else {
            gemmkit::Parallelism::Serial
        },
    );
    for (r, row) in scratch.out.chunks(n).enumerate() {
        let d = &mut dst[r * dst_row_stride..][..n];
        if accumulate {
            for (o, &v) in d.iter_mut().zip(row) {
                *o += v.to_f32();
            }
        } else {
            for (o, &v) in d.iter_mut().zip(row) {
                *o = v.to_f32();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_product_is_the_product_of_rounded_operands() {
        let (m, k, n) = (7, 33, 19);
        let lhs: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let rhs: Vec<f32> = (0..k * (n + 2))
            .map(|i| (i as f32 * 0.11).cos() * 3.0)
            .collect();
        let w = Bf16Weights::new(&lhs, m, k).unwrap();
        let mut dst = vec![1.0f32; m * n];
        let mut scratch = Bf16Scratch::default();
        let r = Mat::new(&rhs, k, n, n + 2);
        matmul_any(&mut dst, n, Lhs::Bf16(&w), &r, true, &mut scratch).unwrap();
        let round = |v: f32| bf16::from_f32(v).to_f32();
        for i in 0..m {
            for j in 0..n {
                let exact: f32 = (0..k)
                    .map(|p| round(lhs[i * k + p]) * round(rhs[p * (n + 2) + j]))
                    .sum();
                // Only the final rounding to bf16 (8 significant bits) remains.
                let got = dst[i * n + j] - 1.0;
                assert!(
                    (got - exact).abs() <= exact.abs() / 256.0 + 1e-4,
                    "{got} vs {exact}"
                );
            }
        }
    }

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
