//! Strided 2D convolutions as sums of stride-1 correlations over the input's phases (added for
//! clrtrain; see vendor/README.md).
//!
//! With stride `s`, output `(y, x)` reads the zero-padded input at `(s·y + ky, s·x + kx)`. Write
//! `ky = s·m + a`, `kx = s·n + b`: tap `(ky, kx)` reads phase `(a, b)` of the padded input,
//! `P_ab[u][v] = padded[s·u + a][s·v + b]`, at `(y + m, x + n)`. So the forward pass is a sum over
//! phases of stride-1 correlations ([`conv_direct`]), phase `(a, b)` with the sub-kernel
//! `w_ab[o][i][m][n] = w[o][i][s·m + a][s·n + b]`; and the input gradient at phase `(a, b)` of
//! the padded input is `D_ab[i][u][v] = Σ_o Σ_mn w_ab[o][i][m][n] · dy[o][u - m][v - n]`, one
//! stride-1 correlation of the output gradient each, laid back in place. Every tap is computed
//! once (for a 3×3 kernel and stride 2: sub-kernels of 2×2, 2×1, 1×2 and 1×1), at the direct
//! kernels' pace instead of im2col + GEMM's. Phases that no tap reads (`a ≥ kh`) add nothing to
//! the output, and their input gradient is zero.
//!
//! The phases share one layout, phase `(0, 0)`'s (the largest sub-kernel): the forward pass lays
//! every phase of an image out once in its padded rows, straight from the input, and sums the
//! phases' correlations in one pass over the output (`conv_direct::Part`); the input gradient
//! pads the output gradient once, each phase reading it from where its smaller padding starts,
//! and writes each phase's sums straight to their places in the input gradient.

use super::conv_direct::{self, Correlation, MAX_TILE, Part};
use alloc::vec::Vec;
use core::mem::MaybeUninit;

/// One image's strided convolution, stride `s` on both axes, dilation 1: input `c_in × h × w`,
/// zero padding `top`/`left` before it (and as much after as the output needs), kernel
/// `c_out × c_in × kh × kw`, output `c_out × out_h × out_w`.
#[derive(Clone, Copy, Debug)]
pub struct Phases {
    pub s: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub h: usize,
    pub w: usize,
    pub top: usize,
    pub left: usize,
    pub out_h: usize,
    pub out_w: usize,
}

/// Phase `(a, b)` and the size of its sub-kernel, `⌈(kh - a)/s⌉ × ⌈(kw - b)/s⌉`.
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    a: usize,
    b: usize,
    kh: usize,
    kw: usize,
}

impl Phases {
    /// The phases that some tap reads, `(0, 0)` (the largest sub-kernel) first: phase
    /// `k = a · cols + b` is `(a, b)`, for `a < rows` and `b < cols` ([`Phases::grid`]).
    pub fn phases(&self) -> impl Iterator<Item = Phase> + use<> {
        let p = *self;
        let (rows, cols) = p.grid();
        (0..rows * cols).map(move |k| {
            let (a, b) = (k / cols, k % cols);
            Phase {
                a,
                b,
                kh: (p.kh - a).div_ceil(p.s),
                kw: (p.kw - b).div_ceil(p.s),
            }
        })
    }

    /// Phase `ph`'s part of the forward pass: its input rows and columns (as many as the output
    /// reads) correlated with its sub-kernel, stride 1, no padding.
    pub fn forward(&self, ph: Phase) -> Correlation {
        Correlation {
            c_in: self.c_in,
            c_out: self.c_out,
            kh: ph.kh,
            kw: ph.kw,
            in_h: self.out_h + ph.kh - 1,
            in_w: self.out_w + ph.kw - 1,
            top: 0,
            left: 0,
            out_h: self.out_h,
            out_w: self.out_w,
            stride: 1,
        }
    }

    /// Packs phase `ph`'s forward sub-kernel from the convolution's `w(o, i, ky, kx)`.
    pub fn forward_kernel(
        &self,
        ph: Phase,
        w: impl Fn(usize, usize, usize, usize) -> f32,
    ) -> Vec<f32> {
        let s = self.s;
        conv_direct::pack_kernel(&self.forward(ph), |o, i, m, n| {
            w(o, i, s * m + ph.a, s * n + ph.b)
        })
    }

    /// Rows and columns of phases that some tap reads: `min(s, kh)` × `min(s, kw)`.
    fn grid(&self) -> (usize, usize) {
        (self.s.min(self.kh), self.s.min(self.kw))
    }

    /// The first input column in phase column `b` (`x + left = s·v + b`), and its phase column
    /// `v`: where the forward pass's layout and the input gradient's start on each row.
    fn first_column(&self, b: usize) -> (usize, usize) {
        let x0 = (b + self.s - self.left % self.s) % self.s;
        (x0, (x0 + self.left) / self.s)
    }

    /// Phase `(0, 0)`, whose sub-kernel is the largest: its geometry is every phase's layout.
    fn first(&self) -> Phase {
        Phase {
            a: 0,
            b: 0,
            kh: self.kh.div_ceil(self.s),
            kw: self.kw.div_ceil(self.s),
        }
    }

    /// Scratch per image for [`Phases::forward_image`]: every phase laid out, and the sums.
    pub fn forward_scratch_len(&self) -> usize {
        let c = self.forward(self.first());
        self.laid_out_len() + c.c_out * c.positions()
    }

    /// Every phase laid out ([`Phases::lay_out`]), with room for the last tile reading past the
    /// last phase's last channel.
    fn laid_out_len(&self) -> usize {
        let c = self.forward(self.first());
        self.phases().count() * c.c_in * c.channel_stride() + MAX_TILE + c.kw
    }

    /// One image's forward pass: `x` (`c_in × h × w`) into `out` (`c_out × out_h × out_w`, every
    /// element written), adding `bias[o]`; `kernels` packed by [`Phases::forward_kernel`] in the
    /// order of [`Phases::phases`], `scratch` at least [`Phases::forward_scratch_len`].
    pub fn forward_image(
        &self,
        kernels: &[Vec<f32>],
        x: &[f32],
        bias: Option<&[f32]>,
        out: &mut [MaybeUninit<f32>],
        scratch: &mut [f32],
    ) {
        let c = self.forward(self.first());
        let phase_len = c.c_in * c.channel_stride();
        let count = self.phases().count();
        assert_eq!(kernels.len(), count);
        assert!(scratch.len() >= self.forward_scratch_len());
        let (padded, flat) = scratch.split_at_mut(self.laid_out_len());
        self.lay_out(x, padded);
        let parts: Vec<Part> = (self.phases().zip(kernels).enumerate())
            .map(|(k, (ph, kernel))| Part {
                src: &padded[k * phase_len..],
                kernel,
                kh: ph.kh,
                kw: ph.kw,
            })
            .collect();
        conv_direct::correlate_parts(&c, &parts, bias, out, flat);
    }

    /// Lays every phase of one input image (`c_in × h × w`) out in phase `(0, 0)`'s padded
    /// geometry, phase `k` of [`Phases::phases`] from `k · c_in · channel_stride`:
    /// `[i][u][v] = x[i][s·u + a - top][s·v + b - left]`, zero outside the input, between the
    /// channels and after the last phase.
    fn lay_out(&self, x: &[f32], padded: &mut [f32]) {
        let c = self.forward(self.first());
        let (pw, stride) = (c.padded_w(), c.channel_stride());
        assert_eq!(x.len(), self.c_in * self.h * self.w);
        assert!(padded.len() >= self.phases().count() * c.c_in * stride);
        // Zeros first (padding, the gaps between channels, the tail): one fill, then only the
        // values in place, row by row.
        padded.fill(0.0);
        let ((rows, cols), s) = (self.grid(), self.s);
        // Per phase column `b`: the phase columns `[v0, v1)` that read input columns
        // `x0 + s·(v - v0)`, inside the input.
        let columns: Vec<(usize, usize, usize)> = (0..cols)
            .map(|b| {
                let (x0, v0) = self.first_column(b);
                let v0 = v0.min(pw);
                let v1 = (self.w + self.left)
                    .saturating_sub(b)
                    .div_ceil(s)
                    .clamp(v0, pw);
                (v0, v1, x0)
            })
            .collect();
        // Each input row once, in order, into the phase rows that read it.
        for i in 0..self.c_in {
            for iy in 0..self.h {
                let (a, u) = ((iy + self.top) % s, (iy + self.top) / s);
                if a >= rows || u >= c.in_h {
                    continue;
                }
                // The row on to the image's end: `every_nth`'s vectors may read past the row.
                let src = &x[(i * self.h + iy) * self.w..];
                for (b, &(v0, v1, x0)) in columns.iter().enumerate() {
                    let at = (a * cols + b) * c.c_in * stride + i * stride + u * pw;
                    every_nth(s, &src[x0.min(src.len())..], &mut padded[at + v0..at + v1]);
                }
            }
        }
    }

    /// Phase `ph` of the input gradient: the output gradient (`c_out × out_h × out_w`) correlated
    /// with the sub-kernel turned 180°, padded by its size - 1 before, over enough rows and
    /// columns to cover the input.
    pub fn input_gradient(&self, ph: Phase) -> Correlation {
        Correlation {
            c_in: self.c_out,
            c_out: self.c_in,
            kh: ph.kh,
            kw: ph.kw,
            in_h: self.out_h,
            in_w: self.out_w,
            top: ph.kh - 1,
            left: ph.kw - 1,
            out_h: (self.h + self.top).div_ceil(self.s),
            out_w: (self.w + self.left).div_ceil(self.s),
            stride: 1,
        }
    }

    /// Packs phase `ph`'s input-gradient kernel from the convolution's `w(o, i, ky, kx)`.
    pub fn input_gradient_kernel(
        &self,
        ph: Phase,
        w: impl Fn(usize, usize, usize, usize) -> f32,
    ) -> Vec<f32> {
        let s = self.s;
        conv_direct::pack_kernel(&self.input_gradient(ph), |i, o, m, n| {
            w(o, i, s * (ph.kh - 1 - m) + ph.a, s * (ph.kw - 1 - n) + ph.b)
        })
    }

    /// Scratch per image for [`Phases::input_gradient_image`]: the padded output gradient and
    /// every phase's sums.
    pub fn gradient_scratch_len(&self) -> usize {
        let c = self.input_gradient(self.first());
        c.padded_len() + self.phases().count() * c.c_out * c.positions()
    }

    /// One image's input gradient: `dy` (`c_out × out_h × out_w`) into `dx` (`c_in × h × w`,
    /// every element written), `kernels` packed by [`Phases::input_gradient_kernel`] in the
    /// order of [`Phases::phases`], `scratch` at least [`Phases::gradient_scratch_len`]. Phase
    /// `(0, 0)`'s correlation pads `dy` the most (its sub-kernel's size - 1 before); a phase with
    /// a smaller sub-kernel reads the same padded rows that many rows and columns further in.
    pub fn input_gradient_image(
        &self,
        kernels: &[Vec<f32>],
        dy: &[f32],
        dx: &mut [MaybeUninit<f32>],
        scratch: &mut [f32],
    ) {
        let c = self.input_gradient(self.first());
        let phase_len = c.c_out * c.positions();
        assert_eq!(kernels.len(), self.phases().count());
        assert_eq!(dx.len(), self.c_in * self.h * self.w);
        assert!(scratch.len() >= self.gradient_scratch_len());
        let (padded, sums) = scratch.split_at_mut(c.padded_len());
        conv_direct::pad_input(&c, dy, padded);
        for ((ph, kernel), flat) in self.phases().zip(kernels).zip(sums.chunks_mut(phase_len)) {
            let skip = (c.kh - ph.kh) * c.padded_w() + c.kw - ph.kw;
            let part = Part {
                src: &padded[skip..],
                kernel,
                kh: ph.kh,
                kw: ph.kw,
            };
            conv_direct::sum_parts(&c, &[part], None, flat);
        }
        self.lay_in(&c, sums, dx);
    }

    /// Writes every input position's gradient from the phases' sums (`sums`: phase `k` of
    /// [`Phases::phases`] from `k · c_in · positions`, in the padded-row coordinates of `c`,
    /// phase `(0, 0)`'s correlation): `dx[i][iy][ix] = D_ab[i][u][v]` where `iy + top = s·u + a`,
    /// `ix + left = s·v + b`; zero in the phases no tap reads. With stride 2 a row's two phases
    /// are interleaved in one pass.
    fn lay_in(&self, c: &Correlation, sums: &[f32], dx: &mut [MaybeUninit<f32>]) {
        let (pw, positions, s) = (c.padded_w(), c.positions(), self.s);
        let (rows, cols) = self.grid();
        assert!(sums.len() >= rows * cols * self.c_in * positions);
        let sum_row = |k: usize, i: usize, u: usize, v: usize| {
            &sums[(k * self.c_in + i) * positions + u * pw + v..]
        };
        for (i, dx_i) in dx.chunks_exact_mut(self.h * self.w).enumerate() {
            for (iy, row) in dx_i.chunks_exact_mut(self.w).enumerate() {
                let (a, u) = ((iy + self.top) % s, (iy + self.top) / s);
                if a >= rows {
                    row.fill(MaybeUninit::new(0.0));
                    continue;
                }
                if s == 2 && cols == 2 {
                    // Input columns 0 and 1 lie in phase columns `b` and `1 - b`.
                    let b = self.left % 2;
                    let even = sum_row(2 * a + b, i, u, self.first_column(b).1);
                    let odd = sum_row(2 * a + 1 - b, i, u, self.first_column(1 - b).1);
                    interleave(&even[..self.w.div_ceil(2)], &odd[..self.w / 2], row);
                    continue;
                }
                if cols < s.min(self.w) {
                    row.fill(MaybeUninit::new(0.0));
                }
                for b in 0..cols {
                    let (x0, v0) = self.first_column(b);
                    if x0 < self.w {
                        let count = (self.w - x0).div_ceil(s);
                        let src = &sum_row(a * cols + b, i, u, v0)[..count];
                        spread_every_nth(s, src, &mut row[x0..]);
                    }
                }
            }
        }
    }
}

/// `dst[k] = src[s · k]` for every `k` of `dst` (`src` may run on past the last value read).
fn every_nth(s: usize, src: &[f32], dst: &mut [f32]) {
    let Some(last) = dst.len().checked_sub(1) else {
        return;
    };
    assert!(src.len() > s * last);
    if s != 2 {
        for (k, d) in dst.iter_mut().enumerate() {
            *d = src[s * k];
        }
        return;
    }
    // SAFETY: the CPU has AVX2 (the direct kernels' condition, `conv_direct::available`).
    #[cfg(target_arch = "x86_64")]
    let done = unsafe { avx2::evens(src, dst) };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for (k, d) in dst.iter_mut().enumerate().skip(done) {
        *d = src[2 * k];
    }
}

/// `dst[s · k] = src[k]` for every `s · k` inside `dst` (`src` holds that many).
fn spread_every_nth(s: usize, src: &[f32], dst: &mut [MaybeUninit<f32>]) {
    for (d, &v) in dst.iter_mut().step_by(s).zip(src) {
        d.write(v);
    }
}

/// `dst[2k] = even[k]`, `dst[2k + 1] = odd[k]` (`even` holds `⌈len / 2⌉` values, `odd`
/// `⌊len / 2⌋`).
fn interleave(even: &[f32], odd: &[f32], dst: &mut [MaybeUninit<f32>]) {
    assert!(even.len() == dst.len().div_ceil(2) && odd.len() == dst.len() / 2);
    // SAFETY: the CPU has AVX2 (the direct kernels' condition, `conv_direct::available`).
    #[cfg(target_arch = "x86_64")]
    let done = unsafe { avx2::interleave(even, odd, dst) };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for (k, pair) in dst.chunks_mut(2).enumerate().skip(done / 2) {
        pair[0].write(even[k]);
        if let Some(d) = pair.get_mut(1) {
            d.write(odd[k]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::*;
    use core::mem::MaybeUninit;

    /// `dst[k] = src[2k]`, 8 values at a time while the 16 read lie inside `src`; returns how
    /// many were written (a multiple of 8).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn evens(src: &[f32], dst: &mut [f32]) -> usize {
        let vectors = (dst.len() / 8).min(src.len() / 16);
        for j in 0..vectors {
            // SAFETY: `16j + 16 ≤ src.len()`, `8j + 8 ≤ dst.len()`.
            unsafe {
                let lo = _mm256_loadu_ps(src.as_ptr().add(16 * j));
                let hi = _mm256_loadu_ps(src.as_ptr().add(16 * j + 8));
                // [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6], then the 64-bit pairs in order.
                let mixed = _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi);
                let ordered = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(mixed));
                _mm256_storeu_ps(dst.as_mut_ptr().add(8 * j), _mm256_castpd_ps(ordered));
            }
        }
        8 * vectors
    }

    /// `dst[2k] = even[k]`, `dst[2k + 1] = odd[k]`, 16 values at a time while they lie inside
    /// all three; returns how many were written (a multiple of 16).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn interleave(
        even: &[f32],
        odd: &[f32],
        dst: &mut [MaybeUninit<f32>],
    ) -> usize {
        let vectors = (dst.len() / 16).min(even.len() / 8).min(odd.len() / 8);
        let out = dst.as_mut_ptr().cast::<f32>();
        for j in 0..vectors {
            // SAFETY: `8j + 8` values of `even` and `odd`, `16j + 16 ≤ dst.len()`.
            unsafe {
                let e = _mm256_loadu_ps(even.as_ptr().add(8 * j));
                let o = _mm256_loadu_ps(odd.as_ptr().add(8 * j));
                // [e0 o0 e1 o1 | e4 o4 e5 o5] and [e2 o2 e3 o3 | e6 o6 e7 o7].
                let (lo, hi) = (_mm256_unpacklo_ps(e, o), _mm256_unpackhi_ps(e, o));
                _mm256_storeu_ps(out.add(16 * j), _mm256_permute2f128_ps::<0x20>(lo, hi));
                _mm256_storeu_ps(out.add(16 * j + 8), _mm256_permute2f128_ps::<0x31>(lo, hi));
            }
        }
        16 * vectors
    }
}
