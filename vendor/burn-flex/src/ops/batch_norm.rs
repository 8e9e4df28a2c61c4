//! Batch normalisation over NCHW data in one or two passes per channel (added for clrtrain; see
//! vendor/README.md).
//!
//! Burn's default `batch_norm_train` and its backward build the statistics out of tensor ops:
//! every one swaps the batch and channel axes (a full transposing copy), and the normalisation
//! and gradient take about ten elementwise passes over the activations. Here each channel's
//! statistics are sums over its `batch` contiguous planes (`channel_sums`), and in training the
//! same task then writes the channel's output or input gradient in one pass, while the planes it
//! has just summed are still in cache. Small planes go in memory order instead, pass by pass
//! (`FORWARD_SMALL_PLANE`), with the same sums in the same order.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::{BatchNormTrain, BatchNormTrainBackward};
use burn_std::Shape;

use core::mem::MaybeUninit;

use super::channel_sums::{lane_sum, lane_sum_and_dot, per_channel_mut, planes, to64};
use super::conv_nchw::{Real, half_casts, tensor_from};

use crate::{Flex, FlexTensor};

/// `[batch, channels, rest...]` as (batch, channels, elements per channel plane).
fn dims(shape: &Shape) -> (usize, usize, usize) {
    let plane = shape.iter().skip(2).product();
    (shape[0], shape[1], plane)
}

fn values_typed<T: Real>(t: &FlexTensor) -> Vec<f64> {
    let t = t.to_contiguous();
    let s: &[T] = t.as_slice().expect("contiguous");
    s.iter().map(|&v| to64(v)).collect()
}

/// A per-channel tensor's values as f64, whatever its float type.
fn values(t: &FlexTensor) -> Vec<f64> {
    match t.dtype() {
        DType::F64 => values_typed::<f64>(t),
        DType::F32 => values_typed::<f32>(t),
        dtype => values_typed::<f32>(&half_casts(dtype).0(t.clone())),
    }
}

fn channel_tensor<T: Real>(v: &[f64]) -> FlexTensor {
    let data = v.iter().map(|&x| T::from(x).unwrap_or(T::nan())).collect();
    tensor_from::<T>(data, Shape::from(vec![v.len()]))
}

/// A new NCHW buffer with `out[j] = f(coef[channel], a[j], b[j])`, written once, plane by plane
/// in parallel (no copy of an input made first). Inference's map: with nothing to sum first, this
/// order (memory order) measured faster than [`map_by_channel`]'s.
fn map_planes<T: Real, C: Copy + Sync>(
    a: &[T],
    b: &[T],
    (channels, plane): (usize, usize),
    coef: &[C],
    f: impl Fn(C, T, T) -> T + Sync + Send,
) -> Vec<T> {
    assert_eq!(a.len(), b.len());
    let mut out: Vec<T> = Vec::with_capacity(a.len());
    if plane > 0 {
        let fill = |(i, o): (usize, &mut [MaybeUninit<T>])| {
            let (k, range) = (coef[i % channels], i * plane..i * plane + o.len());
            write_plane(o, &a[range.clone()], &b[range], |u, v| f(k, u, v));
        };
        let spare = &mut out.spare_capacity_mut()[..a.len()];
        #[cfg(feature = "rayon")]
        {
            use rayon::prelude::*;
            spare.par_chunks_mut(plane).enumerate().for_each(fill);
        }
        #[cfg(not(feature = "rayon"))]
        spare.chunks_mut(plane).enumerate().for_each(fill);
    }
    // SAFETY: with `plane > 0` the chunks cover all `a.len()` slots and `fill` writes every slot
    // of its chunk (the inputs are as long as the output); with `plane == 0` the length is 0.
    unsafe { out.set_len(if plane > 0 { a.len() } else { 0 }) };
    out
}

/// `out[j] = f(a[j], b[j])` over one plane (every slot of `out`, as long as the inputs).
fn write_plane<T: Real>(out: &mut [MaybeUninit<T>], a: &[T], b: &[T], f: impl Fn(T, T) -> T) {
    assert!(a.len() == out.len() && b.len() == out.len());
    for (o, (&u, &v)) in out.iter_mut().zip(a.iter().zip(b)) {
        o.write(f(u, v));
    }
}

/// A new NCHW buffer of `d`'s shape, channel by channel in parallel: `coef(c)` (which may sum
/// over the channel's planes) gives the channel's map coefficients `K` and a result `R`, then
/// `out[j] = f(K, a[j], b[j])` over its planes, which its sums have just brought into cache (a
/// map of its own, plane by plane, read them again from memory). The results in channel order.
fn map_by_channel<T: Real, K: Copy, R: Send>(
    a: &[T],
    b: &[T],
    d @ (batch, channels, plane): (usize, usize, usize),
    coef: impl Fn(usize) -> (K, R) + Sync + Send,
    f: impl Fn(K, T, T) -> T + Sync + Send,
) -> (Vec<T>, Vec<R>) {
    let len = batch * channels * plane;
    assert!(a.len() == len && b.len() == len);
    let mut out: Vec<T> = Vec::with_capacity(len);
    let results = per_channel_mut(&mut out.spare_capacity_mut()[..len], d, |c, outs| {
        let (k, r) = coef(c);
        let inputs = planes(a, d, c).zip(planes(b, d, c));
        for (o, (u, v)) in outs.into_iter().zip(inputs) {
            write_plane(o, u, v, |u, v| f(k, u, v));
        }
        r
    });
    // SAFETY: `per_channel_mut` hands each of the `batch · channels` planes of the `len` slots to
    // one call, which writes every slot of each (`write_plane`; the inputs have the same shape).
    unsafe { out.set_len(len) };
    (out, results)
}

/// Planes of at most this many values are normalised in memory order ([`plane_results`], then
/// [`map_planes`]) instead of channel by channel ([`map_by_channel`]): a channel's planes lie
/// `channels` planes apart, and a small one is a few cache lines, its first and last shared with
/// the neighbouring channels' planes, in streams too short for the prefetchers; in memory order
/// each pass is one stream. The forward pass reads its input three times in memory order (mean,
/// deviations, output) against once from memory and twice from cache channel by channel, so
/// only 7×7 planes gain there (batch 64, one thread, 240 channels: 3.0 → 1.9 ms); 15×15 planes
/// lose (160 channels: 3.8 → 5.4–6.3 ms). The gradient (two passes) gains on both (7×7, 240
/// channels: 3.6 → 2.0 ms; 15×15, 80 channels: 3.3 → 2.6 ms). 32×32 planes (1024 values) are
/// long enough for either order.
const FORWARD_SMALL_PLANE: usize = 64;
/// See [`FORWARD_SMALL_PLANE`].
const BACKWARD_SMALL_PLANE: usize = 512;

/// Whether planes of `plane` values are normalised in memory order: at most `small` values.
fn in_memory_order(plane: usize, small: usize) -> bool {
    (1..=small).contains(&plane)
}

/// `f(i, a_i, b_i)` for every plane `i` of two buffers of the same NCHW shape (channel
/// `i % channels`), in memory order, in parallel; the results in plane order.
fn plane_results<T: Real, R: Send>(
    a: &[T],
    b: &[T],
    plane: usize,
    f: impl Fn(usize, &[T], &[T]) -> R + Sync + Send,
) -> Vec<R> {
    assert!(a.len() == b.len() && plane > 0);
    let task = |(i, (u, v)): (usize, (&[T], &[T]))| f(i, u, v);
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        a.par_chunks(plane)
            .zip(b.par_chunks(plane))
            .enumerate()
            .map(task)
            .collect()
    }
    #[cfg(not(feature = "rayon"))]
    a.chunks(plane)
        .zip(b.chunks(plane))
        .enumerate()
        .map(task)
        .collect()
}

/// Channel `c`'s entries of a [`plane_results`] vector, image by image.
fn of_channel<R: Copy>(results: &[R], channels: usize, c: usize) -> impl Iterator<Item = R> + '_ {
    results.iter().skip(c).step_by(channels).copied()
}

/// `y = x * scale[c] + shift[c]`, one pass.
fn affine<T: Real>(x: &[T], shape: &Shape, scale: &[f64], shift: &[f64]) -> FlexTensor {
    let (_, channels, plane) = dims(shape);
    let t = |v: f64| T::from(v).unwrap_or(T::nan());
    let coef: Vec<(T, T)> = scale
        .iter()
        .zip(shift)
        .map(|(&a, &b)| (t(a), t(b)))
        .collect();
    let out = map_planes(x, x, (channels, plane), &coef, |(a, b), v, _| v * a + b);
    tensor_from(out, shape.clone())
}

/// Inference: normalise with the given statistics.
pub(crate) fn batch_norm(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
) -> FlexTensor {
    let (gamma, beta, mean, var) = (
        values(&gamma),
        values(&beta),
        values(&mean),
        values(&variance),
    );
    let scale: Vec<f64> = (0..gamma.len())
        .map(|c| gamma[c] / (var[c] + epsilon).sqrt())
        .collect();
    let shift: Vec<f64> = (0..gamma.len())
        .map(|c| beta[c] - mean[c] * scale[c])
        .collect();
    let shape = x.layout().shape().clone();
    match x.dtype() {
        DType::F64 => affine::<f64>(
            x.to_contiguous().as_slice().expect("contiguous"),
            &shape,
            &scale,
            &shift,
        ),
        DType::F32 => affine::<f32>(
            x.to_contiguous().as_slice().expect("contiguous"),
            &shape,
            &scale,
            &shift,
        ),
        dtype => {
            let (to, from) = half_casts(dtype);
            let x = to(x);
            from(affine::<f32>(
                x.as_slice().expect("contiguous"),
                &shape,
                &scale,
                &shift,
            ))
        }
    }
}

/// Training: normalise with the batch's own mean and biased variance, and return them.
pub(crate) fn batch_norm_train(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> BatchNormTrain<Flex> {
    match x.dtype() {
        DType::F64 => train_typed::<f64>(x, gamma, beta, epsilon),
        DType::F32 => train_typed::<f32>(x, gamma, beta, epsilon),
        dtype => {
            let (to, from) = half_casts(dtype);
            let r = train_typed::<f32>(to(x), to(gamma), to(beta), epsilon);
            BatchNormTrain::new(from(r.output), from(r.mean), from(r.variance))
        }
    }
}

fn train_typed<T: Real>(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> BatchNormTrain<Flex> {
    let shape = x.layout().shape().clone();
    let d @ (batch, channels, plane) = dims(&shape);
    let count = (batch * plane).max(1) as f64;
    let x = x.to_contiguous();
    let xs: &[T] = x.as_slice().expect("contiguous");
    let (gamma, beta) = (values(&gamma), values(&beta));
    let t = |v: f64| T::from(v).unwrap_or(T::nan());
    // `x · scale + shift` normalises channel `c` with its batch statistics.
    let coef = |c: usize, mean: f64, var: f64| {
        let scale = gamma[c] / (var + epsilon).sqrt();
        ((t(scale), t(beta[c] - mean * scale)), (mean, var))
    };
    let normalise = |(a, b): (T, T), v: T, _| v * a + b;
    // Per channel, two passes (mean, then squared deviations) for an accurate variance, each
    // plane summed in f32 lanes, the planes in f64 in image order; then the output.
    let sum = |p: &[T]| lane_sum(p, |v| v);
    let deviations = |p: &[T], m: T| lane_sum(p, |v| (v - m) * (v - m));
    let (output, stats) = if in_memory_order(plane, FORWARD_SMALL_PLANE) {
        let channel_means = |sums: &[f64]| -> Vec<f64> {
            (0..channels)
                .map(|c| of_channel(sums, channels, c).sum::<f64>() / count)
                .collect()
        };
        let means = channel_means(&plane_results(xs, xs, plane, |_, p, _| sum(p)));
        let vars = channel_means(&plane_results(xs, xs, plane, |i, p, _| {
            deviations(p, t(means[i % channels]))
        }));
        let (coefs, stats): (Vec<_>, Vec<_>) =
            (0..channels).map(|c| coef(c, means[c], vars[c])).unzip();
        let output = map_planes(xs, xs, (channels, plane), &coefs, normalise);
        (output, stats)
    } else {
        map_by_channel(
            xs,
            xs,
            d,
            |c| {
                let mean = planes(xs, d, c).map(sum).sum::<f64>() / count;
                let m = t(mean);
                let var = planes(xs, d, c).map(|p| deviations(p, m)).sum::<f64>() / count;
                coef(c, mean, var)
            },
            normalise,
        )
    };
    let output = tensor_from(output, shape);
    let mean: Vec<f64> = stats.iter().map(|s| s.0).collect();
    let var: Vec<f64> = stats.iter().map(|s| s.1).collect();
    BatchNormTrain::new(
        output,
        channel_tensor::<T>(&mean),
        channel_tensor::<T>(&var),
    )
}

/// Gradients of [`batch_norm_train`] with respect to its input, `gamma` and `beta`:
/// `dx = gamma / std * (dy - mean(dy) - x̂ * mean(dy * x̂))`.
pub(crate) fn batch_norm_train_backward(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
    output_grad: FlexTensor,
) -> BatchNormTrainBackward<Flex> {
    match x.dtype() {
        DType::F64 => backward_typed::<f64>(x, gamma, mean, variance, epsilon, output_grad),
        DType::F32 => backward_typed::<f32>(x, gamma, mean, variance, epsilon, output_grad),
        dtype => {
            let (to, from) = half_casts(dtype);
            let r = backward_typed::<f32>(
                to(x),
                to(gamma),
                to(mean),
                to(variance),
                epsilon,
                to(output_grad),
            );
            BatchNormTrainBackward::new(from(r.x_grad), from(r.gamma_grad), from(r.beta_grad))
        }
    }
}

fn backward_typed<T: Real>(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
    output_grad: FlexTensor,
) -> BatchNormTrainBackward<Flex> {
    let shape = x.layout().shape().clone();
    let d @ (batch, channels, plane) = dims(&shape);
    let count = (batch * plane).max(1) as f64;
    let (x, dy) = (x.to_contiguous(), output_grad.to_contiguous());
    let (xs, dys): (&[T], &[T]) = (
        x.as_slice().expect("contiguous"),
        dy.as_slice().expect("contiguous"),
    );
    let (gamma, mean, var) = (values(&gamma), values(&mean), values(&variance));
    let inv_std: Vec<f64> = var.iter().map(|v| 1.0 / (v + epsilon).sqrt()).collect();
    let t = |v: f64| T::from(v).unwrap_or(T::nan());
    // Per channel: Σ dy (beta's gradient) and Σ dy·x̂ (gamma's) = Σ dy·(x - mean) / σ, each
    // plane's in f32 lanes, the planes' in f64 in image order; then dx = k·dy + a·x + b, with
    // k = γ/σ, a = -k·mean(dy·x̂)/σ, b = -k·mean(dy) - a·mean.
    let inv = &inv_std;
    let add =
        move |c: usize| move |(s, sx): (f64, f64), (a, b): (f64, f64)| (s + a, sx + b * inv[c]);
    let coef = |c: usize, (s, sx): (f64, f64)| {
        let k = gamma[c] * inv_std[c];
        let a = -k * sx / count * inv_std[c];
        let b = -k * s / count - a * mean[c];
        ((t(k), t(a), t(b)), (s, sx))
    };
    let gradient = |(k, a, b): (T, T, T), g: T, x: T| k * g + a * x + b;
    let (dx, sums) = if in_memory_order(plane, BACKWARD_SMALL_PLANE) {
        let pairs = plane_results(dys, xs, plane, |i, dp, xp| {
            lane_sum_and_dot(dp, xp, t(mean[i % channels]))
        });
        let (coefs, sums): (Vec<_>, Vec<_>) = (0..channels)
            .map(|c| coef(c, of_channel(&pairs, channels, c).fold((0.0, 0.0), add(c))))
            .unzip();
        (
            map_planes(dys, xs, (channels, plane), &coefs, gradient),
            sums,
        )
    } else {
        map_by_channel(
            dys,
            xs,
            d,
            |c| {
                let m = t(mean[c]);
                let pairs = planes(dys, d, c)
                    .zip(planes(xs, d, c))
                    .map(|(dp, xp)| lane_sum_and_dot(dp, xp, m));
                coef(c, pairs.fold((0.0, 0.0), add(c)))
            },
            gradient,
        )
    };
    let beta_grad: Vec<f64> = sums.iter().map(|s| s.0).collect();
    let gamma_grad: Vec<f64> = sums.iter().map(|s| s.1).collect();
    BatchNormTrainBackward::new(
        tensor_from(dx, shape),
        channel_tensor::<T>(&gamma_grad),
        channel_tensor::<T>(&beta_grad),
    )
}
