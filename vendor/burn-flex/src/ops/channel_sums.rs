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

/// The planes of channel `c` in an NCHW buffer.
pub(crate) fn planes<T: Float>(
    data: &[T],
    (batch, channels, plane): (usize, usize, usize),
    c: usize,
) -> impl Iterator<Item = &[T]> {
    (0..batch).map(move |n| &data[(n * channels + c) * plane..][..plane])
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

/// Two sums `Σ f(a, b)` over a pair of planes, as [`lane_sum`].
pub(crate) fn lane_sum2<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> (T, T)) -> (f64, f64) {
    let (mut acc0, mut acc1) = ([T::zero(); LANES], [T::zero(); LANES]);
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for i in 0..LANES {
            let (u, v) = f(xa[i], xb[i]);
            acc0[i] = acc0[i] + u;
            acc1[i] = acc1[i] + v;
        }
    }
    let (mut s0, mut s1) = (0.0, 0.0);
    for (&u, &v) in ta.iter().zip(tb) {
        let (u, v) = f(u, v);
        s0 += to64(u);
        s1 += to64(v);
    }
    let total = |acc: [T; LANES]| acc.iter().map(|&a| to64(a)).sum::<f64>();
    (total(acc0) + s0, total(acc1) + s1)
}
