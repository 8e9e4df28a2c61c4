//! Per-shape timing of MiniGoogLeNet's convolutions and batch norms on `flex` (batch 64), called
//! directly on the backend: forward, input gradient and weight gradient through the vendored
//! NCHW kernels (vendor/burn-flex, what training runs), next to what Burn and burn-flex 0.22.1
//! do without the patch (flex's NHWC forward, Burn's default backward ops built from
//! `conv_transpose2d` and a swapped-axes convolution, Burn's default batch norm built from tensor
//! ops), and the downsample blocks' max pooling. Run on an idle machine:
//! `cargo run --release --example conv_ops`, or `... -- 7` for the convolutions on 7×7 maps only
//! (no batch norm or pooling); `--patched` skips the unpatched paths (seconds instead of a minute).
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::conv::calculate_padding_out;
use burn::backend::ops::{ConvOptions, ConvTransposeOptions, FloatTensorOps, ModuleOps};
use burn::backend::{IntDType, Scalar, TensorMetadata};
use burn::tensor::Shape;
use burn::tensor::TensorData;
use std::time::Instant;

/// MiniGoogLeNet's convolutions: (c_in, c_out, kernel, stride, padding, input size).
const SHAPES: [(usize, usize, usize, usize, usize, usize); 19] = [
    (3, 96, 3, 1, 1, 32),
    (96, 32, 1, 1, 0, 32),
    (96, 32, 3, 1, 1, 32),
    (64, 32, 1, 1, 0, 32),
    (64, 48, 3, 1, 1, 32),
    (80, 80, 3, 2, 0, 32),
    (160, 112, 1, 1, 0, 15),
    (160, 48, 3, 1, 1, 15),
    (160, 96, 1, 1, 0, 15),
    (160, 64, 3, 1, 1, 15),
    (160, 80, 1, 1, 0, 15),
    (160, 80, 3, 1, 1, 15),
    (160, 48, 1, 1, 0, 15),
    (160, 96, 3, 1, 1, 15),
    (144, 96, 3, 2, 0, 15),
    (240, 176, 1, 1, 0, 7),
    (240, 160, 3, 1, 1, 7),
    (336, 176, 1, 1, 0, 7),
    (336, 160, 3, 1, 1, 7),
];

fn tensor(shape: [usize; 4], seed: u64) -> FlexTensor {
    let len = shape.iter().product::<usize>();
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let data: Vec<f32> = (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    FlexTensor::from_data(TensorData::new(data, shape))
}

/// Milliseconds per call, best of `reps` after one warm-up call.
fn time(mut f: impl FnMut(), reps: usize) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// burn-flex 0.22.1's own forward convolution (NHWC im2col), reached through conv3d with a depth
/// of one, which the patch leaves as it was.
fn unpatched_forward(x: &FlexTensor, w: &FlexTensor, o: &ConvOptions<2>) -> FlexTensor {
    let expand = |t: &FlexTensor| {
        let [a, b, h, w] = t.shape().dims::<4>();
        Flex::float_reshape(t.clone(), Shape::new([a, b, 1, h, w]))
    };
    let o3 = ConvOptions::new(
        [1, o.stride[0], o.stride[1]],
        [0, o.padding[0].0, o.padding[1].0],
        [1, o.dilation[0], o.dilation[1]],
        o.groups,
    );
    Flex::conv3d(expand(x), expand(w), None, o3)
}

/// Burn's default input gradient: a transposed convolution.
fn default_x_grad(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    o: &ConvOptions<2>,
) -> FlexTensor {
    let [_, _, h, wd] = x.shape().dims::<4>();
    let [_, _, kh, kw] = w.shape().dims::<4>();
    let [_, _, oh, ow] = dy.shape().dims::<4>();
    let pad_out = [
        calculate_padding_out(kh, o.stride[0], o.padding[0].0, o.dilation[0], h, oh),
        calculate_padding_out(kw, o.stride[1], o.padding[1].0, o.dilation[1], wd, ow),
    ];
    let options = ConvTransposeOptions::new(
        o.stride,
        [o.padding[0].0, o.padding[1].0],
        pad_out,
        o.dilation,
        o.groups,
    );
    Flex::conv_transpose2d(dy.clone(), w.clone(), None, options)
}

/// Burn's default weight gradient: a convolution of the input with the output gradient, batch
/// and channel axes swapped (kernel = the whole output map).
fn default_w_grad(x: &FlexTensor, dy: &FlexTensor, o: &ConvOptions<2>) -> FlexTensor {
    let options = ConvOptions::new(o.dilation, [o.padding[0].0, o.padding[1].0], o.stride, 1);
    let x = Flex::float_swap_dims(x.clone(), 0, 1);
    let dy = Flex::float_swap_dims(dy.clone(), 0, 1);
    Flex::float_swap_dims(Flex::conv2d(x, dy, None, options), 0, 1)
}

/// Command line: `[MAP_SIZE] [--patched]`.
struct Args {
    /// Only the convolutions on maps of this size (no batch norm or pooling).
    only_hw: Option<usize>,
    /// Skip the unpatched paths (their columns read NaN): a run of seconds instead of a minute.
    patched_only: bool,
}

fn args() -> Args {
    let mut parsed = Args {
        only_hw: None,
        patched_only: false,
    };
    for arg in std::env::args().skip(1) {
        match (arg.as_str(), arg.parse()) {
            ("--patched", _) => parsed.patched_only = true,
            (_, Ok(hw)) if parsed.only_hw.is_none() => parsed.only_hw = Some(hw),
            _ => {
                eprintln!(
                    "usage: conv_ops [MAP_SIZE] [--patched]   (e.g. 7: the convolutions on 7×7 \
                     maps; --patched: without the unpatched paths)"
                );
                std::process::exit(2);
            }
        }
    }
    parsed
}

fn main() {
    let Args {
        only_hw,
        patched_only,
    } = args();
    // The unpatched paths' figures, unless skipped.
    let unpatched = |f: &mut dyn FnMut()| if patched_only { f64::NAN } else { time(f, 5) };
    let n = 64;
    let mut totals = [0.0f64; 6];
    let skipped = if patched_only {
        " (unpatched: NaN, skipped)"
    } else {
        ""
    };
    println!("milliseconds per call, best of 5; unpatched → patched{skipped}");
    println!("c_in c_out k s  hw        forward      input grad     weight grad");
    let shapes = SHAPES.iter().filter(|s| only_hw.is_none_or(|hw| s.5 == hw));
    for &(cin, cout, k, s, p, hw) in shapes {
        let o = ConvOptions::new([s, s], [p, p], [1, 1], 1);
        let out = (hw + 2 * p - k) / s + 1;
        let x = tensor([n, cin, hw, hw], 1);
        let w = tensor([cout, cin, k, k], 2);
        let dy = tensor([n, cout, out, out], 3);
        let t = [
            unpatched(&mut || drop(unpatched_forward(&x, &w, &o))),
            time(
                || drop(Flex::conv2d(x.clone(), w.clone(), None, o.clone())),
                5,
            ),
            unpatched(&mut || drop(default_x_grad(&x, &w, &dy, &o))),
            time(
                || {
                    drop(Flex::conv2d_x_backward(
                        x.clone(),
                        w.clone(),
                        dy.clone(),
                        o.clone(),
                    ))
                },
                5,
            ),
            unpatched(&mut || drop(default_w_grad(&x, &dy, &o))),
            time(
                || {
                    drop(Flex::conv2d_weight_backward(
                        x.clone(),
                        w.clone(),
                        dy.clone(),
                        o.clone(),
                    ))
                },
                5,
            ),
        ];
        println!(
            "{cin:4} {cout:5} {k} {s} {hw:3} {:6.1} → {:5.1} {:6.1} → {:5.1} {:6.1} → {:5.1}",
            t[0], t[1], t[2], t[3], t[4], t[5]
        );
        for (total, v) in totals.iter_mut().zip(t) {
            *total += v;
        }
    }
    let t = totals;
    println!(
        "all convolutions: forward {:.0} → {:.0} ms, input gradient {:.0} → {:.0} ms, weight gradient {:.0} → {:.0} ms",
        t[0], t[1], t[2], t[3], t[4], t[5]
    );
    if only_hw.is_none() {
        batch_norm(n, &unpatched);
        max_pooling(n);
    }
}

/// The downsample blocks' 3×3 stride-2 max pooling with indices, forward and backward.
fn max_pooling(n: usize) {
    let (k, s, none) = ([3, 3], [2, 2], [0, 0]);
    for (c, hw) in [(80, 32), (144, 15)] {
        let x = tensor([n, c, hw, hw], 8);
        let pool =
            || Flex::max_pool2d_with_indices(x.clone(), k, s, none, [1, 1], false, IntDType::I64);
        let f = time(|| drop(pool()), 5);
        let out = pool();
        let dy = tensor(out.output.shape().dims::<4>(), 9);
        let b = time(
            || {
                drop(Flex::max_pool2d_with_indices_backward(
                    x.clone(),
                    k,
                    s,
                    none,
                    [1, 1],
                    false,
                    dy.clone(),
                    out.indices.clone(),
                ))
            },
            5,
        );
        println!(
            "max pool 3x3 stride 2 [{n}, {c}, {hw}, {hw}]: forward {f:.2} ms, backward {b:.2} ms"
        );
    }
}

/// Burn's default `batch_norm_train` (tensor ops): what flex ran before the patch.
fn default_bn_train(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor) -> FlexTensor {
    type B = Flex;
    let shape = x.shape();
    let channels = shape[1];
    let flat = Shape::new([channels, shape.num_elements() / channels]);
    let per_channel = Shape::new([1, channels, 1, 1]);
    let mean = B::float_mean_dim(
        B::float_reshape(B::float_swap_dims(x.clone(), 0, 1), flat.clone()),
        1,
    );
    let mean = B::float_reshape(mean, per_channel.clone());
    let centered = B::float_sub(x.clone(), mean.clone());
    let var = B::float_mean_dim(
        B::float_reshape(
            B::float_swap_dims(B::float_mul(centered.clone(), centered), 0, 1),
            flat,
        ),
        1,
    );
    let var = B::float_reshape(var, per_channel.clone());
    let std = B::float_sqrt(B::float_add_scalar(var, Scalar::Float(1e-5)));
    let normalized = B::float_div(B::float_sub(x, mean), std);
    let gamma = B::float_reshape(gamma, per_channel.clone());
    let beta = B::float_reshape(beta, per_channel);
    B::float_add(B::float_mul(normalized, gamma), beta)
}

/// Batch-norm training forward and backward for the model's activation shapes.
fn batch_norm(n: usize, unpatched: &dyn Fn(&mut dyn FnMut()) -> f64) {
    let (mut t_default, mut t_fwd, mut t_bwd) = (0.0, 0.0, 0.0);
    for (c, hw) in [
        (96, 32),
        (32, 32),
        (48, 32),
        (80, 15),
        (112, 15),
        (64, 15),
        (176, 7),
        (160, 7),
    ] {
        let x = tensor([n, c, hw, hw], 4);
        let dy = tensor([n, c, hw, hw], 5);
        let gamma = tensor([1, c, 1, 1], 6);
        let gamma = Flex::float_reshape(gamma, Shape::new([c]));
        let beta = Flex::float_reshape(tensor([1, c, 1, 1], 7), Shape::new([c]));
        let d = unpatched(&mut || drop(default_bn_train(x.clone(), gamma.clone(), beta.clone())));
        let f = time(
            || {
                drop(Flex::batch_norm_train(
                    x.clone(),
                    gamma.clone(),
                    beta.clone(),
                    1e-5,
                ))
            },
            5,
        );
        let stats = Flex::batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
        let b = time(
            || {
                drop(Flex::batch_norm_train_backward(
                    x.clone(),
                    gamma.clone(),
                    stats.mean.clone(),
                    stats.variance.clone(),
                    1e-5,
                    dy.clone(),
                ))
            },
            5,
        );
        println!(
            "batch norm {:?}: forward {d:.2} → {f:.2} ms, patched backward {b:.2} ms",
            x.shape().dims::<4>()
        );
        (t_default, t_fwd, t_bwd) = (t_default + d, t_fwd + f, t_bwd + b);
    }
    println!("batch norms: forward {t_default:.1} → {t_fwd:.1} ms, patched backward {t_bwd:.1} ms");
}
