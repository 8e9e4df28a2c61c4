//! Max pooling with indices in two vectorised passes (added for clrtrain; see vendor/README.md).
//!
//! The published kernel scans each window with a data-dependent branch per element and computes
//! each window's bounds with integer divisions; on random activations the branches mispredict
//! and a 3×3 stride-2 pooling of a batch-64 MiniGoogLeNet block took ≈ 16 ms here. Instead, for
//! each output row: first every input column's maximum over the window's rows (rows are
//! contiguous, so whole vectors of columns at a time), then each output's maximum over its
//! window's columns (for stride 2 the even lanes of two loads, else gathered). Both passes use
//! one selection rule that does not depend on the scan order (`beats`), so the result is the one
//! a row-major scan of each window gives: the largest value, the first (lowest index) of equal
//! ones, or the last NaN (as PyTorch).

use alloc::vec;
use alloc::vec::Vec;

/// Lanes per step; rows are padded to a multiple so every step runs whole vectors.
const LANES: usize = 8;

/// Marks a lane with nothing to offer: any row offset added to it stays negative.
const NO_LANE: i32 = i32::MIN;

/// The windows of one pooling axis: for each output position its valid kernel taps
/// `start..end`, computed once per call so the per-output loops do no division.
pub struct AxisWindows {
    taps: Vec<(usize, usize)>,
    stride: usize,
    pad: usize,
    dilation: usize,
}

impl AxisWindows {
    /// `out` windows; `valid_taps(o)` gives output `o`'s taps that fall inside the input.
    pub fn new(
        out: usize,
        [stride, pad, dilation]: [usize; 3],
        valid_taps: impl Fn(usize) -> (usize, usize),
    ) -> Self {
        Self {
            taps: (0..out).map(valid_taps).collect(),
            stride,
            pad,
            dilation,
        }
    }

    pub fn len(&self) -> usize {
        self.taps.len()
    }

    /// The input index of tap `k` of output position `o` (a valid tap).
    fn input(&self, o: usize, k: usize) -> usize {
        o * self.stride + k * self.dilation - self.pad
    }

    /// The input indices of output position `o`'s valid taps, in order.
    fn inputs(&self, o: usize) -> impl Iterator<Item = usize> + '_ {
        let (start, end) = self.taps[o];
        (start..end).map(move |k| self.input(o, k))
    }
}

/// Whether `(v, i)` replaces `(best, best_idx)`: the larger value wins, of equal values the lower
/// index, NaN beats numbers and of two NaNs the higher index wins. `i < 0`: nothing offered;
/// `best_idx < 0`: nothing held yet. A row-major scan of a window with "take if `v > best` or
/// `v` is NaN" (the published kernel, and PyTorch's) ends on the same element.
#[inline(always)]
fn beats<T: num_traits::Float>(v: T, i: i32, best: T, best_idx: i32) -> bool {
    if i < 0 {
        false
    } else if best_idx < 0 {
        true
    } else if v.is_nan() {
        !best.is_nan() || i > best_idx
    } else {
        v > best || (v == best && i < best_idx)
    }
}

/// One output row of one volume: from the window's input rows (`s.rows`, their start offsets
/// in the volume `x`), the maxima and their indices into `s.out_max`, `s.out_idx`.
type PoolRow<T> = fn(&[T], &Plan<T>, &mut Scratch<T>);

fn pool_row_scalar<T: num_traits::Float>(x: &[T], plan: &Plan<T>, s: &mut Scratch<T>) {
    let columns = plan.left..plan.left + plan.in_w;
    s.column_max[columns.clone()].fill(plan.neg_inf);
    s.column_idx[columns.clone()].fill(-1);
    for &start in &s.rows {
        let maxima = s.column_max[columns.clone()].iter_mut();
        let indices = s.column_idx[columns.clone()].iter_mut();
        let row = x[start..start + plan.in_w].iter().zip(start..);
        for ((&v, i), (b, bi)) in row.zip(maxima.zip(indices)) {
            if beats(v, i as i32, *b, *bi) {
                (*b, *bi) = (v, i as i32);
            }
        }
    }
    s.out_max.fill(plan.neg_inf);
    s.out_idx.fill(-1);
    for tap in &plan.taps {
        let outputs = s.out_max.iter_mut().zip(s.out_idx.iter_mut());
        for ((b, bi), (&c, &m)) in outputs.zip(tap.column.iter().zip(&tap.mask)) {
            let (v, i) = (s.column_max[c as usize], s.column_idx[c as usize] | m);
            if beats(v, i, *b, *bi) {
                (*b, *bi) = (v, i);
            }
        }
    }
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn pool_row_f32_avx2(x: &[f32], plan: &Plan<f32>, s: &mut Scratch<f32>) {
    assert!(s.rows.iter().all(|&r| r + plan.in_w <= x.len()));
    assert!(s.column_max.len() == plan.column_len && s.column_idx.len() == plan.column_len);
    assert!(s.out_max.len() == plan.out_width && s.out_idx.len() == plan.out_width);
    // SAFETY: chosen only where AVX2 was detected; the row reads stay within the rows checked
    // here, the column reads within `column_len` (checked by `Plan::new`).
    unsafe { avx2::pool_row(x, plan, s) }
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
mod avx2 {
    use super::{LANES, Plan, Scratch};
    use core::arch::x86_64::*;

    /// A window's running maximum on 8 lanes: values and their indices.
    #[derive(Clone, Copy)]
    struct Best {
        max: __m256,
        idx: __m256i,
    }

    /// [`super::beats`] on 8 lanes, branch-free: `(x, i)` where it beats `b`.
    #[target_feature(enable = "avx2")]
    fn step(b: Best, x: __m256, i: __m256i) -> Best {
        let offered = _mm256_cmpgt_epi32(i, _mm256_set1_epi32(-1));
        let empty = _mm256_cmpgt_epi32(_mm256_setzero_si256(), b.idx);
        let x_nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(x, x));
        let b_nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(b.max, b.max));
        let greater = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(x, b.max));
        let equal = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_EQ_OQ>(x, b.max));
        let later = _mm256_cmpgt_epi32(i, b.idx);
        let earlier = _mm256_cmpgt_epi32(b.idx, i);
        // x NaN and (b a number or i later); x > b, or x == b and i earlier.
        let nan_wins = _mm256_andnot_si256(_mm256_andnot_si256(later, b_nan), x_nan);
        let number_wins = _mm256_or_si256(greater, _mm256_and_si256(equal, earlier));
        let wins = _mm256_or_si256(empty, _mm256_or_si256(nan_wins, number_wins));
        let take = _mm256_and_si256(offered, wins);
        Best {
            max: _mm256_blendv_ps(b.max, x, _mm256_castsi256_ps(take)),
            idx: _mm256_blendv_epi8(b.idx, i, take),
        }
    }

    /// The even lanes of `lo` then of `hi`: 8 values at stride 2.
    #[target_feature(enable = "avx2")]
    fn evens(lo: __m256, hi: __m256) -> __m256 {
        let pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
        let lo = _mm256_permutevar8x32_ps(lo, pick);
        let hi = _mm256_permutevar8x32_ps(hi, pick);
        _mm256_blend_ps::<0b1111_0000>(lo, hi)
    }

    /// The 8 values lane `l` of which is `row[first + l · stride]`; `offsets` holds those indices
    /// for strides other than 1 and 2.
    ///
    /// # Safety
    /// `first + 8 · stride` (stride 1 or 2) or every offset lies within `row`.
    #[target_feature(enable = "avx2")]
    unsafe fn strided(row: *const f32, first: usize, stride: usize, offsets: __m256i) -> __m256 {
        // SAFETY: guaranteed by the caller.
        unsafe {
            match stride {
                1 => _mm256_loadu_ps(row.add(first)),
                2 => evens(
                    _mm256_loadu_ps(row.add(first)),
                    _mm256_loadu_ps(row.add(first + LANES)),
                ),
                _ => _mm256_i32gather_ps::<4>(row, offsets),
            }
        }
    }

    /// See [`super::pool_row_f32_avx2`], which checks the bounds this relies on.
    #[target_feature(enable = "avx2")]
    pub unsafe fn pool_row(x: &[f32], plan: &Plan<f32>, s: &mut Scratch<f32>) {
        let empty = Best {
            max: _mm256_set1_ps(plan.neg_inf),
            idx: _mm256_set1_epi32(-1),
        };
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        // Each input column's maximum over the window's rows, 8 columns at a time, held in
        // registers across the rows. Lanes past the row's end carry no index; they read the
        // next row, or, at the volume's end, nothing (masked load).
        for k in (0..plan.in_w).step_by(LANES) {
            let columns = _mm256_add_epi32(_mm256_set1_epi32(k as i32), lane);
            let live = _mm256_cmpgt_epi32(_mm256_set1_epi32(plan.in_w as i32), columns);
            let mut b = empty;
            for &start in &s.rows {
                let first = start + k;
                // SAFETY: the row lies within `x` (checked by the caller); past its end only
                // up to `x.len()`, or masked.
                let v = unsafe {
                    if first + LANES <= x.len() {
                        _mm256_loadu_ps(x.as_ptr().add(first))
                    } else {
                        _mm256_maskload_ps(x.as_ptr().add(first), live)
                    }
                };
                let i = _mm256_add_epi32(_mm256_set1_epi32(start as i32), columns);
                let none = _mm256_andnot_si256(live, _mm256_set1_epi32(super::NO_LANE));
                b = step(b, v, _mm256_or_si256(i, none));
            }
            // SAFETY: `left + k + 8 <= column_len` (checked by `Plan::new`).
            unsafe {
                let at = plan.left + k;
                _mm256_storeu_ps(s.column_max.as_mut_ptr().add(at), b.max);
                _mm256_storeu_si256(s.column_idx.as_mut_ptr().add(at).cast(), b.idx);
            }
        }
        // Each output's maximum over its window's columns, 8 outputs at a time.
        let (maxima, indices) = (s.column_max.as_ptr(), s.column_idx.as_ptr().cast::<f32>());
        for k in (0..plan.out_width).step_by(LANES) {
            let mut b = empty;
            for tap in &plan.taps {
                // SAFETY: the tap rows are `out_width` long, their columns (and the stride-1 and
                // stride-2 runs from each block's first) lie within `column_len` (`Plan::new`).
                unsafe {
                    let columns = _mm256_loadu_si256(tap.column.as_ptr().add(k).cast());
                    let mask = _mm256_loadu_si256(tap.mask.as_ptr().add(k).cast());
                    let first = tap.column[k] as usize;
                    let v = strided(maxima, first, plan.stride, columns);
                    let i = _mm256_castps_si256(strided(indices, first, plan.stride, columns));
                    b = step(b, v, _mm256_or_si256(i, mask));
                }
            }
            // SAFETY: `k + 8 <= out_width`, the length of both output rows.
            unsafe {
                _mm256_storeu_ps(s.out_max.as_mut_ptr().add(k), b.max);
                _mm256_storeu_si256(s.out_idx.as_mut_ptr().add(k).cast(), b.idx);
            }
        }
    }
}

/// The row kernel for `T`: AVX2 for f32 where the CPU has it, else lane by lane.
fn pool_row_for<T: num_traits::Float + 'static>() -> PoolRow<T> {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if core::any::TypeId::of::<T>() == core::any::TypeId::of::<f32>()
        && std::is_x86_feature_detected!("avx2")
    {
        let row: PoolRow<f32> = pool_row_f32_avx2;
        // SAFETY: T is f32 (checked above), so the two function pointer types are the same.
        return unsafe { core::mem::transmute::<PoolRow<f32>, PoolRow<T>>(row) };
    }
    pool_row_scalar::<T>
}

/// The windows of one max-pooling call, shared by all its (batch, channel) volumes.
pub struct PoolWindows<T> {
    pub d: AxisWindows,
    pub h: AxisWindows,
    pub w: AxisWindows,
    pub in_h: usize,
    pub in_w: usize,
    pub neg_inf: T,
}

/// One kernel column: for each output column (padded to `LANES`), where in the column rows it
/// reads, and [`NO_LANE`] in `mask` where that tap lies outside the input (0 elsewhere).
struct Tap {
    column: Vec<i32>,
    mask: Vec<i32>,
}

/// What one call precomputes from its windows for the row kernels. The column rows (each input
/// column's maximum over a window's rows) hold input column `c` at `left + c`, with margins so
/// that every tap, valid or not, and every whole-vector read of the row kernels stays inside.
pub struct Plan<T> {
    in_w: usize,
    stride: usize,
    left: usize,
    column_len: usize,
    /// Output row length rounded up to `LANES`.
    out_width: usize,
    taps: Vec<Tap>,
    neg_inf: T,
    pool_row: PoolRow<T>,
}

impl<T: num_traits::Float + 'static> Plan<T> {
    fn new(p: &PoolWindows<T>) -> Self {
        let w = &p.w;
        let out_width = w.len().div_ceil(LANES) * LANES;
        let kernel_w = w.taps.iter().map(|t| t.1).max().unwrap_or(0);
        let left = w.pad;
        // Every tap of every (padded) output column, valid or not, at `left + column`.
        let column = |o: usize, k: usize| o * w.stride + k * w.dilation + left - w.pad;
        let taps: Vec<Tap> = (0..kernel_w)
            .map(|k| Tap {
                column: (0..out_width).map(|o| column(o, k) as i32).collect(),
                mask: (0..out_width)
                    .map(|o| {
                        let (start, end) = w.taps.get(o).copied().unwrap_or((0, 0));
                        if start <= k && k < end { 0 } else { NO_LANE }
                    })
                    .collect(),
            })
            .collect();
        // Whole vectors: the column pass stores `in_w` rounded up, the stride-1 and stride-2
        // reads take 8 and 16 values from each block's first column.
        let widest_read = LANES * w.stride.min(2);
        let column_len = (left + p.in_w.div_ceil(LANES) * LANES)
            .max(column(out_width.max(1) - 1, kernel_w.max(1) - 1) + 1)
            .max(column(out_width.saturating_sub(LANES), kernel_w.max(1) - 1) + widest_read);
        assert!(column_len <= i32::MAX as usize);
        Self {
            in_w: p.in_w,
            stride: w.stride,
            left,
            column_len,
            out_width,
            taps,
            neg_inf: p.neg_inf,
            pool_row: pool_row_for::<T>(),
        }
    }
}

/// Scratch rows of one task, reused from volume to volume.
pub struct Scratch<T> {
    rows: Vec<usize>,
    column_max: Vec<T>,
    column_idx: Vec<i32>,
    out_max: Vec<T>,
    out_idx: Vec<i32>,
}

impl<T: Copy> Scratch<T> {
    fn new() -> Self {
        Self {
            rows: Vec::new(),
            column_max: Vec::new(),
            column_idx: Vec::new(),
            out_max: Vec::new(),
            out_idx: Vec::new(),
        }
    }

    /// Sized for `plan` (what the margins hold is never used: their lanes are masked).
    fn fit(&mut self, plan: &Plan<T>) {
        self.column_max.resize(plan.column_len, plan.neg_inf);
        self.column_idx.resize(plan.column_len, -1);
        self.out_max.resize(plan.out_width, plan.neg_inf);
        self.out_idx.resize(plan.out_width, -1);
    }
}

/// Max pooling of one (batch, channel) volume `x` into `out` and `indices` (flat indices within
/// the volume, which fit `i32`: checked by the caller).
fn pool_volume<T: num_traits::Float>(
    x: &[T],
    p: &PoolWindows<T>,
    plan: &Plan<T>,
    s: &mut Scratch<T>,
    out: &mut [T],
    indices: &mut [i64],
) {
    let out_w = p.w.len();
    for od in 0..p.d.len() {
        for oh in 0..p.h.len() {
            s.rows.clear();
            for id in p.d.inputs(od) {
                s.rows
                    .extend(p.h.inputs(oh).map(|ih| (id * p.in_h + ih) * p.in_w));
            }
            (plan.pool_row)(x, plan, s);
            let first = (od * p.h.len() + oh) * out_w;
            out[first..first + out_w].copy_from_slice(&s.out_max[..out_w]);
            for (i, &a) in indices[first..first + out_w].iter_mut().zip(&s.out_idx) {
                *i = a as i64;
            }
        }
    }
}

/// Max pooling of `planes` contiguous volumes of `in_d × in_h × in_w` elements: the outputs and
/// their flat indices within each volume (-1 and `neg_inf` for a window with no valid tap).
pub fn max_pool<T>(x: &[T], planes: usize, p: &PoolWindows<T>) -> (Vec<T>, Vec<i64>)
where
    T: num_traits::Float + Send + Sync + 'static,
{
    let spatial_out = p.d.len() * p.h.len() * p.w.len();
    let spatial_in = x.len() / planes.max(1);
    assert!(
        spatial_in <= i32::MAX as usize,
        "max_pool: one channel's volume holds more than 2^31 elements"
    );
    let mut output = vec![p.neg_inf; planes * spatial_out];
    let mut indices = vec![-1i64; planes * spatial_out];
    if spatial_out == 0 || spatial_in == 0 {
        return (output, indices);
    }
    let plan = Plan::new(p);
    let volume = |s: &mut Scratch<T>, bc: usize, out: &mut [T], idx: &mut [i64]| {
        s.fit(&plan);
        let x = &x[bc * spatial_in..(bc + 1) * spatial_in];
        pool_volume(x, p, &plan, s, out, idx);
    };
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        output
            .par_chunks_mut(spatial_out)
            .zip(indices.par_chunks_mut(spatial_out))
            .enumerate()
            .for_each_init(Scratch::new, |s, (bc, (out, idx))| {
                volume(s, bc, out, idx)
            });
    }
    #[cfg(not(feature = "rayon"))]
    {
        let mut s = Scratch::new();
        for (bc, (out, idx)) in output
            .chunks_mut(spatial_out)
            .zip(indices.chunks_mut(spatial_out))
            .enumerate()
        {
            volume(&mut s, bc, out, idx);
        }
    }
    (output, indices)
}
