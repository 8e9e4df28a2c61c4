//! The CPU backend's kernels that clrtrain patches (vendor/burn-flex: NCHW im2col and direct
//! convolutions with their input, weight and bias gradients; batch normalisation and its
//! gradients; max pooling with indices and its gradient; ReLU and its gradient; concatenation;
//! element-wise arithmetic in parallel chunks) against their
//! definitions, computed here by plain loops in f64.

use burn::tensor::module::{
    batch_norm, batch_norm_train, conv2d, max_pool2d, max_pool2d_with_indices,
};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{DType, Device, Tensor, TensorData};

/// Deterministic values in [-0.5, 0.5).
fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i + seed) * 7919 % 263) as f32 / 263.0) - 0.5)
        .collect()
}

fn tensor<const D: usize>(data: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data.to_vec(), shape), device)
}

fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// Within 1e-4 × (1 + |value|) of the f64 definition.
fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_close_sum(got, want, &vec![0.0; want.len()], what);
}

/// Rounding allowed per unit of `Σ |term|` in a long f32 sum, on top of 1e-4 × (1 + |value|): a
/// weight gradient adds `images · positions` products (8,448 in the 33 images of 16×16, whose
/// absolute values add to about 500), and Winograd's F(2×4, 3×3) carries them through transforms
/// with coefficients up to 8 and 1/24 that cancel at the end. The excess over that first bound
/// measured at most 5.6e-8 · `Σ |term|` on these shapes (f32's epsilon is 1.2e-7); one product
/// wrong by a value's size (≥ 1e-3 here) is still caught.
const SUM_ROUNDING: f64 = 2.5e-7;

/// Within 1e-4 × (1 + |value|) of the f64 definition, plus [`SUM_ROUNDING`] · `scale` for sums
/// whose terms' absolute values add to `scale` ([`assert_close`]: none).
fn assert_close_sum(got: &[f32], want: &[f64], scale: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, ((g, w), s)) in got.iter().zip(want).zip(scale).enumerate() {
        let tolerance = 1e-4 * (1.0 + w.abs()) + SUM_ROUNDING * s;
        let error = (*g as f64 - w).abs();
        assert!(
            error < tolerance,
            "{what}[{i}]: {g} vs {w} (terms' |sum| {s})"
        );
    }
}

/// One 2D convolution's shape: NCHW input, `[out, c / groups, k, k]` kernel.
#[derive(Debug, Clone, Copy)]
struct Conv {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    groups: usize,
}

impl Conv {
    fn out_hw(&self) -> (usize, usize) {
        let span = self.dilation * (self.k - 1) + 1;
        let size = |len: usize| (len + 2 * self.pad - span) / self.stride + 1;
        (size(self.h), size(self.w))
    }

    fn x_len(&self) -> usize {
        self.n * self.c * self.h * self.w
    }

    fn w_len(&self) -> usize {
        self.out * (self.c / self.groups) * self.k * self.k
    }

    fn y_len(&self) -> usize {
        let (oh, ow) = self.out_hw();
        self.n * self.out * oh * ow
    }

    /// Every product of the definition `y[b,o,i,j] = Σ x[b,ci,i·s+u·d-p,j·s+v·d-p] · w[o,ci',u,v]`
    /// (inside the image; ci in o's group) as `(y index, x index, w index, o)`.
    fn taps(&self, mut f: impl FnMut(usize, usize, usize, usize)) {
        let (oh, ow) = self.out_hw();
        let (cg, og) = (self.c / self.groups, self.out / self.groups);
        for b in 0..self.n {
            for o in 0..self.out {
                for (i, j) in (0..oh).flat_map(|i| (0..ow).map(move |j| (i, j))) {
                    let yi = ((b * self.out + o) * oh + i) * ow + j;
                    for cl in 0..cg {
                        let ci = (o / og) * cg + cl;
                        for (u, v) in (0..self.k).flat_map(|u| (0..self.k).map(move |v| (u, v))) {
                            let yy =
                                (i * self.stride + u * self.dilation) as isize - self.pad as isize;
                            let xx =
                                (j * self.stride + v * self.dilation) as isize - self.pad as isize;
                            if yy < 0 || xx < 0 || yy as usize >= self.h || xx as usize >= self.w {
                                continue;
                            }
                            let xi =
                                ((b * self.c + ci) * self.h + yy as usize) * self.w + xx as usize;
                            let wi = ((o * cg + cl) * self.k + u) * self.k + v;
                            f(yi, xi, wi, o);
                        }
                    }
                }
            }
        }
    }
}

/// Forward output and the gradients of `Σ y·r` (r fixed) for input, kernel and bias, computed by
/// the backend through autodiff and by the definition.
fn check_convolution(conv: Conv) {
    let device = Device::flex().autodiff();
    let (x, w, bias) = (
        values(conv.x_len(), 1),
        values(conv.w_len(), 101),
        values(conv.out, 7),
    );
    let r = values(conv.y_len(), 53);
    let (oh, ow) = conv.out_hw();

    let xt = tensor(&x, [conv.n, conv.c, conv.h, conv.w], &device).require_grad();
    let wt = tensor(
        &w,
        [conv.out, conv.c / conv.groups, conv.k, conv.k],
        &device,
    )
    .require_grad();
    let bt = tensor(&bias, [conv.out], &device).require_grad();
    let options = ConvOptions::new(
        [conv.stride; 2],
        [conv.pad; 2],
        [conv.dilation; 2],
        conv.groups,
    );
    let y = conv2d(xt.clone(), wt.clone(), Some(bt.clone()), options);
    let loss = (y.clone() * tensor(&r, [conv.n, conv.out, oh, ow], &device)).sum();
    let grads = loss.backward();

    let mut want_y: Vec<f64> = (0..conv.y_len())
        .map(|yi| bias[yi / (oh * ow) % conv.out] as f64)
        .collect();
    let (mut want_dx, mut want_dw, mut want_db) = (
        vec![0.0; conv.x_len()],
        vec![0.0; conv.w_len()],
        vec![0.0; conv.out],
    );
    let mut dw_scale = vec![0.0; conv.w_len()];
    conv.taps(|yi, xi, wi, _| {
        want_y[yi] += x[xi] as f64 * w[wi] as f64;
        want_dx[xi] += r[yi] as f64 * w[wi] as f64;
        want_dw[wi] += r[yi] as f64 * x[xi] as f64;
        dw_scale[wi] += (r[yi] as f64 * x[xi] as f64).abs();
    });
    for (yi, &g) in r.iter().enumerate() {
        want_db[yi / (oh * ow) % conv.out] += g as f64;
    }

    let what = |t: &str| format!("{t} of {conv:?}");
    assert_close(&read(y), &want_y, &what("output"));
    assert_close(
        &read(xt.grad(&grads).expect("x grad")),
        &want_dx,
        &what("input gradient"),
    );
    assert_close_sum(
        &read(wt.grad(&grads).expect("w grad")),
        &want_dw,
        &dw_scale,
        &what("weight gradient"),
    );
    assert_close(
        &read(bt.grad(&grads).expect("b grad")),
        &want_db,
        &what("bias gradient"),
    );
}

#[test]
fn convolutions_and_their_gradients_match_the_definition() {
    let base = Conv {
        n: 3,
        c: 4,
        h: 9,
        w: 7,
        out: 6,
        k: 3,
        stride: 1,
        pad: 1,
        dilation: 1,
        groups: 1,
    };
    let many_channels = Conv {
        c: 37,
        out: 13,
        h: 12,
        w: 11,
        ..base
    };
    let five_by_five = Conv {
        c: 16,
        out: 7,
        k: 5,
        pad: 2,
        h: 12,
        w: 11,
        ..base
    };
    for conv in [
        base, // the model's 3×3 "same"
        Conv {
            stride: 2,
            pad: 0,
            ..base
        }, // the model's 3×3 stride-2 "valid"
        Conv {
            k: 1,
            pad: 0,
            ..base
        }, // the model's 1×1 (no im2col)
        Conv {
            c: 3,
            out: 8,
            ..base
        }, // the model's first layer: few input channels
        Conv {
            k: 1,
            stride: 2,
            pad: 0,
            ..base
        }, // 1×1 strided: one phase of four
        Conv {
            dilation: 2,
            pad: 2,
            ..base
        },
        Conv { groups: 2, ..base },
        Conv {
            k: 2,
            stride: 3,
            pad: 1,
            ..base
        }, // even kernel, stride larger than it: phases no tap reads
        // Stride-1 shapes for the direct correlation kernels (AVX2/FMA and AVX-512): more input
        // channels than one channel block (32); output channels (and, for the input gradient,
        // input channels) that leave every partial block — AVX-512 tiles of 12 rows then 8, 4, 2
        // and 1, AVX2 of 6 then 4, 2 and 1; maps whose padded rows do not fill whole tiles. The
        // first two also take the direct weight gradient (16 input channels or more): the first
        // as tap tiles of one 16-lane vector, 3 of its lanes padding (AVX2: its 37 × 9 columns 6
        // at a time, tiles spanning two input channels, the last of 3); the second as dot
        // products (at least 128 positions) in blocks of 4, 2 and 1 rows, with a kernel row wider
        // than their 3 columns per call.
        many_channels,
        five_by_five,
        // Weight gradients for 45 output channels: on 40×6 maps (too narrow for Winograd) as tap
        // tiles (AVX-512: two vectors then one; AVX2: three 16-lane blocks) in 48 lanes, over 11
        // chunks of 3 images in groups of 2 and 1 (240 positions: 46,080 bytes of transposed
        // output gradient per image against 128 KiB); on 17×14, 16×16 and 7×7 maps as Winograd
        // tiles (below), as are the forward passes and input gradients of those three, on 17×14
        // and 7×7 maps several images side by side (below).
        Conv {
            n: 33,
            c: 16,
            h: 40,
            w: 6,
            out: 45,
            ..base
        },
        Conv {
            n: 33,
            c: 16,
            h: 17,
            w: 14,
            out: 45,
            ..base
        },
        Conv {
            n: 33,
            c: 16,
            h: 16,
            w: 16,
            out: 45,
            ..base
        },
        Conv {
            n: 33,
            c: 20,
            h: 7,
            w: 7,
            out: 45,
            ..base
        },
        // The weight gradient's chunk sums added in two parallel blocks: 40 × 9 × 48 = 17,280
        // values, 16,384 per block (Winograd's 3 chunks of 16, 16 and 1 images; without AVX2
        // the GEMM's 11 chunks of 3).
        Conv {
            n: 33,
            c: 40,
            h: 7,
            w: 7,
            out: 48,
            ..base
        },
        // Winograd F(2×4, 3×3) forward, input and weight gradients (16 channels or more on both
        // sides, maps of 15×15 or more, or of 7×7 or more in strips (below); also the 16×16 shape
        // above, its weight gradient in chunks of 4 images transformed one by one, its 45 output
        // channels in a tile of three 16-lane vectors on AVX-512 and of one on AVX2): 37 input
        // channels (two channel blocks; the weight gradient's point tiles of 8 or 6 channels, the
        // last partial), output rows of 10 tiles of 4 columns (two 8-tile vectors, the last
        // partial; the last tile one column of the odd 37-wide map), and 20 rows of tiles in two
        // blocks of 10 (24 × (37 + 24) × 10 × 4 bytes per tile row against 1 MiB: the weight
        // gradient's passes one block of one image); then "valid" on odd maps (15 × 17 outputs: a
        // last tile row of one row, a last tile of one column), whose input gradient pads by 2;
        // then the model's 15×15 maps over 70 images, chunks of 5: a weight-gradient pass of 4
        // images (4 × 32 tiles), then one of 1. Several images side by side in one strip (each
        // image's padded columns `4 · across` after the one before, the last two shared): forward
        // and input gradient on the 7×7 maps above over 33 images in strips of 8 then 1, each
        // image's eighth output column (outside the map, thrown away) reading the next image's
        // first input column; on the 17×14 maps in strips of 2 (36 tiles each: 16 strips, then 1);
        // on these 15×15 maps in 35 strips of 2; the weight gradient's passes on 7×7 maps in chunks
        // of 16, 16 and 1 images, on 17×14 maps in 8 chunks of 4 and one of 1, on 15×15 maps of 4
        // then 1. One image per call where the input does not end within its slot (16×16) or the
        // slot is not whole 8-column vectors (15 × 17 outputs: 5 tiles across), or an image takes
        // two blocks (40×37). The Winograd weight
        // gradient sums transformed values up to ≈ 20 times the inputs' and ≈ 30 times the
        // gradients' in f32, then carries them back through `G₂ᵀ · G₄`: its error passes 1e-4 × (1
        // + |value|) on the longest passes, by at most 5.6e-8 × the products' absolute sum
        // (`SUM_ROUNDING`); the forward passes and input gradients, strips included (kernel
        // transformed in f32), are off by up to 5.8e-6. (On 64 images of 96 → 32 on 32×32 the
        // weight gradient measured 1.35e-4, against 6.0e-5 for plain f32 sums of the direct
        // products.)
        Conv {
            c: 37,
            h: 40,
            w: 37,
            out: 24,
            ..base
        },
        Conv {
            n: 2,
            c: 16,
            h: 17,
            w: 19,
            out: 20,
            pad: 0,
            ..base
        },
        Conv {
            n: 70,
            c: 16,
            h: 15,
            w: 15,
            out: 20,
            ..base
        },
        // 1×1 forward and input gradient on AVX-512, read and written in place: two channel
        // blocks (37 input channels, 13 output channels for the input gradient; the second block
        // adds to what the first wrote) on 12×11 maps, 132 positions: 4 tiles of 32, then one
        // ending at the last position, which writes its 28 positions shared with the tile before
        // again; and a map smaller than one tile (5×5), which takes the padded copy. The base
        // shape's 1×1 above: one tile, then one sharing 31 positions with it.
        Conv {
            k: 1,
            pad: 0,
            ..many_channels
        },
        Conv {
            k: 1,
            pad: 0,
            h: 5,
            w: 5,
            ..many_channels
        },
        // 1×1 in place on the AVX2 set too (maps of 1024 positions or more): 33×33, 1089
        // positions, 68 tiles of 16 (34 of 32 on AVX-512), then one sharing 15 (31) with the last.
        Conv {
            k: 1,
            pad: 0,
            h: 33,
            w: 33,
            ..many_channels
        },
        // 1×1 weight gradients as tiles of input channels read straight from the input: 21 input
        // channels (AVX-512: 8, 8, then 5 with the last read in the missing ones' place; AVX2: 6,
        // 6, 6, then 3), 45 output channels (AVX-512: one tile of three vectors; AVX2: three),
        // 16×16 maps in groups of 2 and 1 images and 7×7 maps all 3 at once.
        Conv {
            n: 33,
            c: 21,
            h: 16,
            w: 16,
            out: 45,
            k: 1,
            pad: 0,
            ..base
        },
        Conv {
            n: 33,
            c: 21,
            h: 7,
            w: 7,
            out: 45,
            k: 1,
            pad: 0,
            ..base
        },
        // Stride 2, forward and input gradient as sums over phases, the weight gradient as
        // AVX-512 tap tiles: "same" padding on odd, non-square maps, and "valid" as in the
        // model's downsample blocks, over 11 chunks of 3 images.
        Conv {
            c: 16,
            h: 12,
            w: 11,
            out: 20,
            stride: 2,
            ..base
        },
        Conv {
            n: 33,
            c: 17,
            h: 15,
            w: 15,
            out: 45,
            stride: 2,
            pad: 0,
            ..base
        },
        // Stride 2 on rows of 37 (odd "same" padding) and 32 ("valid", as in the model): each
        // row's phase columns gathered by whole vectors, then one by one.
        Conv {
            c: 16,
            h: 9,
            w: 37,
            out: 20,
            stride: 2,
            ..base
        },
        Conv {
            c: 16,
            h: 8,
            w: 32,
            out: 20,
            stride: 2,
            pad: 0,
            ..base
        },
        // Stride 2 through phases with more input channels than one channel block, and a 5×5
        // kernel (phase sub-kernels of 3×3, 3×2, 2×3 and 2×2, the middle two read at run time).
        Conv {
            stride: 2,
            ..many_channels
        },
        Conv {
            stride: 2,
            ..five_by_five
        },
        Conv { pad: 0, ..base }, // 3×3 "valid": the input gradient pads by 2
        Conv {
            k: 5,
            pad: 2,
            h: 4,
            w: 3,
            ..base
        }, // kernel wider than the image, width read at run time
        Conv {
            k: 2,
            pad: 1,
            ..base
        }, // even kernel, output larger than the input
        Conv {
            h: 1,
            w: 1,
            out: 7,
            ..base
        }, // one pixel
    ] {
        check_convolution(conv);
    }
}

/// The test above on each set of direct kernels this CPU runs (AVX2; AVX-512 where present), not
/// only on the one it picks by default: the test binary runs that test again with
/// `FLEX_CONV_KERNELS` set (the kernels are chosen once per process).
#[test]
fn convolutions_match_the_definition_on_every_kernel_set() {
    #[cfg(target_arch = "x86_64")]
    for (kernels, present) in [
        ("avx2", std::is_x86_feature_detected!("avx2")),
        ("avx512", std::is_x86_feature_detected!("avx512f")),
    ] {
        if !present || std::env::var_os("FLEX_CONV_KERNELS").is_some() {
            continue;
        }
        let name = "flex_kernels::convolutions_and_their_gradients_match_the_definition";
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", name, "--test-threads", "1"])
            .env("FLEX_CONV_KERNELS", kernels)
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{kernels}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Batch normalisation in training (batch statistics) and inference (given statistics), and the
/// training gradients of `Σ y·r` for input, gamma and beta, against the definition. Planes of 15
/// values (shorter than the sums' 16 lanes: all in the tail) and of 42 (two whole chunks, on
/// vectors where the CPU has AVX, and a tail of 10), both normalised in memory order; of 90 (the
/// forward pass channel by channel, the gradient in memory order) and of 552 (both channel by
/// channel).
#[test]
fn batch_norm_and_its_gradients_match_the_definition() {
    for shape in [(3, 4, 5, 3), (5, 3, 6, 7), (3, 4, 9, 10), (2, 3, 23, 24)] {
        check_batch_norm(shape);
    }
}

fn check_batch_norm((n, c, h, w): (usize, usize, usize, usize)) {
    let eps = 1e-5;
    let device = Device::flex().autodiff();
    let x = values(n * c * h * w, 3);
    let (gamma, beta) = (values(c, 17), values(c, 29));
    let r = values(n * c * h * w, 41);
    let channel = |i: usize| i / (h * w) % c;
    let count = (n * h * w) as f64;

    let xt = tensor(&x, [n, c, h, w], &device).require_grad();
    let gt = tensor(&gamma, [c], &device).require_grad();
    let bt = tensor(&beta, [c], &device).require_grad();
    let out = batch_norm_train(xt.clone(), gt.clone(), bt.clone(), eps);
    let grads = (out.output.clone() * tensor(&r, [n, c, h, w], &device))
        .sum()
        .backward();

    let mut mean = vec![0.0; c];
    let mut var = vec![0.0; c];
    for (i, &v) in x.iter().enumerate() {
        mean[channel(i)] += v as f64 / count;
    }
    for (i, &v) in x.iter().enumerate() {
        var[channel(i)] += (v as f64 - mean[channel(i)]).powi(2) / count;
    }
    let xhat = |i: usize| (x[i] as f64 - mean[channel(i)]) / (var[channel(i)] + eps).sqrt();
    let want_y: Vec<f64> = (0..x.len())
        .map(|i| gamma[channel(i)] as f64 * xhat(i) + beta[channel(i)] as f64)
        .collect();
    let (mut dbeta, mut dgamma) = (vec![0.0; c], vec![0.0; c]);
    for (i, &g) in r.iter().enumerate() {
        dbeta[channel(i)] += g as f64;
        dgamma[channel(i)] += g as f64 * xhat(i);
    }
    let want_dx: Vec<f64> = (0..x.len())
        .map(|i| {
            let ch = channel(i);
            let scale = gamma[ch] as f64 / (var[ch] + eps).sqrt();
            scale * (r[i] as f64 - dbeta[ch] / count - xhat(i) * dgamma[ch] / count)
        })
        .collect();

    assert_close(&read(out.output), &want_y, "output");
    assert_close(&read(out.mean), &mean, "batch mean");
    assert_close(&read(out.variance), &var, "batch variance");
    assert_close(
        &read(xt.grad(&grads).expect("x grad")),
        &want_dx,
        "input gradient",
    );
    assert_close(
        &read(gt.grad(&grads).expect("gamma grad")),
        &dgamma,
        "gamma gradient",
    );
    assert_close(
        &read(bt.grad(&grads).expect("beta grad")),
        &dbeta,
        "beta gradient",
    );

    // Inference: the given statistics, not the batch's.
    let plain = Device::flex();
    let (run_mean, run_var) = (
        values(c, 5),
        values(c, 9).iter().map(|v| v + 1.0).collect::<Vec<_>>(),
    );
    let y = batch_norm(
        tensor(&x, [n, c, h, w], &plain),
        tensor(&gamma, [c], &plain),
        tensor(&beta, [c], &plain),
        tensor(&run_mean, [c], &plain),
        tensor(&run_var, [c], &plain),
        eps,
    );
    let want: Vec<f64> = (0..x.len())
        .map(|i| {
            let ch = channel(i);
            (x[i] as f64 - run_mean[ch] as f64) / (run_var[ch] as f64 + eps).sqrt()
                * gamma[ch] as f64
                + beta[ch] as f64
        })
        .collect();
    assert_close(&read(y), &want, "inference output");
}

#[test]
fn relu_and_its_gradient_match_the_definition_whichever_buffer_they_write() {
    // Several of the kernel's parallel chunks (2^15 elements) and a ragged end; NaN must pass
    // through the ReLU and keep its gradient, as in PyTorch.
    let len = 3 * (1 << 15) + 123;
    let mut x = values(len, 11);
    x[7] = f32::NAN;
    x[len - 1] = 0.0;
    let r = values(len, 23);
    let want_y: Vec<f64> = x
        .iter()
        .map(|&v| if v.is_nan() || v > 0.0 { v as f64 } else { 0.0 })
        .collect();
    let want_dx: Vec<f64> = (0..len)
        .map(|i| {
            if x[i].is_nan() || x[i] > 0.0 {
                r[i] as f64
            } else {
                0.0
            }
        })
        .collect();
    let same = |got: &[f32], want: &[f64], what: &str| {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let equal = (g.is_nan() && w.is_nan()) || *g as f64 == *w;
            assert!(equal, "{what}[{i}]: {g} vs {w}");
        }
    };
    // Without autodiff: `x * 1` is a fresh tensor only the ReLU holds (overwritten); `x` itself
    // is still held here (the ReLU writes a new tensor).
    let plain = Device::flex();
    let xp = tensor(&x, [len], &plain);
    for (input, what) in [(xp.clone() * 1.0, "in place"), (xp.clone(), "new tensor")] {
        let y = burn::tensor::activation::relu(input);
        same(&read(y), &want_y, &format!("{what}: output"));
    }
    // With autodiff (which keeps the ReLU's input for the gradient), the gradient is written over
    // the output gradient when only the ReLU holds it. When it is a slice of a concatenation's
    // gradient — the second half, so not at the start of its storage: contiguous along axis 0,
    // one run of 2289 per row along axis 1 (as a channel slice is one run per image) — it is
    // written over the kept input if nothing else holds it (`x * 1`), else into a new tensor.
    let device = Device::flex().autodiff();
    let shape = [43, 2289];
    assert_eq!(shape[0] * shape[1], len);
    let xt = tensor(&x, shape, &device).require_grad();
    let rt = tensor(&r, shape, &device);
    let cases = [
        (xt.clone() * 1.0, None, "over the gradient"),
        (
            xt.clone() * 1.0,
            Some(0),
            "over the input, contiguous slice",
        ),
        (xt.clone(), Some(0), "into a new tensor, contiguous slice"),
        (xt.clone() * 1.0, Some(1), "over the input, slice in runs"),
        (xt.clone(), Some(1), "into a new tensor, slice in runs"),
    ];
    for (input, axis, what) in cases {
        let y = burn::tensor::activation::relu(input);
        let loss = match axis {
            Some(axis) => {
                let pad = Tensor::<2>::zeros(shape, &device);
                let weights = Tensor::cat(vec![rt.clone(), rt.clone()], axis);
                (Tensor::cat(vec![pad, y.clone()], axis) * weights).sum()
            }
            None => (y.clone() * rt.clone()).sum(),
        };
        let grads = loss.backward();
        same(&read(y), &want_y, &format!("{what}: output"));
        let dx = xt.grad(&grads).expect("x grad");
        same(&read(dx), &want_dx, &format!("{what}: input gradient"));
    }
}

/// `Tensor::cat` along `dim` of 4-dimensional tensors, computed by index arithmetic.
fn concatenated(parts: &[(Vec<f32>, [usize; 4])], dim: usize) -> Vec<f32> {
    let mut shape = parts[0].1;
    shape[dim] = parts.iter().map(|(_, s)| s[dim]).sum();
    let mut out = Vec::with_capacity(shape.iter().product());
    let outer: usize = shape[..dim].iter().product();
    for o in 0..outer {
        for (data, s) in parts {
            let run: usize = s[dim..].iter().product();
            out.extend_from_slice(&data[o * run..][..run]);
        }
    }
    out
}

#[test]
fn concatenation_matches_the_definition_serial_or_parallel() {
    // 33 images × 32 channels × 9 × 7 = 66528 elements concatenated in parallel (2^16 or more);
    // 2 images serially; along channels (the inception blocks') and along the last axis; one
    // input transposed (not contiguous) and one empty.
    let device = Device::flex();
    for (n, dim) in [(33, 1), (2, 1), (33, 3), (2, 0)] {
        let shapes = [[n, 5, 9, 7], [n, 11, 9, 7], [n, 0, 9, 7], [n, 16, 9, 7]];
        let shapes = shapes.map(|mut s| {
            if dim != 1 {
                s.swap(1, dim);
            }
            s
        });
        let parts: Vec<(Vec<f32>, [usize; 4])> = shapes
            .iter()
            .enumerate()
            .map(|(k, &s)| (values(s.iter().product(), 31 * k + 1), s))
            .collect();
        let tensors: Vec<Tensor<4>> = parts
            .iter()
            .enumerate()
            .map(|(k, (data, s))| {
                if k == 1 {
                    // The same values, stored with the last two axes swapped.
                    let (rows, cols) = (s[2], s[3]);
                    let mut stored = data.clone();
                    for (plane, out) in data.chunks(rows * cols).zip(stored.chunks_mut(rows * cols))
                    {
                        for (j, v) in out.iter_mut().enumerate() {
                            *v = plane[(j % rows) * cols + j / rows];
                        }
                    }
                    tensor(&stored, [s[0], s[1], cols, rows], &device).swap_dims(2, 3)
                } else {
                    tensor(data, *s, &device)
                }
            })
            .collect();
        let got = read(Tensor::cat(tensors, dim));
        let want = concatenated(&parts, dim);
        assert_eq!(got, want, "{n} images along axis {dim}");
    }
}

#[test]
fn element_wise_arithmetic_matches_the_definition_in_parallel_chunks() {
    // 2^18 + 5 elements: past the parallel threshold, with a ragged last chunk; `a` is shared, so
    // the sum is written over `b` (the swapped path) and the difference into `b` reversed.
    let len = (1 << 18) + 5;
    let (a, b) = (values(len, 3), values(len, 41));
    let device = Device::flex();
    let at = tensor(&a, [len], &device);
    let sum = read(at.clone() + tensor(&b, [len], &device));
    let difference = read(at.clone() - tensor(&b, [len], &device));
    let product = read(tensor(&a, [len], &device) * tensor(&b, [len], &device));
    for i in 0..len {
        assert_eq!(sum[i], a[i] + b[i], "sum[{i}]");
        assert_eq!(difference[i], a[i] - b[i], "difference[{i}]");
        assert_eq!(product[i], a[i] * b[i], "product[{i}]");
    }
}

/// One max pooling's shape: NCHW input, square window.
#[derive(Debug, Clone, Copy)]
struct Pool {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    ceil: bool,
}

impl Pool {
    /// Output length of one axis (PyTorch's rule: with `ceil`, a last window that would start in
    /// the end padding is dropped).
    fn out_len(&self, len: usize) -> usize {
        let span = self.dilation * (self.k - 1) + 1;
        let room = len + 2 * self.pad - span;
        let out = if self.ceil {
            room.div_ceil(self.stride) + 1
        } else {
            room / self.stride + 1
        };
        if self.ceil && (out - 1) * self.stride >= len + self.pad {
            out - 1
        } else {
            out
        }
    }

    fn options(&self) -> MaxPoolOptions<2> {
        MaxPoolOptions::new([self.k; 2])
            .with_stride([self.stride; 2])
            .with_padding([self.pad; 2])
            .with_dilation([self.dilation; 2])
            .with_ceil_mode(self.ceil)
    }

    /// The definition: each window scanned in row-major order, taking a value that is greater
    /// than the best so far or NaN (the first of equal maxima, the last NaN; PyTorch's rule).
    /// Returns each output's value and its flat index within its (batch, channel) plane.
    fn reference(&self, x: &[f32]) -> Vec<(f32, usize)> {
        let (oh, ow) = (self.out_len(self.h), self.out_len(self.w));
        let mut out = Vec::new();
        for plane in x.chunks(self.h * self.w).take(self.n * self.c) {
            for (i, j) in (0..oh).flat_map(|i| (0..ow).map(move |j| (i, j))) {
                let mut best: Option<(f32, usize)> = None;
                for (u, v) in (0..self.k).flat_map(|u| (0..self.k).map(move |v| (u, v))) {
                    let yy = (i * self.stride + u * self.dilation) as isize - self.pad as isize;
                    let xx = (j * self.stride + v * self.dilation) as isize - self.pad as isize;
                    if yy < 0 || xx < 0 || yy as usize >= self.h || xx as usize >= self.w {
                        continue;
                    }
                    let at = yy as usize * self.w + xx as usize;
                    let value = plane[at];
                    if best.is_none_or(|(b, _)| value > b || value.is_nan()) {
                        best = Some((value, at));
                    }
                }
                out.push(best.expect("every window holds an input element"));
            }
        }
        out
    }
}

/// Forward values and indices, and the gradient of `Σ y·r` (r fixed), against the definition.
fn check_max_pool(pool: Pool, x: &[f32]) {
    let shape = [pool.n, pool.c, pool.h, pool.w];
    let (oh, ow) = (pool.out_len(pool.h), pool.out_len(pool.w));
    let want = pool.reference(x);
    let what = format!("{pool:?}");

    // f32 takes the vectorised kernel where the CPU has AVX2, f64 the lane-by-lane one.
    let plain = Device::flex();
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    for input in [
        tensor(x, shape, &plain),
        Tensor::from_data(TensorData::new(x64, shape), (&plain, DType::F64)),
    ] {
        let dtype = input.dtype();
        let (y, indices) = max_pool2d_with_indices(input, pool.options());
        assert_eq!(y.dims(), [pool.n, pool.c, oh, ow], "{what}: output shape");
        let got: Vec<f32> = read(y);
        let got_idx: Vec<i64> = indices.into_data().iter::<i64>().collect();
        for (o, ((g, gi), (w, wi))) in got.iter().zip(&got_idx).zip(&want).enumerate() {
            let same = g == w || (g.is_nan() && w.is_nan());
            assert!(
                same && *gi == *wi as i64,
                "{what} {dtype:?} [{o}]: {g}@{gi} vs {w}@{wi}"
            );
        }
    }

    // Gradient: each output's r goes to the input its index names.
    let device = Device::flex().autodiff();
    let r = values(want.len(), 13);
    let xt = tensor(x, shape, &device).require_grad();
    let y = max_pool2d(xt.clone(), pool.options());
    let grads = (y * tensor(&r, [pool.n, pool.c, oh, ow], &device))
        .sum()
        .backward();
    let mut want_dx = vec![0.0; x.len()];
    let plane_out = oh * ow;
    for (o, &(_, at)) in want.iter().enumerate() {
        want_dx[o / plane_out * pool.h * pool.w + at] += r[o] as f64;
    }
    assert_close(
        &read(xt.grad(&grads).expect("x grad")),
        &want_dx,
        &format!("{what} input gradient"),
    );
}

/// Max pooling with indices (and its gradient) against the definition: the model's 3×3 stride-2
/// windows, stride 1 and 3 (the other read paths of the vectorised kernel), padding, dilation,
/// ceil mode, rows shorter and longer than a vector and not a multiple of one; values with many
/// ties (the first of equal maxima must win), NaN (the last NaN wins) and -inf.
#[test]
fn max_pooling_and_its_gradient_match_the_definition() {
    let shapes = [
        (2, 3, 32, 32, 3, 2, 0, 1, false),
        (2, 2, 15, 15, 3, 2, 0, 1, false),
        (1, 2, 13, 11, 3, 1, 1, 1, false),
        (1, 2, 17, 19, 2, 2, 0, 1, false),
        (1, 3, 20, 23, 3, 3, 1, 1, false),
        (1, 2, 12, 14, 3, 1, 2, 2, false),
        (2, 1, 10, 9, 3, 2, 1, 1, true),
        (1, 2, 5, 6, 2, 1, 0, 1, false),
        (1, 1, 1, 1, 1, 1, 0, 1, false),
    ];
    for (n, c, h, w, k, stride, pad, dilation, ceil) in shapes {
        let pool = Pool {
            n,
            c,
            h,
            w,
            k,
            stride,
            pad,
            dilation,
            ceil,
        };
        let len = n * c * h * w;
        // Four levels only: most windows hold equal maxima in several places.
        let ties: Vec<f32> = (0..len).map(|i| (i * 7919 % 13 % 4) as f32).collect();
        check_max_pool(pool, &ties);
        check_max_pool(pool, &values(len, 5));
    }

    // NaN wins, the last in row-major order; -inf windows still name their first element.
    let pool = Pool {
        n: 1,
        c: 2,
        h: 9,
        w: 10,
        k: 3,
        stride: 2,
        pad: 1,
        dilation: 1,
        ceil: false,
    };
    let mut x = values(180, 3);
    for at in [0, 1, 11, 12, 30, 31, 41, 77, 95, 96, 105] {
        x[at] = f32::NAN;
    }
    x[150..180].fill(f32::NEG_INFINITY);
    let want = pool.reference(&x);
    assert!(want.iter().any(|(v, _)| v.is_nan()) && want.iter().any(|(v, _)| *v < -1e30));
    check_max_pool(pool, &x);
}
