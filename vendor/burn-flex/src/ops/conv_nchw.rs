//! 2D convolution gradients, and the forward pass, as im2col + GEMM directly on NCHW data, one
//! image per task (added for clrtrain; see vendor/README.md).
//!
//! Burn's default backward ops run the input gradient through `conv_transpose2d` and the weight
//! gradient as a convolution whose kernel is the whole output map, both through NCHW <-> NHWC
//! copies. For MiniGoogLeNet on CIFAR-10 (batch 64) those two took two thirds of a training step,
//! up to ten times the forward time on 1x1 convolutions. Here every direction is one GEMM per
//! image (per group) against the image's im2col matrix:
//!
//! - forward:        `y[n]   = W · col(x[n]) + b`
//! - input gradient: `dx[n]  = col2im(Wᵀ · dy[n])`
//! - weight gradient: `dW   += dy[n] · col(x[n])ᵀ`
//!
//! A 1x1 convolution with stride 1 and no padding needs no im2col: `col(x[n])` is `x[n]` itself.
//! Where the CPU has AVX2 and FMA, stride-1 f32 convolutions compute their forward pass and input
//! gradient as direct correlations instead (`conv_direct`), 3x3 ones with 16 channels or more
//! on maps of 15x15 or more, or of 7x7 or more several images side by side, as Winograd tiles
//! (`conv_winograd`, their weight gradient too); with its AVX-512 kernels, 1x1 ones too, and
//! strided ones as sums of correlations over the input's phases (`conv_phases`).
//! The weight gradient is summed over image chunks whose number follows from the batch and the
//! shape, in order, so its value does not depend on the number of threads.

use alloc::vec;
use alloc::vec::Vec;
use core::mem::MaybeUninit;
use core::ops::Range;
use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape, bf16, f16};
use num_traits::Float;

use super::channel_sums::{lane_sum, per_channel, planes};
use super::conv_direct::{self, Correlation};
use super::conv_phases::Phases;
use super::conv_winograd;
use crate::{FlexTensor, Layout};

/// Number of partial weight gradients (image chunks) summed in order.
const WEIGHT_GRAD_CHUNKS: usize = 16;

/// Element types computed natively (half types go through f32).
pub(crate) trait Real:
    Float + bytemuck::Pod + burn_backend::Element + Send + Sync + 'static
{
}
impl Real for f32 {}
impl Real for f64 {}

/// Shapes of one convolution: input `[batch, c_in, h, w]`, weight `[c_out, c_in / groups, kh,
/// kw]`, output spatial size `oh x ow`.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    batch: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    groups: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
    oh: usize,
    ow: usize,
}

impl Geometry {
    fn new(x: &Shape, weight: &Shape, out_hw: [usize; 2], options: &ConvOptions<2>) -> Self {
        Self {
            batch: x[0],
            c_in: x[1],
            h: x[2],
            w: x[3],
            c_out: weight[0],
            groups: options.groups,
            kh: weight[2],
            kw: weight[3],
            stride: options.stride,
            pad: options.padding_begin(),
            dilation: options.dilation,
            oh: out_hw[0],
            ow: out_hw[1],
        }
    }

    /// Output size of the forward pass (the end padding may differ from the begin padding).
    fn forward_out(x: &Shape, weight: &Shape, options: &ConvOptions<2>) -> [usize; 2] {
        let size = |i: usize| {
            let span = options.dilation[i] * (weight[2 + i] - 1) + 1;
            let padded = x[2 + i] + options.padding[i].0 + options.padding[i].1;
            (padded - span) / options.stride[i] + 1
        };
        [size(0), size(1)]
    }

    fn in_image(&self) -> usize {
        self.c_in * self.h * self.w
    }
    fn out_image(&self) -> usize {
        self.c_out * self.positions()
    }
    fn positions(&self) -> usize {
        self.oh * self.ow
    }
    fn c_in_group(&self) -> usize {
        self.c_in / self.groups
    }
    fn c_out_group(&self) -> usize {
        self.c_out / self.groups
    }
    /// Rows of the im2col matrix (and columns of the weight matrix) per group.
    fn group_rows(&self) -> usize {
        self.c_in_group() * self.kh * self.kw
    }
    fn weight_len(&self) -> usize {
        self.c_out * self.group_rows()
    }
    /// A 1x1 convolution whose im2col matrix is the image itself.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.pad == [0, 0]
    }
    /// What every direct path needs: one group, the same stride on both axes, no dilation.
    fn correlation_shaped(&self) -> bool {
        self.groups == 1 && self.stride[0] == self.stride[1] && self.dilation == [1, 1]
    }
    /// The forward pass as a direct correlation, where its micro-kernel runs (1x1: where it beats
    /// the GEMM; f32 only).
    fn direct(&self) -> Option<Correlation> {
        self.strided_direct().filter(|c| c.stride == 1)
    }
    /// [`Geometry::direct`] with any stride equal on both axes: what the weight gradient's tap
    /// tiles take.
    fn strided_direct(&self) -> Option<Correlation> {
        let eligible = self.correlation_shaped()
            && (!self.pointwise() || conv_direct::pointwise_pays(self.h * self.w))
            // the input gradient pads the output gradient by `k - 1 - pad`
            && self.pad[0] < self.kh
            && self.pad[1] < self.kw
            && conv_direct::available();
        eligible.then_some(Correlation {
            c_in: self.c_in,
            c_out: self.c_out,
            kh: self.kh,
            kw: self.kw,
            in_h: self.h,
            in_w: self.w,
            top: self.pad[0],
            left: self.pad[1],
            out_h: self.oh,
            out_w: self.ow,
            stride: self.stride[0],
        })
    }
    /// The input gradient as a direct correlation: the output gradient correlated with the
    /// kernel turned 180°, input and output channels swapped.
    fn direct_transposed(&self) -> Option<Correlation> {
        self.direct().map(|c| Correlation {
            c_in: c.c_out,
            c_out: c.c_in,
            in_h: c.out_h,
            in_w: c.out_w,
            top: c.kh - 1 - c.top,
            left: c.kw - 1 - c.left,
            out_h: c.in_h,
            out_w: c.in_w,
            ..c
        })
    }
    /// A strided convolution (equal strides of 2 or more, dilation 1) as stride-1 correlations
    /// over the input's phases, on both direct kernel sets (f32 only).
    fn phases(&self) -> Option<Phases> {
        let eligible = self.correlation_shaped()
            && self.stride[0] >= 2
            && self.h > 0
            && self.w > 0
            && conv_direct::available();
        eligible.then_some(Phases {
            s: self.stride[0],
            c_in: self.c_in,
            c_out: self.c_out,
            kh: self.kh,
            kw: self.kw,
            h: self.h,
            w: self.w,
            top: self.pad[0],
            left: self.pad[1],
            out_h: self.oh,
            out_w: self.ow,
        })
    }
    /// Weight `[o][i][ky][kx]` of `ws`, what the kernels are packed from, the strides taken once:
    /// a division by the groups for every weight made the (serial) packing ≈ 5.5 % of a 144 → 96
    /// stride-2 forward pass or input gradient, ≈ 3.7 % without.
    fn weights<'a>(&self, ws: &'a [f32]) -> impl Fn(usize, usize, usize, usize) -> f32 + Copy + 'a {
        let (c_in, kh, kw) = (self.c_in_group(), self.kh, self.kw);
        move |o, i, ky, kx| ws[((o * c_in + i) * kh + ky) * kw + kx]
    }
    /// Length of one image's im2col matrix (none for a pointwise convolution).
    fn col_len(&self) -> usize {
        if self.pointwise() {
            0
        } else {
            self.c_in * self.kh * self.kw * self.positions()
        }
    }
}

/// Whether the NCHW path computes the forward pass: faster than flex's NHWC im2col and its
/// small-channel kernel on every MiniGoogLeNet shape measured (e.g. 3 -> 96 channels, 3x3:
/// 5 ms against 24 ms for a batch of 64). Grouped convolutions keep flex's own (depthwise) paths.
pub(crate) fn handles_forward(x: &FlexTensor, options: &ConvOptions<2>) -> bool {
    matches!(x.dtype(), DType::F32 | DType::F64) && options.groups == 1
}

/// Forward 2D convolution (f32 and f64).
pub(crate) fn conv2d(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let out_hw = Geometry::forward_out(x.layout().shape(), weight.layout().shape(), options);
    let g = Geometry::new(x.layout().shape(), weight.layout().shape(), out_hw, options);
    match x.dtype() {
        DType::F32 => match (g.direct(), g.phases()) {
            (Some(c), _) => direct_forward(&g, &c, x, weight, bias),
            (None, Some(p)) => phased_forward(&g, &p, x, weight, bias),
            (None, None) => conv2d_typed::<f32>(&g, x, weight, bias),
        },
        DType::F64 => conv2d_typed::<f64>(&g, x, weight, bias),
        dtype => panic!("conv2d (NCHW): unsupported dtype {dtype:?}"),
    }
}

/// Gradient of a 2D convolution with respect to its input.
pub(crate) fn conv2d_x_backward(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let x_shape = x.layout().shape().clone();
    drop(x);
    through_f32(
        [weight, output_grad],
        |[weight, output_grad]| match weight.dtype() {
            DType::F64 => x_backward_typed::<f64>(&x_shape, weight, output_grad, options),
            _ => direct_x_backward(&x_shape, weight, output_grad, options).unwrap_or_else(
                |(weight, output_grad)| {
                    x_backward_typed::<f32>(&x_shape, weight, output_grad, options)
                },
            ),
        },
    )
}

/// Gradient of a 2D convolution with respect to its weight.
pub(crate) fn conv2d_weight_backward(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let w_shape = weight.layout().shape().clone();
    drop(weight);
    through_f32([x, output_grad], |[x, output_grad]| match x.dtype() {
        DType::F64 => weight_backward_typed::<f64>(x, &w_shape, output_grad, options),
        _ => direct_weight_backward(x, &w_shape, output_grad, options).unwrap_or_else(
            |(x, output_grad)| weight_backward_typed::<f32>(x, &w_shape, output_grad, options),
        ),
    })
}

/// Gradient of a 2D convolution with respect to its bias: the output gradient summed per channel.
pub(crate) fn conv2d_bias_backward(output_grad: FlexTensor) -> FlexTensor {
    match output_grad.dtype() {
        DType::F64 => bias_backward_typed::<f64>(output_grad),
        DType::F32 => bias_backward_typed::<f32>(output_grad),
        dtype => {
            let (to, from) = half_casts(dtype);
            from(bias_backward_typed::<f32>(to(output_grad)))
        }
    }
}

fn bias_backward_typed<T: Real>(output_grad: FlexTensor) -> FlexTensor {
    let shape = output_grad.layout().shape().clone();
    let d @ (_, channels, _) = (shape[0], shape[1], shape[2] * shape[3]);
    let dy = output_grad.to_contiguous();
    let dys: &[T] = dy.as_slice().expect("contiguous");
    let db = per_channel(channels, |c| {
        let sum: f64 = planes(dys, d, c).map(|p| lane_sum(p, |v| v)).sum();
        T::from(sum).unwrap_or(T::nan())
    });
    tensor_from(db, Shape::from(vec![channels]))
}

/// Runs `f` on f32/f64 tensors as they are, and on half-precision ones converted to f32 and back.
fn through_f32(
    tensors: [FlexTensor; 2],
    f: impl FnOnce([FlexTensor; 2]) -> FlexTensor,
) -> FlexTensor {
    match tensors[0].dtype() {
        DType::F32 | DType::F64 => f(tensors),
        dtype => {
            let (to, from) = half_casts(dtype);
            from(f(tensors.map(to)))
        }
    }
}

pub(super) type Cast = fn(FlexTensor) -> FlexTensor;

/// Conversions to f32 and back for a half-precision dtype (these kernels compute f32 and f64).
pub(super) fn half_casts(dtype: DType) -> (Cast, Cast) {
    use super::module::{cast_from_f32, cast_to_f32};
    match dtype {
        DType::F16 => (
            |t| cast_to_f32(t, f16::to_f32),
            |t| cast_from_f32(t, f16::from_f32),
        ),
        DType::BF16 => (
            |t| cast_to_f32(t, bf16::to_f32),
            |t| cast_from_f32(t, bf16::from_f32),
        ),
        dtype => panic!("unsupported dtype {dtype:?}"),
    }
}

pub(super) fn tensor_from<T: Real>(data: Vec<T>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(shape),
        T::dtype(),
    )
}

/// A stride-1 correlation's kernel, prepared once per call: as Winograd tiles where they pay
/// (`conv_winograd`), for the direct correlation otherwise.
enum Prepared {
    Direct(Vec<f32>),
    Winograd(conv_winograd::Kernel),
}

impl Prepared {
    fn new(c: &Correlation, value: impl Fn(usize, usize, usize, usize) -> f32) -> Self {
        if conv_winograd::pays(c) {
            Prepared::Winograd(conv_winograd::transform_kernel(c, value))
        } else {
            Prepared::Direct(conv_direct::pack_kernel(c, value))
        }
    }

    fn scratch_len(&self, c: &Correlation) -> usize {
        match self {
            Prepared::Direct(_) => c.scratch_len(),
            Prepared::Winograd(_) => conv_winograd::scratch_len(c),
        }
    }

    /// Images per call of [`Prepared::correlate`]: Winograd's products take the tiles of several
    /// small images at once.
    fn images_per_call(&self, c: &Correlation) -> usize {
        match self {
            Prepared::Direct(_) => 1,
            Prepared::Winograd(_) => conv_winograd::images_per_call(c),
        }
    }

    /// The correlation of up to [`Prepared::images_per_call`] images (one after another in
    /// `input` and `out`) into `out` (every element written), adding `bias`.
    fn correlate(
        &self,
        c: &Correlation,
        input: &[f32],
        bias: Option<&[f32]>,
        out: &mut [MaybeUninit<f32>],
        scratch: &mut [f32],
    ) {
        match self {
            Prepared::Direct(k) => conv_direct::correlate(c, k, input, bias, out, scratch),
            Prepared::Winograd(k) => conv_winograd::correlate(c, k, input, bias, out, scratch),
        }
    }

    /// [`Prepared::correlate`] over a batch (`input` of images of `c.input_len()`), in parallel.
    fn correlate_batch(
        &self,
        c: &Correlation,
        batch: usize,
        input: &[f32],
        bias: Option<&[f32]>,
    ) -> Vec<f32> {
        let group = self.images_per_call(c);
        let images = |n: usize, out: &mut [MaybeUninit<f32>], scratch: &mut [f32]| {
            let count = out.len() / c.output_len();
            let x = &input[n * c.input_len()..][..count * c.input_len()];
            self.correlate(c, x, bias, out, scratch);
        };
        let scratch_len = self.scratch_len(c);
        // SAFETY: `correlate` writes every element of its images.
        unsafe { fill_each_group(batch, c.output_len(), group, scratch_len, images) }
    }
}

/// The forward pass as one direct correlation per image (f32).
fn direct_forward(
    g: &Geometry,
    c: &Correlation,
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
) -> FlexTensor {
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let bias = bias.map(|b| b.to_contiguous());
    let xs: &[f32] = x.as_slice().expect("contiguous");
    let ws: &[f32] = weight.as_slice().expect("contiguous");
    let bs: Option<&[f32]> = bias.as_ref().map(|b| b.as_slice().expect("contiguous"));
    let kernel = Prepared::new(c, g.weights(ws));
    let out = kernel.correlate_batch(c, g.batch, xs, bs);
    tensor_from(out, Shape::from(vec![g.batch, g.c_out, g.oh, g.ow]))
}

/// A strided forward pass as a sum of direct correlations over each image's phases (f32).
fn phased_forward(
    g: &Geometry,
    p: &Phases,
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
) -> FlexTensor {
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let bias = bias.map(|b| b.to_contiguous());
    let xs: &[f32] = x.as_slice().expect("contiguous");
    let ws: &[f32] = weight.as_slice().expect("contiguous");
    let bs: Option<&[f32]> = bias.as_ref().map(|b| b.as_slice().expect("contiguous"));
    let w = g.weights(ws);
    let kernels: Vec<_> = p.phases().map(|ph| p.forward_kernel(ph, w)).collect();
    let image = |n: usize, y: &mut [MaybeUninit<f32>], scratch: &mut [f32]| {
        let x_n = &xs[n * g.in_image()..][..g.in_image()];
        p.forward_image(&kernels, x_n, bs, y, scratch);
    };
    let (per_image, scratch_len) = (g.out_image(), p.forward_scratch_len());
    // SAFETY: `forward_image` writes every element of its image.
    let out = unsafe { fill_each_group(g.batch, per_image, 1, scratch_len, image) };
    tensor_from(out, Shape::from(vec![g.batch, g.c_out, g.oh, g.ow]))
}

/// The input gradient as one direct correlation per image (f32; strided convolutions over
/// phases), or the tensors back where neither applies.
fn direct_x_backward(
    x_shape: &Shape,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> Result<FlexTensor, (FlexTensor, FlexTensor)> {
    let dy_shape = output_grad.layout().shape();
    let g = Geometry::new(
        x_shape,
        weight.layout().shape(),
        [dy_shape[2], dy_shape[3]],
        options,
    );
    let Some(c) = g.direct_transposed() else {
        return match g.phases() {
            Some(p) => Ok(phased_x_backward(&g, &p, weight, output_grad)),
            None => Err((weight, output_grad)),
        };
    };
    let (weight, output_grad) = (weight.to_contiguous(), output_grad.to_contiguous());
    let ws: &[f32] = weight.as_slice().expect("contiguous");
    let dys: &[f32] = output_grad.as_slice().expect("contiguous");
    // Output channel `ci`, input channel `co`: the forward kernel turned 180°.
    let w = g.weights(ws);
    let kernel = Prepared::new(&c, |ci, co, ky, kx| w(co, ci, g.kh - 1 - ky, g.kw - 1 - kx));
    let dx = kernel.correlate_batch(&c, g.batch, dys, None);
    Ok(tensor_from(dx, x_shape.clone()))
}

/// A strided convolution's input gradient as one direct correlation per phase of each image's
/// input gradient, laid in place (f32).
fn phased_x_backward(
    g: &Geometry,
    p: &Phases,
    weight: FlexTensor,
    output_grad: FlexTensor,
) -> FlexTensor {
    let (weight, output_grad) = (weight.to_contiguous(), output_grad.to_contiguous());
    let ws: &[f32] = weight.as_slice().expect("contiguous");
    let dys: &[f32] = output_grad.as_slice().expect("contiguous");
    let w = g.weights(ws);
    let kernels: Vec<_> = p
        .phases()
        .map(|ph| p.input_gradient_kernel(ph, w))
        .collect();
    let image = |n: usize, dx_n: &mut [MaybeUninit<f32>], scratch: &mut [f32]| {
        let dy_n = &dys[n * g.out_image()..][..g.out_image()];
        p.input_gradient_image(&kernels, dy_n, dx_n, scratch);
    };
    let (per_image, scratch_len) = (g.in_image(), p.gradient_scratch_len());
    // SAFETY: `input_gradient_image` writes every element of its image.
    let dx = unsafe { fill_each_group(g.batch, per_image, 1, scratch_len, image) };
    tensor_from(dx, Shape::from(vec![g.batch, g.c_in, g.h, g.w]))
}

fn conv2d_typed<T: Real>(
    g: &Geometry,
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
) -> FlexTensor {
    let g = *g;
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let bias = bias.map(|b| b.to_contiguous());
    let xs: &[T] = x.as_slice().expect("contiguous");
    let ws: &[T] = weight.as_slice().expect("contiguous");
    let bs: Option<&[T]> = bias.as_ref().map(|b| b.as_slice().expect("contiguous"));

    let mut out = vec![T::zero(); g.batch * g.out_image()];
    for_each_image(&mut out, g.out_image(), g.col_len(), |n, y, col| {
        let x_n = &xs[n * g.in_image()..][..g.in_image()];
        let col: &[T] = if g.pointwise() {
            x_n
        } else {
            im2col(&g, x_n, col);
            col
        };
        let p = g.positions();
        if let Some(b) = bs {
            for (row, &v) in y.chunks_mut(p).zip(b) {
                row.fill(v);
            }
        }
        for grp in 0..g.groups {
            let (m, k) = (g.c_out_group(), g.group_rows());
            gemm(
                Mat::row_major(&mut y[grp * m * p..], p),
                Operand::row_major(&ws[grp * m * k..], k),
                Operand::row_major(&col[grp * k * p..], p),
                [m, p, k],
                bs.is_some(),
            );
        }
    });
    tensor_from(out, Shape::from(vec![g.batch, g.c_out, g.oh, g.ow]))
}

fn x_backward_typed<T: Real>(
    x_shape: &Shape,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let dy_shape = output_grad.layout().shape();
    let g = Geometry::new(
        x_shape,
        weight.layout().shape(),
        [dy_shape[2], dy_shape[3]],
        options,
    );
    let (weight, output_grad) = (weight.to_contiguous(), output_grad.to_contiguous());
    let ws: &[T] = weight.as_slice().expect("contiguous");
    let dys: &[T] = output_grad.as_slice().expect("contiguous");

    let mut dx = vec![T::zero(); g.batch * g.in_image()];
    for_each_image(&mut dx, g.in_image(), g.col_len(), |n, dx_n, dcol| {
        let dy_n = &dys[n * g.out_image()..][..g.out_image()];
        let (m, k, p) = (g.c_out_group(), g.group_rows(), g.positions());
        // dcol (k x p) = Wᵀ (k x m) · dy (m x p), per group
        let columns = |dcol: &mut [T]| {
            for grp in 0..g.groups {
                gemm(
                    Mat::row_major(&mut dcol[grp * k * p..], p),
                    Operand::transposed(&ws[grp * m * k..], k),
                    Operand::row_major(&dy_n[grp * m * p..], p),
                    [k, p, m],
                    false,
                );
            }
        };
        if g.pointwise() {
            columns(dx_n);
        } else {
            columns(dcol);
            col2im(&g, dcol, dx_n);
        }
    });
    tensor_from(dx, x_shape.clone())
}

fn weight_backward_typed<T: Real>(
    x: FlexTensor,
    w_shape: &Shape,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let dy_shape = output_grad.layout().shape();
    let g = Geometry::new(
        x.layout().shape(),
        w_shape,
        [dy_shape[2], dy_shape[3]],
        options,
    );
    let (x, output_grad) = (x.to_contiguous(), output_grad.to_contiguous());
    let xs: &[T] = x.as_slice().expect("contiguous");
    let dys: &[T] = output_grad.as_slice().expect("contiguous");

    let dw = sum_over_chunks(g.batch, 1, g.weight_len(), |images, dw: &mut [T]| {
        with_scratch(g.col_len(), |col: &mut [T]| {
            let (m, k, p) = (g.c_out_group(), g.group_rows(), g.positions());
            for n in images.clone() {
                let x_n = &xs[n * g.in_image()..][..g.in_image()];
                let dy_n = &dys[n * g.out_image()..][..g.out_image()];
                let col: &[T] = if g.pointwise() {
                    x_n
                } else {
                    im2col(&g, x_n, col);
                    col
                };
                for grp in 0..g.groups {
                    // dW (m x k) += dy (m x p) · colᵀ (p x k)
                    gemm(
                        Mat::row_major(&mut dw[grp * m * k..], k),
                        Operand::row_major(&dy_n[grp * m * p..], p),
                        Operand::transposed(&col[grp * k * p..], p),
                        [m, k, p],
                        true,
                    );
                }
            }
        });
    });
    tensor_from(dw, w_shape.clone())
}

/// The weight gradient computed directly over chunks of images (f32), as Winograd tiles where
/// they pay ([`conv_winograd::pays`]), or the tensors back where the direct
/// kernels do not apply or do not pay ([`conv_direct::weight_gradient_pays`]).
fn direct_weight_backward(
    x: FlexTensor,
    w_shape: &Shape,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> Result<FlexTensor, (FlexTensor, FlexTensor)> {
    let dy_shape = output_grad.layout().shape();
    let g = Geometry::new(
        x.layout().shape(),
        w_shape,
        [dy_shape[2], dy_shape[3]],
        options,
    );
    let direct = |c: &Correlation| {
        conv_winograd::pays(c) || conv_direct::weight_gradient_pays(c)
    };
    let Some(c) = g.strided_direct().filter(direct) else {
        return Err((x, output_grad));
    };
    let (x, output_grad) = (x.to_contiguous(), output_grad.to_contiguous());
    let xs: &[f32] = x.as_slice().expect("contiguous");
    let dys: &[f32] = output_grad.as_slice().expect("contiguous");
    let winograd = conv_winograd::pays(&c);
    let sums_len = if winograd {
        c.kernel_len()
    } else {
        c.weight_sums_len()
    };
    // Winograd's passes want whole chunks of images (16 of 7×7); the direct sums any.
    let least = if winograd {
        conv_winograd::gradient_chunk(&c)
    } else {
        1
    };
    let sums = sum_over_chunks(g.batch, least, sums_len, |images, sums: &mut [f32]| {
        let x = &xs[images.start * g.in_image()..images.end * g.in_image()];
        let dy = &dys[images.start * g.out_image()..images.end * g.out_image()];
        if winograd {
            let scratch_len = conv_winograd::weight_scratch_len(&c);
            with_scratch(scratch_len, |scratch: &mut [f32]| {
                conv_winograd::weight_gradient(&c, x, dy, sums, scratch)
            });
        } else {
            let scratch_len = c.weight_scratch_len(images.len());
            with_scratch(scratch_len, |scratch: &mut [f32]| {
                conv_direct::weight_gradient(&c, x, dy, sums, scratch)
            });
        }
    });
    let dw = if winograd {
        sums
    } else {
        conv_direct::kernel_gradient(&c, sums)
    };
    Ok(tensor_from(dw, w_shape.clone()))
}

/// `Σ partial(images)` over the batch cut into a fixed number of image chunks
/// ([`WEIGHT_GRAD_CHUNKS`], fewer where a chunk needs at least `least` images), each computed (in
/// parallel) into a zeroed buffer of `len` and summed in order, so that the result does not
/// depend on the number of threads; the sum in parallel blocks of [`SUM_BLOCK`] elements.
fn sum_over_chunks<T: Real>(
    batch: usize,
    least: usize,
    len: usize,
    partial: impl Fn(Range<usize>, &mut [T]) + Send + Sync,
) -> Vec<T> {
    let chunk = batch.div_ceil(WEIGHT_GRAD_CHUNKS).max(least).max(1);
    let part = |c: usize| {
        let mut sum = vec![T::zero(); len];
        partial(c * chunk..((c + 1) * chunk).min(batch), &mut sum);
        sum
    };
    let chunks = batch.div_ceil(chunk);
    #[cfg(feature = "rayon")]
    let partials: Vec<Vec<T>> = {
        use rayon::prelude::*;
        (0..chunks).into_par_iter().map(part).collect()
    };
    #[cfg(not(feature = "rayon"))]
    let partials: Vec<Vec<T>> = (0..chunks).map(part).collect();

    let mut parts = partials.into_iter();
    let mut total = parts.next().unwrap_or_else(|| vec![T::zero(); len]);
    let rest: Vec<Vec<T>> = parts.collect();
    let add = |(b, block): (usize, &mut [T])| add_chunks(block, &rest, b * SUM_BLOCK);
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        total.par_chunks_mut(SUM_BLOCK).enumerate().for_each(add);
    }
    #[cfg(not(feature = "rayon"))]
    total.chunks_mut(SUM_BLOCK).enumerate().for_each(add);
    total
}

/// Elements per task of the chunks' sum in [`sum_over_chunks`].
const SUM_BLOCK: usize = 1 << 14;

/// Adds to `block` (elements `start..` of the sum) the same elements of each chunk in `rest`, in
/// order.
fn add_chunks<T: Real>(block: &mut [T], rest: &[Vec<T>], start: usize) {
    for chunk in rest {
        for (a, &b) in block.iter_mut().zip(&chunk[start..]) {
            *a = *a + b;
        }
    }
}

/// Calls `f(n, out_n, scratch)` for every image `n`, in parallel, with `out` split into images of
/// `per_image` elements and a scratch buffer of `scratch_len` (contents unspecified).
fn for_each_image<T: Real, O: Send>(
    out: &mut [O],
    per_image: usize,
    scratch_len: usize,
    f: impl Fn(usize, &mut [O], &mut [T]) + Send + Sync,
) {
    if per_image == 0 {
        return;
    }
    let run = |(n, out_n): (usize, &mut [O])| with_scratch(scratch_len, |s| f(n, out_n, s));
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(per_image).enumerate().for_each(run);
    }
    #[cfg(not(feature = "rayon"))]
    out.chunks_mut(per_image).enumerate().for_each(run);
}

/// A new buffer of `images × per_image` elements written, without zeroing it first, by
/// `f(n, out, scratch)` for `group` images at a time, in parallel as in [`for_each_image`]:
/// images `n .. n + group` (fewer in the last call), `out` holding theirs.
///
/// # Safety
/// `f` must write every element of its `out`.
unsafe fn fill_each_group(
    images: usize,
    per_image: usize,
    group: usize,
    scratch_len: usize,
    f: impl Fn(usize, &mut [MaybeUninit<f32>], &mut [f32]) + Send + Sync,
) -> Vec<f32> {
    let len = images * per_image;
    let mut out = Vec::with_capacity(len);
    for_each_image(
        &mut out.spare_capacity_mut()[..len],
        per_image * group,
        scratch_len,
        |k, out_k, scratch| f(k * group, out_k, scratch),
    );
    // SAFETY: the groups cover all `len` elements and `f` wrote each (the caller's promise).
    unsafe { out.set_len(len) };
    out
}

#[cfg(feature = "std")]
std::thread_local! {
    /// Per-thread im2col buffer, kept between calls: a fresh multi-megabyte buffer per image
    /// costs page faults and zeroing that showed up in the profile.
    static SCRATCH: core::cell::RefCell<Vec<u64>> = const { core::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with a scratch slice of `len` elements (contents unspecified).
fn with_scratch<T: Real, R>(len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    #[cfg(feature = "std")]
    {
        let words = (len * core::mem::size_of::<T>()).div_ceil(8);
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => {
                if buf.len() < words {
                    buf.resize(words, 0);
                }
                let s: &mut [T] = bytemuck::cast_slice_mut(&mut buf[..words]);
                f(&mut s[..len])
            }
            // Only if `f` re-entered on this thread (a work-stealing wait): a buffer of its own.
            Err(_) => f(&mut vec![T::zero(); len]),
        })
    }
    #[cfg(not(feature = "std"))]
    f(&mut vec![T::zero(); len])
}

/// Output positions `[lo, hi)` along one axis whose input index `o * stride + offset` lies in
/// `[0, len)`.
fn valid_range(out_len: usize, len: usize, stride: usize, offset: isize) -> (usize, usize) {
    let lo = if offset >= 0 { 0 } else { (-offset) as usize }
        .div_ceil(stride)
        .min(out_len);
    let end = len as isize - offset;
    let hi = if end <= 0 {
        0
    } else {
        (end as usize).div_ceil(stride).min(out_len)
    };
    (lo, hi.max(lo))
}

/// Visits every (im2col row, output row) pair with the input row it reads and the valid output
/// columns: `visit(col_row_index, oy, Some((iy, x_lo, x_hi, x_offset)))`, or `None` when the whole
/// output row falls in the padding.
fn for_each_tap(
    g: &Geometry,
    mut visit: impl FnMut(usize, usize, usize, Option<(usize, usize, usize, isize)>),
) {
    let mut row = 0;
    for ci in 0..g.c_in {
        for ky in 0..g.kh {
            let off_y = (ky * g.dilation[0]) as isize - g.pad[0] as isize;
            let (y_lo, y_hi) = valid_range(g.oh, g.h, g.stride[0], off_y);
            for kx in 0..g.kw {
                let off_x = (kx * g.dilation[1]) as isize - g.pad[1] as isize;
                let (x_lo, x_hi) = valid_range(g.ow, g.w, g.stride[1], off_x);
                for oy in 0..g.oh {
                    let tap = (oy >= y_lo && oy < y_hi).then(|| {
                        let iy = ((oy * g.stride[0]) as isize + off_y) as usize;
                        (iy, x_lo, x_hi, off_x)
                    });
                    visit(row, ci, oy, tap);
                }
                row += 1;
            }
        }
    }
}

/// im2col of one image: row `(ci, ky, kx)`, column `(oy, ox)` holds the input pixel the kernel
/// tap reads at that output position, zero in the padding.
fn im2col<T: Real>(g: &Geometry, x: &[T], col: &mut [T]) {
    let (p, plane) = (g.positions(), g.h * g.w);
    let sx = g.stride[1];
    for_each_tap(g, |row, ci, oy, tap| {
        let dst = &mut col[row * p + oy * g.ow..][..g.ow];
        let Some((iy, lo, hi, off_x)) = tap else {
            dst.fill(T::zero());
            return;
        };
        let src = &x[ci * plane + iy * g.w..][..g.w];
        dst[..lo].fill(T::zero());
        dst[hi..].fill(T::zero());
        if sx == 1 {
            let start = (lo as isize + off_x) as usize;
            dst[lo..hi].copy_from_slice(&src[start..start + hi - lo]);
        } else {
            for (ox, d) in dst.iter_mut().enumerate().take(hi).skip(lo) {
                *d = src[((ox * sx) as isize + off_x) as usize];
            }
        }
    });
}

/// Adjoint of [`im2col`]: adds every column entry back onto the input pixel it was read from.
fn col2im<T: Real>(g: &Geometry, col: &[T], dx: &mut [T]) {
    let (p, plane) = (g.positions(), g.h * g.w);
    let sx = g.stride[1];
    dx.fill(T::zero());
    for_each_tap(g, |row, ci, oy, tap| {
        let Some((iy, lo, hi, off_x)) = tap else {
            return;
        };
        let src = &col[row * p + oy * g.ow..][..g.ow];
        let dst = &mut dx[ci * plane + iy * g.w..][..g.w];
        if sx == 1 {
            let start = (lo as isize + off_x) as usize;
            for (d, &s) in dst[start..start + hi - lo].iter_mut().zip(&src[lo..hi]) {
                *d = *d + s;
            }
        } else {
            for (ox, &s) in src.iter().enumerate().take(hi).skip(lo) {
                let d = &mut dst[((ox * sx) as isize + off_x) as usize];
                *d = *d + s;
            }
        }
    });
}

/// A row-major output matrix: `data[i * row_stride + j]`.
struct Mat<'a, T> {
    data: &'a mut [T],
    row_stride: usize,
}

impl<'a, T> Mat<'a, T> {
    fn row_major(data: &'a mut [T], row_stride: usize) -> Self {
        Self { data, row_stride }
    }
}

/// A GEMM operand: element `(i, j)` at `data[i * row_stride + j * col_stride]`.
struct Operand<'a, T> {
    data: &'a [T],
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T> Operand<'a, T> {
    fn row_major(data: &'a [T], row_stride: usize) -> Self {
        Self {
            data,
            row_stride,
            col_stride: 1,
        }
    }
    /// The transpose of a row-major matrix with row stride `stride`.
    fn transposed(data: &'a [T], stride: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: stride,
        }
    }
    fn last_index(&self, rows: usize, cols: usize) -> usize {
        (rows - 1) * self.row_stride + (cols - 1) * self.col_stride
    }
}

/// `dst (m x n) = [dst +] lhs (m x k) · rhs (k x n)`, single-threaded (images run in parallel).
fn gemm<T: Real>(dst: Mat<T>, lhs: Operand<T>, rhs: Operand<T>, [m, n, k]: [usize; 3], add: bool) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    // The raw-pointer GEMM below reads and writes only inside these bounds.
    assert!((m - 1) * dst.row_stride + n <= dst.data.len());
    assert!(lhs.last_index(m, k) < lhs.data.len());
    assert!(rhs.last_index(k, n) < rhs.data.len());
    // SAFETY: the asserts above keep every access inside the slices; dst does not alias the
    // operands (it is a distinct &mut).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            1,
            dst.row_stride as isize,
            add,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
