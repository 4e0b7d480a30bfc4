//! bf16 GEMM on Intel AMX tiles (`tdpbf16ps`): `dst (+)= A @ B`, A a weight matrix rounded to
//! bf16 and laid out once, B an f32 matrix rounded to bf16 while it is packed (per call, per
//! thread), products accumulated in f32 and written in f32.
//!
//! Tiles: A 16 rows x 32 bf16 (row-major, rows and k zero-padded to 32), B 16 k-pairs x 16
//! columns (each u32 holds `B[2q, j]` low and `B[2q + 1, j]` high), C 16 x 16 f32. Each block of
//! 32 x 32 outputs keeps four C tiles (tmm0-3) and loads two A tiles (tmm4-5) and two B tiles
//! (tmm6-7) per 32 k.

use half::bf16;
use std::sync::OnceLock;

/// Output rows and columns per block.
const BM: usize = 32;
const BN: usize = 32;
/// k per tile step.
const BK: usize = 32;

/// A weight matrix rounded to bf16 in the AMX layout.
pub struct PackedA {
    data: Vec<u16>,
    rows: usize,
    cols: usize,
    /// Row stride in bf16: `cols` rounded up to `BK`.
    kpad: usize,
}

impl PackedA {
    pub fn new(w: &[f32], rows: usize, cols: usize) -> Option<Self> {
        if w.len() != rows.checked_mul(cols)? {
            return None;
        }
        let kpad = cols.div_ceil(BK) * BK;
        let rpad = rows.div_ceil(BM) * BM;
        let mut data = vec![0u16; rpad * kpad];
        for r in 0..rows {
            for c in 0..cols {
                data[r * kpad + c] = bf16::from_f32(w[r * cols + c]).to_bits();
            }
        }
        Some(Self {
            data,
            rows,
            cols,
            kpad,
        })
    }
}

/// Whether this CPU and OS run [`gemm`]: AMX-TILE and AMX-BF16 (CPUID leaf 7), AVX-512, and the
/// kernel's permission to use the tile data (Linux `arch_prctl(ARCH_REQ_XCOMP_PERM)`).
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(detect)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    use std::arch::x86_64::__cpuid_count;
    if !(std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512bf16"))
    {
        return false;
    }
    let edx = __cpuid_count(7, 0).edx;
    let (amx_bf16, amx_tile) = (edx & (1 << 22) != 0, edx & (1 << 24) != 0);
    if !(amx_bf16 && amx_tile) {
        return false;
    }
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: arch_prctl only changes this process's permission to use the AMX state.
    unsafe {
        std::arch::asm!("syscall",
            inlateout("rax") 158i64 => ret, // SYS_arch_prctl
            in("rdi") ARCH_REQ_XCOMP_PERM, in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret == 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// `dst`'s base pointer, shared by the tasks of one product.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut f32);
// SAFETY: the tasks that share it write disjoint column ranges of `dst` (see `gemm`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

thread_local! {
    static PACK_B: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `dst[r * dst_stride + c] (+)= sum_k A[r, k] * B[k, c]` for `B[k, c]` = `b[k * b_stride + c]`,
/// `c < n`. Returns `false` (and does nothing) if the buffers do not fit or AMX is unavailable.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    dst: &mut [f32],
    dst_stride: usize,
    a: &PackedA,
    b: &[f32],
    b_stride: usize,
    n: usize,
    accumulate: bool,
    threads: usize,
) -> bool {
    let (m, k) = (a.rows, a.cols);
    if m == 0 || n == 0 {
        return true;
    }
    let b_fits = k == 0 || ((k - 1) * b_stride + n <= b.len() && n <= b_stride);
    let d_fits = (m - 1) * dst_stride + n <= dst.len() && n <= dst_stride;
    if !b_fits || !d_fits || !available() {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let strips = n.div_ceil(BN);
        let per_task = strips.div_ceil(threads.max(1) * 4).clamp(1, 16);
        let tasks = strips.div_ceil(per_task);
        let kq = a.kpad / 2; // k-pairs, a multiple of 16
        let ptr = SendPtr(dst.as_mut_ptr());
        let run = |t: usize| {
            let s0 = t * per_task;
            let s1 = (s0 + per_task).min(strips);
            let (n0, n1) = (s0 * BN, (s1 * BN).min(n));
            PACK_B.with(|cell| {
                let mut pack = cell.borrow_mut();
                let need = (s1 - s0) * kq * BN;
                if pack.len() < need {
                    pack.resize(need, 0);
                }
                // SAFETY: `available()` checked the CPU, the OS permission and AVX-512;
                // `b_fits` bounds every read of `b`, `d_fits` every write to `dst`, and this
                // task writes only columns n0..n1 of it.
                unsafe {
                    pack_b(&mut pack[..need], b, b_stride, k, kq, n0, n1);
                    blocks(ptr, dst_stride, a, &pack[..need], n0, n1, accumulate);
                }
            });
        };
        if threads > 1 && tasks > 1 && m * k * n >= 1 << 18 {
            use rayon::prelude::*;
            (0..tasks).into_par_iter().for_each(run);
        } else {
            (0..tasks).for_each(run);
        }
    }
    true
}

/// Packs columns `n0..n1` of B (`k` rows) into strips of `BN` columns x `kq` k-pairs, zero-padded.
///
/// Safety: the CPU has AVX-512 BF16; `b` holds `k` rows of `n1` columns at `b_stride`; `out` holds
/// `ceil((n1 - n0) / BN) * kq * BN` words.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pack_b(
    out: &mut [u32],
    b: &[f32],
    b_stride: usize,
    k: usize,
    kq: usize,
    n0: usize,
    n1: usize,
) {
    use std::arch::x86_64::*;
    let strips = (n1 - n0).div_ceil(BN);
    let to_u32 = |v: __m512| {
        _mm512_cvtepu16_epi32(std::mem::transmute::<__m256bh, __m256i>(
            _mm512_cvtneps_pbh(v),
        ))
    };
    for s in 0..strips {
        let c0 = n0 + s * BN;
        for q in 0..kq {
            let r0 = 2 * q;
            let dst = out.as_mut_ptr().add((s * kq + q) * BN);
            for v in 0..BN / 16 {
                let c = c0 + v * 16;
                let valid = n1.saturating_sub(c).min(16);
                let mask = lanes(valid);
                let load = |r: usize| {
                    if r < k && valid > 0 {
                        _mm512_maskz_loadu_ps(mask, b.as_ptr().add(r * b_stride + c))
                    } else {
                        _mm512_setzero_ps()
                    }
                };
                let pair = _mm512_or_si512(
                    to_u32(load(r0)),
                    _mm512_slli_epi32(to_u32(load(r0 + 1)), 16),
                );
                _mm512_storeu_si512(dst.add(v * 16) as *mut _, pair);
            }
        }
    }
}

/// The mask of the first `valid` of 16 lanes (all 16 from 16 on).
#[cfg(target_arch = "x86_64")]
pub(crate) fn lanes(valid: usize) -> u16 {
    if valid >= 16 {
        0xffff
    } else {
        ((1u32 << valid) - 1) as u16
    }
}

#[repr(C, align(64))]
struct TileConfig([u8; 64]);

/// Configures all eight tiles of this thread as 16 rows x 64 bytes (palette 1); pair it with
/// `tilerelease`.
///
/// Safety: [`available()`] is true.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn configure_tiles() {
    let mut cfg = TileConfig([0; 64]);
    cfg.0[0] = 1; // palette 1
    for t in 0..8 {
        cfg.0[16 + 2 * t] = 64; // bytes per row
        cfg.0[48 + t] = 16; // rows
    }
    std::arch::asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
}

/// `dst (+)= A @ B` for columns `n0..n1`, B packed by [`pack_b`] for those columns.
///
/// Safety: [`available()`] is true on this thread's CPU and process; `dst` holds `a.rows` rows of
/// at least `n1` columns at `dst_stride`, and no other thread writes those columns meanwhile.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn blocks(
    dst: SendPtr,
    dst_stride: usize,
    a: &PackedA,
    pack: &[u32],
    n0: usize,
    n1: usize,
    accumulate: bool,
) {
    use std::arch::asm;
    use std::arch::x86_64::*;
    configure_tiles();
    let kq = a.kpad / 2;
    let a_stride = a.kpad * 2; // bytes
    let b_stride = BN * 4; // bytes
    let c_stride = BN * 4;
    let mut out = [0f32; BM * BN];
    let strips = (n1 - n0).div_ceil(BN);
    let m = a.rows;
    for s in 0..strips {
        let c0 = n0 + s * BN;
        let bp = pack.as_ptr().add(s * kq * BN);
        let masks: [u16; 2] = std::array::from_fn(|v| lanes(n1.saturating_sub(c0 + v * 16)));
        for m0 in (0..m).step_by(BM) {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
            let ap = a.data.as_ptr().add(m0 * a.kpad);
            for kb in 0..a.kpad / BK {
                let a0 = ap.add(kb * BK);
                let a1 = a0.add(16 * a.kpad);
                let b0 = bp.add(kb * 16 * BN);
                let b1 = b0.add(16);
                asm!(
                    "tileloadd tmm4, [{a0} + {sa}]",
                    "tileloadd tmm5, [{a1} + {sa}]",
                    "tileloadd tmm6, [{b0} + {sb}]",
                    "tileloadd tmm7, [{b1} + {sb}]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a0 = in(reg) a0, a1 = in(reg) a1, b0 = in(reg) b0, b1 = in(reg) b1,
                    sa = in(reg) a_stride, sb = in(reg) b_stride,
                    options(nostack, readonly),
                );
            }
            let o = out.as_mut_ptr();
            asm!(
                "tilestored [{c0} + {sc}], tmm0",
                "tilestored [{c1} + {sc}], tmm1",
                "tilestored [{c2} + {sc}], tmm2",
                "tilestored [{c3} + {sc}], tmm3",
                c0 = in(reg) o, c1 = in(reg) o.add(16), c2 = in(reg) o.add(16 * BN), c3 = in(reg) o.add(16 * BN + 16),
                sc = in(reg) c_stride,
                options(nostack),
            );
            for i in 0..BM.min(m - m0) {
                let r = m0 + i;
                for (v, &mask) in masks.iter().enumerate() {
                    if mask == 0 {
                        continue;
                    }
                    let d = dst.0.add(r * dst_stride + c0 + v * 16);
                    let sum = _mm512_loadu_ps(out.as_ptr().add(i * BN + v * 16));
                    let val = if accumulate {
                        _mm512_add_ps(_mm512_maskz_loadu_ps(mask, d), sum)
                    } else {
                        sum
                    };
                    _mm512_mask_storeu_ps(d, mask, val);
                }
            }
        }
    }
    asm!("tilerelease", options(nostack, nomem));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AMX product equals the f64 product of the bf16-rounded operands up to f32 summation
    /// error, with row and column tails, strides, both write modes and the threaded path.
    #[test]
    fn product_of_rounded_operands_with_tails_strides_and_threads() {
        if !available() {
            eprintln!(
                "SKIPPED: this CPU (or OS) has no AMX-BF16; the gemmkit path is tested instead"
            );
            return;
        }
        let round = |v: f32| bf16::from_f32(v).to_f32() as f64;
        for &(m, k, n, threads) in &[(45, 70, 100, 2), (3, 1, 17, 1), (64, 288, 333, 2)] {
            let (bs, ds) = (n + 5, n + 3);
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * bs).map(|i| (i as f32 * 0.11).cos() * 3.0).collect();
            let packed = PackedA::new(&a, m, k).unwrap();
            let mut dst = vec![-7.0f32; m * ds];
            assert!(gemm(&mut dst, ds, &packed, &b, bs, n, false, threads));
            let mut acc = dst.clone();
            assert!(gemm(&mut acc, ds, &packed, &b, bs, n, true, threads));
            for i in 0..m {
                for j in 0..n {
                    let exact: f64 = (0..k)
                        .map(|p| round(a[i * k + p]) * round(b[p * bs + j]))
                        .sum();
                    let got = dst[i * ds + j] as f64;
                    assert!(
                        (got - exact).abs() <= 1e-4 * (1.0 + exact.abs()),
                        "{m}x{k}x{n} ({i},{j}): {got} vs {exact}"
                    );
                    assert!(
                        (acc[i * ds + j] - 2.0 * dst[i * ds + j]).abs()
                            <= 1e-4 * (1.0 + got.abs() as f32)
                    );
                }
                // The stride's padding columns are untouched.
                assert_eq!(dst[i * ds + n], -7.0);
            }
        }
    }

    #[test]
    fn refuses_buffers_that_are_too_small() {
        let packed = PackedA::new(&[1.0; 6], 2, 3).unwrap();
        let mut dst = vec![0.0f32; 3];
        assert!(!gemm(&mut dst, 2, &packed, &[1.0; 6], 2, 2, false, 1));
        assert!(PackedA::new(&[1.0; 5], 2, 3).is_none());
    }
}
