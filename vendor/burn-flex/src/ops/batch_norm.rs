//! Batch normalisation over NCHW data in one or two passes per channel (added for clrtrain; see
//! vendor/README.md).
//!
//! Burn's default `batch_norm_train` and its backward build the statistics out of tensor ops:
//! every one swaps the batch and channel axes (a full transposing copy), and the normalisation
//! and gradient take about ten elementwise passes over the activations. Here each channel's
//! statistics are sums over its `batch` contiguous planes (`channel_sums`), and the output and
//! input gradient are one pass each.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::{BatchNormTrain, BatchNormTrainBackward};
use burn_std::Shape;

use super::channel_sums::{lane_sum, lane_sum2, per_channel, planes, to64};
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
/// in parallel (no copy of an input made first).
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
        let fill = |(i, o): (usize, &mut [core::mem::MaybeUninit<T>])| {
            let c = coef[i % channels];
            let range = i * plane..i * plane + o.len();
            for (o, (&u, &v)) in o.iter_mut().zip(a[range.clone()].iter().zip(&b[range])) {
                o.write(f(c, u, v));
            }
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
    // Two passes per channel (mean, then squared deviations) for an accurate variance; each
    // plane is summed in f32 lanes, the planes in f64.
    let stats: Vec<(f64, f64)> = per_channel(channels, |c| {
        let mean = planes(xs, d, c).map(|p| lane_sum(p, |v| v)).sum::<f64>() / count;
        let m = T::from(mean).unwrap_or(T::nan());
        let var = planes(xs, d, c)
            .map(|p| lane_sum(p, |v| (v - m) * (v - m)))
            .sum::<f64>()
            / count;
        (mean, var)
    });
    let (gamma, beta) = (values(&gamma), values(&beta));
    let scale: Vec<f64> = (0..channels)
        .map(|c| gamma[c] / (stats[c].1 + epsilon).sqrt())
        .collect();
    let shift: Vec<f64> = (0..channels)
        .map(|c| beta[c] - stats[c].0 * scale[c])
        .collect();
    let output = affine::<T>(xs, &shape, &scale, &shift);
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
    // Per channel: Σ dy (beta's gradient) and Σ dy·x̂ (gamma's) = Σ dy·(x - mean) / σ.
    let sums: Vec<(f64, f64)> = per_channel(channels, |c| {
        let m = T::from(mean[c]).unwrap_or(T::nan());
        planes(xs, d, c)
            .zip(planes(dys, d, c))
            .fold((0.0, 0.0), |(s, sx), (xp, dp)| {
                let (a, b) = lane_sum2(dp, xp, |g, x| (g, g * (x - m)));
                (s + a, sx + b * inv_std[c])
            })
    });
    // dx = k·dy + a·x + b per channel, with k = γ/σ, a = -k·mean(dy·x̂)/σ,
    // b = -k·mean(dy) - a·mean.
    let coef: Vec<(T, T, T)> = (0..channels)
        .map(|c| {
            let k = gamma[c] * inv_std[c];
            let a = -k * sums[c].1 / count * inv_std[c];
            let b = -k * sums[c].0 / count - a * mean[c];
            let t = |v: f64| T::from(v).unwrap_or(T::nan());
            (t(k), t(a), t(b))
        })
        .collect();
    let dx = map_planes(dys, xs, (channels, plane), &coef, |(k, a, b), g, x| {
        k * g + a * x + b
    });
    let beta_grad: Vec<f64> = sums.iter().map(|s| s.0).collect();
    let gamma_grad: Vec<f64> = sums.iter().map(|s| s.1).collect();
    BatchNormTrainBackward::new(
        tensor_from(dx, shape),
        channel_tensor::<T>(&gamma_grad),
        channel_tensor::<T>(&beta_grad),
    )
}
