//! Per-channel sums over NCHW data (added for clrtrain; see vendor/README.md): each channel's
//! `batch` planes are contiguous runs, summed in vector-width lanes and then in f64, one channel
//! per task in parallel. The order of the additions is fixed, whatever the number of threads.
//! Used by the batch-norm statistics and the convolutions' bias gradient.

use alloc::vec::Vec;
use num_traits::{Float, ToPrimitive};

/// Independent accumulators per plane, so that the sum vectorises (an ordered fold does not).
const LANES: usize = 16;

pub(crate) fn to64<T: Float>(v: T) -> f64 {
    ToPrimitive::to_f64(&v).unwrap_or(f64::NAN)
}

/// `f(channel)` for every channel, in parallel, collected in channel order.
pub(crate) fn per_channel<R: Send>(
    channels: usize,
    f: impl Fn(usize) -> R + Sync + Send,
) -> Vec<R> {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        (0..channels).into_par_iter().map(f).collect()
    }
    #[cfg(not(feature = "rayon"))]
    (0..channels).map(f).collect()
}

/// `f(c, planes)` for every channel in parallel, as [`per_channel`], where `planes` are channel
/// `c`'s `batch` planes of the NCHW buffer `out` (image by image; disjoint across channels).
pub(crate) fn per_channel_mut<U: Send, R: Send>(
    out: &mut [U],
    (batch, channels, plane): (usize, usize, usize),
    f: impl Fn(usize, Vec<&mut [U]>) -> R + Sync + Send,
) -> Vec<R> {
    assert_eq!(out.len(), batch * channels * plane);
    let mut groups: Vec<Vec<&mut [U]>> = (0..channels).map(|_| Vec::with_capacity(batch)).collect();
    if plane > 0 {
        for (i, p) in out.chunks_mut(plane).enumerate() {
            groups[i % channels].push(p);
        }
    }
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        groups
            .into_par_iter()
            .enumerate()
            .map(|(c, g)| f(c, g))
            .collect()
    }
    #[cfg(not(feature = "rayon"))]
    groups
        .into_iter()
        .enumerate()
        .map(|(c, g)| f(c, g))
        .collect()
}

/// The planes of channel `c` in an NCHW buffer.
pub(crate) fn planes<T: Float>(
    data: &[T],
    (batch, channels, plane): (usize, usize, usize),
    c: usize,
) -> impl Iterator<Item = &[T]> {
    (0..batch).map(move |n| {
        if let Some(next) = data.get((n + AHEAD) * channels * plane + c * plane..) {
            prefetch(&next[..plane.min(next.len())]);
        }
        &data[(n * channels + c) * plane..][..plane]
    })
}

/// Planes ahead of the one being read that [`planes`] prefetches.
const AHEAD: usize = 2;

/// Hints the start of `p` (up to 2 KiB) into cache. A channel's planes lie `channels` planes
/// apart: small ones (a 7×7 plane is 4 cache lines) each start a new stream that the hardware
/// prefetchers have not learnt.
fn prefetch<T>(p: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let bytes = core::mem::size_of_val(p).min(2048);
        let start = p.as_ptr().cast::<i8>();
        for at in (0..bytes).step_by(64) {
            // SAFETY: a prefetch only hints; the address lies within `p`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(at)) };
        }
    }
}

/// `Σ f(v)` over a plane, in `LANES` independent f32/f64 accumulators, returned as f64.
pub(crate) fn lane_sum<T: Float>(p: &[T], f: impl Fn(T) -> T) -> f64 {
    let mut acc = [T::zero(); LANES];
    let chunks = p.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = *a + f(v);
        }
    }
    let tail: f64 = tail.iter().map(|&v| to64(f(v))).sum();
    acc.iter().map(|&a| to64(a)).sum::<f64>() + tail
}

/// `(Σ a, Σ a·(b - m))` over a pair of planes, in [`LANES`] accumulators each as [`lane_sum`]:
/// the batch-norm gradient's two sums. For f32 on AVX, explicitly on vectors (the compiler left
/// this loop scalar), with the same lanes and operations, so the same result.
pub(crate) fn lane_sum_and_dot<T: Float + bytemuck::Pod>(a: &[T], b: &[T], m: T) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if core::any::TypeId::of::<T>() == core::any::TypeId::of::<f32>()
        && std::is_x86_feature_detected!("avx")
    {
        let (a, b): (&[f32], &[f32]) = (bytemuck::cast_slice(a), bytemuck::cast_slice(b));
        // SAFETY: AVX detected above.
        let acc = unsafe { avx::sum_and_dot(a, b, to64(m) as f32) };
        return finish(acc, a, b, to64(m) as f32);
    }
    let (mut acc0, mut acc1) = ([T::zero(); LANES], [T::zero(); LANES]);
    for (xa, xb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for i in 0..LANES {
            acc0[i] = acc0[i] + xa[i];
            acc1[i] = acc1[i] + xa[i] * (xb[i] - m);
        }
    }
    finish((acc0, acc1), a, b, m)
}

/// The lanes' totals in f64, plus the elements after the last whole chunk.
fn finish<T: Float>((acc0, acc1): ([T; LANES], [T; LANES]), a: &[T], b: &[T], m: T) -> (f64, f64) {
    let whole = a.len() - a.len() % LANES;
    let (mut s0, mut s1) = (0.0, 0.0);
    for (&u, &v) in a[whole..].iter().zip(&b[whole..]) {
        s0 += to64(u);
        s1 += to64(u * (v - m));
    }
    let total = |acc: [T; LANES]| acc.iter().map(|&a| to64(a)).sum::<f64>();
    (total(acc0) + s0, total(acc1) + s1)
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
mod avx {
    use super::LANES;
    use core::arch::x86_64::*;

    /// [`super::lane_sum_and_dot`]'s lanes over the whole chunks: two 8-lane vectors per sum, no
    /// fused multiply-add (the scalar path rounds the product first).
    #[target_feature(enable = "avx")]
    pub fn sum_and_dot(a: &[f32], b: &[f32], m: f32) -> ([f32; LANES], [f32; LANES]) {
        let m = _mm256_set1_ps(m);
        let (mut s0, mut s1) = ([_mm256_setzero_ps(); 2], [_mm256_setzero_ps(); 2]);
        for (xa, xb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
            for h in 0..2 {
                // SAFETY: each chunk holds `LANES` = 16 values: two vectors of 8.
                let (u, v) = unsafe {
                    (
                        _mm256_loadu_ps(xa.as_ptr().add(8 * h)),
                        _mm256_loadu_ps(xb.as_ptr().add(8 * h)),
                    )
                };
                s0[h] = _mm256_add_ps(s0[h], u);
                s1[h] = _mm256_add_ps(s1[h], _mm256_mul_ps(u, _mm256_sub_ps(v, m)));
            }
        }
        let lanes = |s: [__m256; 2]| {
            let mut out = [0.0; LANES];
            // SAFETY: `out` holds 16 values.
            unsafe {
                _mm256_storeu_ps(out.as_mut_ptr(), s[0]);
                _mm256_storeu_ps(out.as_mut_ptr().add(8), s[1]);
            }
            out
        };
        (lanes(s0), lanes(s1))
    }
}
