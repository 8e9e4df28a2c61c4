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

use super::conv_direct::{self, Correlation};
use alloc::vec::Vec;

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
    /// The phases that some tap reads, `(0, 0)` (the largest sub-kernel) first.
    pub fn phases(&self) -> impl Iterator<Item = Phase> + use<> {
        let p = *self;
        let cols = p.s.min(p.kw);
        (0..p.s.min(p.kh) * cols).map(move |k| {
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

    /// Scratch per image for [`Phases::gather`] and the correlations of the forward pass.
    pub fn forward_scratch_len(&self) -> usize {
        let sizes = self.phases().map(|ph| {
            let c = self.forward(ph);
            c.input_len() + c.scratch_len()
        });
        sizes.max().unwrap_or(0)
    }

    /// Copies phase `ph` of one input image (`c_in × h × w`) into the front of `scratch`:
    /// `phase[i][u][v] = x[i][s·u + a - top][s·v + b - left]`, zero outside the input. Returns
    /// the phase's correlation ([`Phases::forward`]), the phase and the rest of `scratch`.
    pub fn gather<'s>(
        &self,
        ph: Phase,
        x: &[f32],
        scratch: &'s mut [f32],
    ) -> (Correlation, &'s [f32], &'s mut [f32]) {
        let f = self.forward(ph);
        assert_eq!(x.len(), self.c_in * self.h * self.w);
        let (phase, rest) = scratch.split_at_mut(f.input_len());
        // Phase columns `[v0, v1)` read input columns `s·v + b - left`, inside the input.
        let v0 = self.left.saturating_sub(ph.b).div_ceil(self.s).min(f.in_w);
        let v1 = (self.w + self.left)
            .saturating_sub(ph.b)
            .div_ceil(self.s)
            .clamp(v0, f.in_w);
        let x0 = self.s * v0 + ph.b - self.left.min(self.s * v0 + ph.b);
        for (i, dst) in phase.chunks_exact_mut(f.in_h * f.in_w).enumerate() {
            let src = &x[i * self.h * self.w..][..self.h * self.w];
            for (u, row) in dst.chunks_exact_mut(f.in_w).enumerate() {
                let iy = (self.s * u + ph.a)
                    .checked_sub(self.top)
                    .filter(|&iy| iy < self.h);
                let Some(iy) = iy else {
                    row.fill(0.0);
                    continue;
                };
                let src_row = &src[iy * self.w..][..self.w];
                row[..v0].fill(0.0);
                let strided = src_row[x0.min(self.w)..].iter().step_by(self.s);
                for (d, &v) in row[v0..v1].iter_mut().zip(strided) {
                    *d = v;
                }
                row[v1..].fill(0.0);
            }
        }
        (f, phase, rest)
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

    /// Scratch per image for the correlations of the input gradient and their results.
    pub fn gradient_scratch_len(&self) -> usize {
        let sizes = self.phases().map(|ph| {
            let c = self.input_gradient(ph);
            c.output_len() + c.scratch_len()
        });
        sizes.max().unwrap_or(0)
    }

    /// Lays phase `ph` of the input gradient in place: `dx[i][iy][ix] = d[i][u][v]` where
    /// `iy + top = s·u + a`, `ix + left = s·v + b`. Other positions are left as they are.
    pub fn scatter(&self, ph: Phase, d: &[f32], dx: &mut [f32]) {
        let g = self.input_gradient(ph);
        assert_eq!(d.len(), g.output_len());
        assert_eq!(dx.len(), self.c_in * self.h * self.w);
        // First input row and column of the phase, and the phase's row and column there.
        let first = |off: usize, pad: usize| {
            let start = (off + self.s - pad % self.s) % self.s;
            (start, (start + pad) / self.s)
        };
        let ((y0, u0), (x0, v0)) = (first(ph.a, self.top), first(ph.b, self.left));
        for (dx_i, d_i) in dx
            .chunks_exact_mut(self.h * self.w)
            .zip(d.chunks_exact(g.out_h * g.out_w))
        {
            for (k, iy) in (y0..self.h).step_by(self.s).enumerate() {
                let src = &d_i[(u0 + k) * g.out_w + v0..];
                let dst = &mut dx_i[iy * self.w..][..self.w];
                for (d, &v) in dst[x0.min(self.w)..].iter_mut().step_by(self.s).zip(src) {
                    *d = v;
                }
            }
        }
    }
}
