//! Stride-1 2D correlations computed directly, without an im2col matrix (added for clrtrain; see
//! vendor/README.md).
//!
//! A stride-1, dilation-1 convolution's forward pass is such a correlation, and so is its input
//! gradient: the output gradient correlated with the kernel turned 180° and its channel axes
//! swapped. The im2col + GEMM route builds a matrix nine times the input for a 3×3 kernel, the
//! GEMM packs it again, and the input gradient scatters one back (col2im); its GEMM also walks the
//! im2col rows one page apart on 32×32 maps. Here the input is copied once into a zero-padded
//! buffer whose rows all have the padded width, so that every kernel tap is one constant offset:
//! output position `q = y · padded_w + x` reads input element `q + ky · padded_w + kx` of each
//! channel. An AVX2/FMA micro-kernel then accumulates 16 consecutive positions × 6 output channels
//! in registers over every (input channel, tap), reading the padded input straight from cache
//! and the kernel from a buffer packed once per call. Positions whose `x` falls in the padding
//! columns are computed and thrown away (`kw - 1` per row).
//!
//! The weight gradient, `dk[o][i][ky][kx] = Σ_q dy[o][q] · in[i][q + ky · padded_w + kx]`, uses the
//! same padded input and the output gradient laid out in padded rows (zeros in the padding
//! columns): each weight is a dot product of two contiguous runs, which a second micro-kernel
//! computes 4 output channels × 3 kernel columns at a time, summed over a chunk of images before
//! its horizontal sums.
//!
//! Used where the CPU has AVX2 and FMA (checked at run time), for f32; elsewhere the caller keeps
//! its im2col path. Each image is computed on one thread in a fixed order, so results do not
//! depend on the number of threads.

use alloc::vec::Vec;

/// Output positions per micro-kernel tile (two 8-lane vectors).
const TILE: usize = 16;
/// Output channels per micro-kernel tile.
const ROWS: usize = 6;
/// Input channels per pass over the positions: the padded input of a tile (`kh` rows of
/// `TILE + kw - 1` values per channel) and a block's packed kernel stay in L1 across the
/// output-channel blocks.
const CHANNEL_BLOCK: usize = 32;

/// One image's correlation, stride 1, dilation 1:
/// `out[o][y][x] = Σ_i Σ_ky Σ_kx k[o][i][ky][kx] · in[i][y + ky - top][x + kx - left]`, with
/// zeros outside the input.
#[derive(Clone, Copy, Debug)]
pub struct Correlation {
    pub c_in: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub top: usize,
    pub left: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl Correlation {
    fn padded_w(&self) -> usize {
        self.out_w + self.kw - 1
    }
    fn plane(&self) -> usize {
        (self.out_h + self.kh - 1) * self.padded_w()
    }
    /// Distance between channels in the padded input: the plane rounded up to whole cache lines,
    /// an odd number of them, so that the channels a tile reads fall in different L1 sets (a
    /// plane of a multiple of 4 KiB would put them all in the same set).
    fn channel_stride(&self) -> usize {
        let lines = self.plane().div_ceil(16);
        (lines | 1) * 16
    }
    fn taps(&self) -> usize {
        self.kh * self.kw
    }
    /// Output positions computed per channel (padded-row coordinates), whole tiles.
    fn positions(&self) -> usize {
        (self.out_h * self.padded_w()).div_ceil(TILE) * TILE
    }
    /// The padded input, with room for the last tile reading past the last row.
    fn padded_len(&self) -> usize {
        self.c_in * self.channel_stride() + TILE + self.kw
    }
    /// Scratch per image: the padded input and the output in padded-row coordinates.
    pub fn scratch_len(&self) -> usize {
        self.padded_len() + self.c_out * self.positions()
    }
    pub fn input_len(&self) -> usize {
        self.c_in * self.in_h * self.in_w
    }
    pub fn output_len(&self) -> usize {
        self.c_out * self.out_h * self.out_w
    }
    /// Length of the packed kernel.
    pub fn kernel_len(&self) -> usize {
        self.c_out * self.c_in * self.taps()
    }
    /// Output positions per channel for the weight gradient (padded-row coordinates), whole
    /// 8-lane vectors.
    fn grad_positions(&self) -> usize {
        (self.out_h * self.padded_w()).div_ceil(8) * 8
    }
    /// Scratch per image for [`weight_gradient`]: the padded input and the output gradient in
    /// padded rows.
    pub fn weight_scratch_len(&self) -> usize {
        self.padded_len() + self.c_out * self.grad_positions()
    }
}

/// Whether the micro-kernel runs on this CPU (AVX2 and FMA).
pub fn available() -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(all(target_arch = "x86_64", feature = "std")))]
    {
        false
    }
}

/// Packs the kernel `value(o, i, ky, kx)` for [`correlate`]: blocks of `ROWS` output channels
/// (fewer in the last), each laid out `[i][ky][kx][row]`, so that the micro-kernel reads it
/// sequentially.
pub fn pack_kernel(c: &Correlation, value: impl Fn(usize, usize, usize, usize) -> f32) -> Vec<f32> {
    let mut packed = Vec::with_capacity(c.kernel_len());
    for o0 in (0..c.c_out).step_by(ROWS) {
        let rows = ROWS.min(c.c_out - o0);
        for i in 0..c.c_in {
            for ky in 0..c.kh {
                for kx in 0..c.kw {
                    packed.extend((o0..o0 + rows).map(|o| value(o, i, ky, kx)));
                }
            }
        }
    }
    packed
}

/// Correlates one image (`c_in × in_h × in_w`) with a kernel packed by [`pack_kernel`] into
/// `out` (`c_out × out_h × out_w`), adding `bias[o]` to channel `o`. Call only when
/// [`available`] is true.
pub fn correlate(
    c: &Correlation,
    kernel: &[f32],
    input: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    assert!(c.kh >= 1 && c.kw >= 1);
    assert_eq!(kernel.len(), c.kernel_len());
    assert_eq!(input.len(), c.input_len());
    assert_eq!(out.len(), c.output_len());
    assert!(scratch.len() >= c.scratch_len());
    assert!(bias.is_none_or(|b| b.len() == c.c_out));
    assert!(available());
    let (padded, flat) = scratch.split_at_mut(c.padded_len());
    let flat = &mut flat[..c.c_out * c.positions()];
    pad_input(c, input, padded);
    // SAFETY: AVX2 and FMA are present (asserted); `accumulate` reads and writes inside
    // `padded` and `flat` only (see its bounds comment), whose sizes are fixed above.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        avx2::accumulate(c, kernel, padded, flat)
    };
    let (pw, positions) = (c.padded_w(), c.positions());
    for (o, out_o) in out.chunks_mut(c.out_h * c.out_w).enumerate() {
        let b = bias.map_or(0.0, |b| b[o]);
        let flat_o = &flat[o * positions..];
        for (y, row) in out_o.chunks_mut(c.out_w).enumerate() {
            for (d, &s) in row.iter_mut().zip(&flat_o[y * pw..]) {
                *d = s + b;
            }
        }
    }
}

/// Adds to `dk` (`c_out × c_in × kh × kw`) the gradient of the correlation's kernel for a chunk of
/// images: `input` holds `images` inputs, `out_grad` their output gradients, `scratch` at least
/// `images` × [`Correlation::weight_scratch_len`]. Call only when [`available`] is true.
pub fn weight_gradient(
    c: &Correlation,
    input: &[f32],
    out_grad: &[f32],
    dk: &mut [f32],
    scratch: &mut [f32],
) {
    let images = input.len() / c.input_len().max(1);
    assert_eq!(input.len(), images * c.input_len());
    assert_eq!(out_grad.len(), images * c.output_len());
    assert_eq!(dk.len(), c.kernel_len());
    assert!(scratch.len() >= images * c.weight_scratch_len());
    assert!(available());
    let (padded, flat) = scratch[..images * c.weight_scratch_len()].split_at_mut(images * c.padded_len());
    let inputs = input.chunks(c.input_len().max(1));
    for (x, p) in inputs.zip(padded.chunks_mut(c.padded_len())) {
        pad_input(c, x, p);
    }
    let per_image = c.c_out * c.grad_positions();
    let grads = out_grad.chunks(c.output_len().max(1));
    for (dy, f) in grads.zip(flat.chunks_mut(per_image)) {
        flatten_output_grad(c, dy, f);
    }
    // SAFETY: AVX2 and FMA are present (asserted); `weight_gradient` reads inside the buffers
    // whose sizes are fixed above (see its bounds comment) and writes inside `dk`.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        avx2::weight_gradient(c, images, padded, flat, dk)
    };
}

/// Lays one output gradient out in rows of the padded width, zeros in the padding columns and
/// after the last row, so that those positions add nothing to the weight gradient.
fn flatten_output_grad(c: &Correlation, dy: &[f32], flat: &mut [f32]) {
    let (pw, positions) = (c.padded_w(), c.grad_positions());
    for (o, flat_o) in flat.chunks_mut(positions).enumerate() {
        flat_o.fill(0.0);
        let dy_o = &dy[o * c.out_h * c.out_w..][..c.out_h * c.out_w];
        for (y, row) in dy_o.chunks(c.out_w.max(1)).enumerate() {
            flat_o[y * pw..][..row.len()].copy_from_slice(row);
        }
    }
}

/// Copies the input into rows of the padded width: row `r`, column `x` of channel `i` holds
/// `input[i][r - top][x - left]` (at `i * channel_stride + r * padded_w + x`), zero outside the
/// input; zeros between the channels and after the last one.
fn pad_input(c: &Correlation, input: &[f32], padded: &mut [f32]) {
    let (pw, plane, stride) = (c.padded_w(), c.plane(), c.channel_stride());
    let tail_start = c.c_in * stride;
    padded[tail_start..].fill(0.0);
    if c.in_h == 0 || c.in_w == 0 {
        padded[..tail_start].fill(0.0);
        return;
    }
    // Input columns [x0, x1) land on padded columns [x0 + left, x1 + left), clipped to the row.
    let x1 = c.in_w.min(pw.saturating_sub(c.left));
    for (i, channel) in padded[..tail_start].chunks_mut(stride).enumerate() {
        let src = &input[i * c.in_h * c.in_w..][..c.in_h * c.in_w];
        let (channel, gap) = channel.split_at_mut(plane);
        gap.fill(0.0);
        for (r, row) in channel.chunks_mut(pw).enumerate() {
            let iy = r.checked_sub(c.top).filter(|&iy| iy < c.in_h);
            match iy {
                Some(iy) if x1 > 0 => {
                    let left = c.left.min(pw);
                    row[..left].fill(0.0);
                    row[left..left + x1].copy_from_slice(&src[iy * c.in_w..][..x1]);
                    row[left + x1..].fill(0.0);
                }
                _ => row.fill(0.0),
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{CHANNEL_BLOCK, Correlation, ROWS, TILE};
    use core::arch::x86_64::*;

    /// Fills `flat[o * positions + q]` with the correlation at padded-row position `q`.
    ///
    /// Bounds: a tile at `q0 ≤ positions - TILE` reads channel `i` at
    /// `i * channel_stride + q0 + 15 + (kh - 1) * padded_w + kw - 1`, at most
    /// `(c_in - 1) * channel_stride + plane + 13 + kw` for the last channel (`positions <
    /// out_h * padded_w + TILE`, `plane = (out_h + kh - 1) * padded_w`), inside `padded_len`;
    /// it writes `flat` rows
    /// `o < c_out` at `q0..q0 + TILE`, inside `c_out * positions`.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `padded` and `flat` must have the lengths
    /// [`Correlation`] gives them and `kernel` the packed length.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn accumulate(
        c: &Correlation,
        kernel: &[f32],
        padded: &[f32],
        flat: &mut [f32],
    ) {
        // SAFETY: see the bounds above; the caller guarantees AVX2 and FMA.
        unsafe {
            let (plane, per_input, positions) = (c.channel_stride(), c.taps(), c.positions());
            for i0 in (0..c.c_in).step_by(CHANNEL_BLOCK) {
                let channels = CHANNEL_BLOCK.min(c.c_in - i0);
                for q0 in (0..positions).step_by(TILE) {
                    let src = padded.as_ptr().add(i0 * plane + q0);
                    for o0 in (0..c.c_out).step_by(ROWS) {
                        let rows = ROWS.min(c.c_out - o0);
                        let block = kernel.as_ptr().add(o0 * c.c_in * per_input);
                        let tile = Tile {
                            src,
                            plane,
                            channels,
                            kh: c.kh,
                            kw: c.kw,
                            padded_w: c.padded_w(),
                            kernel: block.add(i0 * per_input * rows),
                            dst: flat.as_mut_ptr().add(o0 * positions + q0),
                            dst_stride: positions,
                            accumulate: i0 > 0,
                        };
                        match rows {
                            6 => tile.run::<6>(),
                            5 => tile.run::<5>(),
                            4 => tile.run::<4>(),
                            3 => tile.run::<3>(),
                            2 => tile.run::<2>(),
                            _ => tile.run::<1>(),
                        }
                    }
                }
            }
        
        }
    }

    /// Adds the kernel gradient to `dk`: for 4 output channels × 3 kernel columns (consecutive
    /// `(i, ky, kx)`) at a time, dot products over every image's positions, then one horizontal
    /// sum each.
    ///
    /// Bounds: image `n`'s gradient rows are `flat[(n * c_out + o) * grad_positions..]`, read for
    /// `grad_positions` values; its input is read at `n * padded_len + i * channel_stride + ky *
    /// padded_w + kx + q` for `q < grad_positions < out_h * padded_w + 8`, at most
    /// `n * padded_len + (c_in - 1) * channel_stride + plane + 6 + kw`, inside `padded_len =
    /// c_in * channel_stride + TILE + kw`.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `padded` must hold `images` padded inputs, `flat`
    /// `images` gradients of `c_out * grad_positions`, `dk` the kernel's length.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weight_gradient(
        c: &Correlation,
        images: usize,
        padded: &[f32],
        flat: &[f32],
        dk: &mut [f32],
    ) {
        let (positions, taps) = (c.grad_positions(), c.taps());
        let columns = c.c_in * taps;
        // Input offset of kernel column `j` (`[i][ky][kx]` flattened, as `dk` stores it).
        let offset = |j: usize| {
            let (i, t) = (j / taps, j % taps);
            i * c.channel_stride() + (t / c.kw) * c.padded_w() + t % c.kw
        };
        for o0 in (0..c.c_out).step_by(4) {
            let rows = 4.min(c.c_out - o0);
            for j0 in (0..columns).step_by(3) {
                let cols = 3.min(columns - j0);
                let dot = Dot {
                    images,
                    positions,
                    x: padded.as_ptr(),
                    offsets: [0, 1, 2].map(|k| offset((j0 + k).min(columns - 1))),
                    x_stride: c.padded_len(),
                    dy: flat[o0 * positions..].as_ptr(),
                    dy_stride: c.c_out * positions,
                    dy_row: positions,
                };
                let mut sums = [[0.0f32; 3]; 4];
                // SAFETY: see the bounds above; the caller guarantees AVX2 and FMA.
                unsafe {
                    match (rows, cols) {
                        (4, 3) => dot.run::<4, 3>(&mut sums),
                        (4, 2) => dot.run::<4, 2>(&mut sums),
                        (4, _) => dot.run::<4, 1>(&mut sums),
                        (3, 3) => dot.run::<3, 3>(&mut sums),
                        (3, 2) => dot.run::<3, 2>(&mut sums),
                        (3, _) => dot.run::<3, 1>(&mut sums),
                        (2, 3) => dot.run::<2, 3>(&mut sums),
                        (2, 2) => dot.run::<2, 2>(&mut sums),
                        (2, _) => dot.run::<2, 1>(&mut sums),
                        (_, 3) => dot.run::<1, 3>(&mut sums),
                        (_, 2) => dot.run::<1, 2>(&mut sums),
                        (_, _) => dot.run::<1, 1>(&mut sums),
                    }
                }
                for (r, row) in sums.iter().enumerate().take(rows) {
                    let base = (o0 + r) * columns + j0;
                    for (d, &v) in dk[base..base + cols].iter_mut().zip(row) {
                        *d += v;
                    }
                }
            }
        }
    }

    /// Dot products of `R` output-gradient rows with `C` shifted input rows over every image.
    struct Dot {
        images: usize,
        positions: usize,
        x: *const f32,
        /// Offsets of the `C` input runs from `x`.
        offsets: [usize; 3],
        x_stride: usize,
        dy: *const f32,
        dy_stride: usize,
        dy_row: usize,
    }

    impl Dot {
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn run<const R: usize, const C: usize>(&self, sums: &mut [[f32; 3]; 4]) {
            unsafe {
                let mut acc = [[_mm256_setzero_ps(); C]; R];
                for n in 0..self.images {
                    let x = self.x.add(n * self.x_stride);
                    let dy = self.dy.add(n * self.dy_stride);
                    for q in (0..self.positions).step_by(8) {
                        let mut xs = [_mm256_setzero_ps(); C];
                        for (v, &off) in xs.iter_mut().zip(&self.offsets) {
                            *v = _mm256_loadu_ps(x.add(off + q));
                        }
                        for (r, a) in acc.iter_mut().enumerate() {
                            let d = _mm256_loadu_ps(dy.add(r * self.dy_row + q));
                            for (a, &v) in a.iter_mut().zip(&xs) {
                                *a = _mm256_fmadd_ps(d, v, *a);
                            }
                        }
                    }
                }
                for (row, a) in sums.iter_mut().zip(&acc) {
                    for (s, &v) in row.iter_mut().zip(a) {
                        *s = horizontal_sum(v);
                    }
                }
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn horizontal_sum(v: __m256) -> f32 {
        let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
        _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1)))
    }

    /// One micro-kernel call: `R` output channels × `TILE` positions.
    struct Tile {
        src: *const f32,
        plane: usize,
        channels: usize,
        kh: usize,
        kw: usize,
        padded_w: usize,
        kernel: *const f32,
        dst: *mut f32,
        dst_stride: usize,
        accumulate: bool,
    }

    impl Tile {
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn run<const R: usize>(&self) {
            // A compile-time kernel width lets the taps of a row be immediate offsets.
            match (self.kh, self.kw) {
                (3, 3) => unsafe { self.run_taps::<R, 3, 3>() },
                _ => unsafe { self.run_taps::<R, 0, 0>() },
            }
        }

        /// `KW` is the kernel width, or 0 to read it from `self.kw`.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn run_taps<const R: usize, const KH: usize, const KW: usize>(&self) {
            let kw = if KW > 0 { KW } else { self.kw };
            let kh = if KH > 0 { KH } else { self.kh };
            unsafe {
                let mut acc = [[_mm256_setzero_ps(); 2]; R];
                if self.accumulate {
                    for (r, a) in acc.iter_mut().enumerate() {
                        let d = self.dst.add(r * self.dst_stride);
                        *a = [_mm256_loadu_ps(d), _mm256_loadu_ps(d.add(8))];
                    }
                }
                let mut w = self.kernel;
                for i in 0..self.channels {
                    let s = self.src.add(i * self.plane);
                    for ky in 0..kh {
                        let row = s.add(ky * self.padded_w);
                        for kx in 0..kw {
                            let x0 = _mm256_loadu_ps(row.add(kx));
                            let x1 = _mm256_loadu_ps(row.add(kx + 8));
                            for (r, a) in acc.iter_mut().enumerate() {
                                let k = _mm256_broadcast_ss(&*w.add(r));
                                a[0] = _mm256_fmadd_ps(x0, k, a[0]);
                                a[1] = _mm256_fmadd_ps(x1, k, a[1]);
                            }
                            w = w.add(R);
                        }
                    }
                }
                for (r, a) in acc.iter().enumerate() {
                    let d = self.dst.add(r * self.dst_stride);
                    _mm256_storeu_ps(d, a[0]);
                    _mm256_storeu_ps(d.add(8), a[1]);
                }
            }
        }
    }

    // `accumulate` dispatches on up to 6 rows; `run` loads two 8-lane vectors per tile.
    const _: () = assert!(TILE == 16 && ROWS == 6);
}
