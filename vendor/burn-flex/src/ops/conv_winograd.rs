//! Stride-1 3×3 correlations as Winograd F(2×2, 3×3) (added for clrtrain; see vendor/README.md).
//!
//! Each 2×2 block of outputs ("tile") is computed from the 4×4 input patch under it: the patch
//! `d` and the kernel `g` are transformed, `V = Bᵀ d B` and `U = G g Gᵀ`, and
//! `y = Aᵀ (Σ_i U[o][i] ⊙ V[i]) A`, with
//!
//! ```text
//!      ⎡1  0 -1  0⎤        ⎡ 1    0    0 ⎤
//! Bᵀ = ⎢0  1  1  0⎥    G = ⎢1/2  1/2  1/2⎥    Aᵀ = ⎡1  1  1  0⎤
//!      ⎢0 -1  1  0⎥        ⎢1/2 -1/2  1/2⎥         ⎣0  1 -1 -1⎦
//!      ⎣0  1  0 -1⎦        ⎣ 0    0    1 ⎦
//! ```
//!
//! The sum over input channels is, for each of the 16 elements of the transformed tile, a matrix
//! product `M[e] = U[e] · V[e]` (output channels × input channels times input channels × tiles):
//! 16 products of `c_out · c_in · tiles` multiplications where the direct correlation does 9 of
//! `c_out · c_in · 4 · tiles` — 2.25 times fewer. Those products run on `conv_direct`'s forward
//! micro-kernel as 1×1 correlations whose "positions" are tiles.
//!
//! An image's tiles are taken a block of tile rows at a time ([`Tiles::block_rows`]), so that the
//! block's transformed input and products stay in L2 between the three steps. The transforms run
//! on 8-lane AVX2 vectors with either kernel set, and the products add in the same order with
//! either, so both sets give the same bits; each image is computed on one thread, independently
//! of the number of threads.

use alloc::vec::Vec;
use core::mem::MaybeUninit;

use super::conv_direct::{self, Correlation};

/// Elements of a transformed tile (4 × 4).
const ELEMENTS: usize = 16;
/// Lanes of the transforms' vectors (AVX2).
const LANES: usize = 8;
/// Bytes of transformed input and products per block of tile rows: half the 2 MiB L2 of the
/// machines measured.
const BLOCK_BYTES: usize = 1 << 20;

/// Whether a correlation runs as Winograd tiles: 3×3, stride 1, 16 channels or more on either
/// side (the first layer's 3 input channels, or its input gradient's 3 outputs, left the
/// transforms a larger share than the products saved), and maps of 15×15 or more. On 7×7 maps an
/// image's 16 tiles fill half of the products' 32-position micro-kernel tiles; two images per
/// call measured slower than the direct correlation all the same (240 and 336 → 160 channels:
/// forward ≈ 17 against 15 ms and 23 against 21 ms per batch of 64), the transformed kernel (16/9
/// of the direct one, 3.4 MB for 336 → 160) then read from memory once per 32 tiles.
pub fn pays(c: &Correlation) -> bool {
    let shaped = c.kh == 3 && c.kw == 3 && c.stride == 1 && c.top <= 2 && c.left <= 2;
    let channels = c.c_in >= 16 && c.c_out >= 16;
    shaped && channels && c.out_h >= 15 && c.out_w >= 15 && conv_direct::available()
}

/// The kernel transformed and packed: `U[e]` for each element `e`, laid out as
/// `conv_direct::pack_kernel` lays out a 1×1 kernel.
pub struct Kernel {
    packed: Vec<f32>,
}

/// An image's tiles and the layout of one block of them.
#[derive(Clone, Copy)]
struct Tiles {
    c: Correlation,
    /// Tiles per row and rows of tiles.
    across: usize,
    down: usize,
    /// Tile rows per block.
    block_rows: usize,
}

impl Tiles {
    fn new(c: &Correlation) -> Self {
        let (across, down) = (c.out_w.div_ceil(2), c.out_h.div_ceil(2));
        let row_bytes = ELEMENTS * (c.c_in + c.c_out) * across * size_of::<f32>();
        let fit = (BLOCK_BYTES / row_bytes.max(1)).clamp(1, down.max(1));
        // As many blocks as needed, their rows evened out.
        let blocks = down.div_ceil(fit).max(1);
        let block_rows = down.div_ceil(blocks).max(1);
        Tiles {
            c: *c,
            across,
            down,
            block_rows,
        }
    }
    /// The products of one element as a 1×1 correlation over a block's tiles, rounded up to whole
    /// micro-kernel tiles.
    fn products(&self) -> Correlation {
        let tiles = (self.block_rows * self.across).div_ceil(32) * 32;
        Correlation {
            c_in: self.c.c_in,
            c_out: self.c.c_out,
            kh: 1,
            kw: 1,
            in_h: 1,
            in_w: tiles,
            top: 0,
            left: 0,
            out_h: 1,
            out_w: tiles,
            stride: 1,
        }
    }
    /// The padded input's geometry: `conv_direct`'s for outputs rounded up to whole tiles, rows
    /// of `2 · across + 2` columns, `2 · down + 2` rows.
    fn padded(&self) -> Correlation {
        Correlation {
            out_h: 2 * self.down,
            out_w: 2 * self.across,
            ..self.c
        }
    }
    /// Vectors' worth of tiles per row.
    fn across_lanes(&self) -> usize {
        self.across.div_ceil(LANES) * LANES
    }
    /// Horizontally transformed rows of one channel of a block: `2 · block_rows + 2` input rows,
    /// each 4 arrays of `across_lanes`.
    fn rows_len(&self) -> usize {
        (2 * self.block_rows + 2) * 4 * self.across_lanes()
    }
    fn scratch_len(&self) -> usize {
        let p = self.products();
        let transformed = ELEMENTS * p.padded_len();
        let products = ELEMENTS * p.c_out * p.positions() + LANES;
        let output = 4 * self.across_lanes();
        self.padded().padded_len() + transformed + products + self.rows_len() + output
    }
}

/// Scratch per image for [`correlate`].
pub fn scratch_len(c: &Correlation) -> usize {
    Tiles::new(c).scratch_len()
}

/// Transforms and packs the kernel `value(o, i, ky, kx)` for [`correlate`]: `U = G g Gᵀ`,
/// computed in f64 and rounded once.
pub fn transform_kernel(
    c: &Correlation,
    value: impl Fn(usize, usize, usize, usize) -> f32,
) -> Kernel {
    const G: [[f64; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    let (c_in, c_out) = (c.c_in, c.c_out);
    let mut u = alloc::vec![0.0f32; ELEMENTS * c_out * c_in];
    for o in 0..c_out {
        for i in 0..c_in {
            let g: [[f64; 3]; 3] =
                core::array::from_fn(|ky| core::array::from_fn(|kx| value(o, i, ky, kx) as f64));
            for (e, u_e) in u.chunks_mut(c_out * c_in).enumerate() {
                let (a, b) = (G[e / 4], G[e % 4]);
                let mut sum = 0.0;
                for ky in 0..3 {
                    for kx in 0..3 {
                        sum += a[ky] * g[ky][kx] * b[kx];
                    }
                }
                u_e[o * c_in + i] = sum as f32;
            }
        }
    }
    let p = Tiles::new(c).products();
    let mut packed = Vec::with_capacity(ELEMENTS * p.kernel_len());
    for u_e in u.chunks(c_out * c_in) {
        packed.extend(conv_direct::pack_kernel(&p, |o, i, _, _| u_e[o * c_in + i]));
    }
    Kernel { packed }
}

/// Correlates one image as [`conv_direct::correlate`] does (same arguments, the kernel from
/// [`transform_kernel`], `scratch` at least [`scratch_len`]). Call only when [`pays`] is true.
pub fn correlate(
    c: &Correlation,
    kernel: &Kernel,
    input: &[f32],
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
    scratch: &mut [f32],
) {
    assert!(pays(c));
    assert_eq!(input.len(), c.input_len());
    assert_eq!(out.len(), c.output_len());
    assert!(bias.is_none_or(|b| b.len() == c.c_out));
    let tiles = Tiles::new(c);
    let p = tiles.products();
    // The packed kernel of one element: `c_out × c_in` values.
    let len = p.kernel_len();
    assert_eq!(kernel.packed.len(), ELEMENTS * len);
    assert!(scratch.len() >= tiles.scratch_len());
    let padded_c = tiles.padded();
    let (padded, rest) = scratch.split_at_mut(padded_c.padded_len());
    conv_direct::pad_input(&padded_c, input, padded);
    let (transformed, rest) = rest.split_at_mut(ELEMENTS * p.padded_len());
    let per_element = p.c_out * p.positions();
    let (products, rest) = rest.split_at_mut(ELEMENTS * per_element + LANES);
    let (rows, output) = rest.split_at_mut(tiles.rows_len());
    for ty0 in (0..tiles.down).step_by(tiles.block_rows) {
        let block = ty0..(ty0 + tiles.block_rows).min(tiles.down);
        for i in 0..c.c_in {
            let channel = &padded[i * padded_c.channel_stride()..];
            transform_rows(&tiles, channel, block.start, block.len(), rows);
            let at = i * p.channel_stride();
            transform_columns(&tiles, block.len(), rows, transformed, p.padded_len(), at);
        }
        for (e, m) in products.chunks_exact_mut(per_element).enumerate() {
            let u = &kernel.packed[e * len..][..len];
            let v = &transformed[e * p.padded_len()..][..p.padded_len()];
            conv_direct::products(&p, u, v, m);
        }
        transform_output(
            &tiles,
            block,
            products,
            p.positions(),
            output,
            |o, ty, pair| {
                for (y, row) in (2 * ty..c.out_h).zip(pair) {
                    let dst = &mut out[(o * c.out_h + y) * c.out_w..][..c.out_w];
                    conv_direct::write_row(bias, o, dst, &row[..c.out_w]);
                }
            },
        );
    }
}

/// The horizontal input transform of one channel's padded rows `2 · ty0 ..` `2 · (ty0 +
/// count) + 2`: for each row, the 4 arrays
/// `x[2t] - x[2t+2]`, `x[2t+1] + x[2t+2]`, `x[2t+2] - x[2t+1]`, `x[2t+1] - x[2t+3]` over tiles `t`.
///
/// Bounds: a row's vectors read `2 · across_lanes + 2` values from its start, up to 14 past
/// the row's `2 · across + 2`: into the next rows, or after the last channel's last row into the
/// padded input's tail (`MAX_TILE + kw` values).
fn transform_rows(tiles: &Tiles, channel: &[f32], ty0: usize, count: usize, rows: &mut [f32]) {
    let (pw, width) = (2 * tiles.across + 2, tiles.across_lanes());
    assert!(ty0 + count <= tiles.down);
    let rows = &mut rows[..(2 * count + 2) * 4 * width];
    for (r, out) in rows.chunks_mut(4 * width).enumerate() {
        let r = 2 * ty0 + r;
        // SAFETY: the CPU has AVX2 (`pays` checked `conv_direct::available`); `out` holds
        // 4 · `width` values; the row 2 · `width` + 2 (bounds above).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            avx2::horizontal(&channel[r * pw..][..2 * width + 2], out, width)
        };
    }
}

/// The vertical input transform of a block's horizontally transformed rows into the 16 elements'
/// inputs: element `4a + b` at `transformed[(4a + b) · element_len + at + j · across + t]` for
/// tile `t` of tile row `j`.
///
/// Bounds: each row's vectors write up to `across_lanes - across < 8` values past the row's
/// tiles, into the next row's (written after) or, after the block's last row, into the channel's
/// padding (`channel_stride ≥ positions + 16`) or the elements' tail (`MAX_TILE + 1`).
fn transform_columns(
    tiles: &Tiles,
    block_rows: usize,
    rows: &[f32],
    transformed: &mut [f32],
    element_len: usize,
    at: usize,
) {
    let (width, across) = (tiles.across_lanes(), tiles.across);
    assert!(rows.len() >= (2 * block_rows + 2) * 4 * width);
    assert!(transformed.len() >= ELEMENTS * element_len);
    assert!(at + (block_rows - 1) * across + width <= element_len);
    for j in 0..block_rows {
        let h = |r: usize| &rows[(2 * j + r) * 4 * width..][..4 * width];
        // SAFETY: the CPU has AVX2 (`pays` checked `conv_direct::available`); bounds above.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            let dst = transformed[at + j * across..].as_mut_ptr();
            avx2::vertical([h(0), h(1), h(2), h(3)], width, dst, element_len)
        };
    }
}

/// The output transform of a block: for each output channel `o` and tile row `ty`, the two
/// output rows `y = Aᵀ M A` (interleaved across the tiles), passed to `write(o, ty, [row 0,
/// row 1])`.
///
/// Bounds: a tile row's vectors read `products` up to `across_lanes - across < 8` values past
/// the row's tiles: at most 8 past the last element's last channel, which `products` holds.
fn transform_output(
    tiles: &Tiles,
    block: core::ops::Range<usize>,
    products: &[f32],
    positions: usize,
    scratch: &mut [f32],
    mut write: impl FnMut(usize, usize, [&[f32]; 2]),
) {
    let c = &tiles.c;
    let (across, width) = (tiles.across, tiles.across_lanes());
    let element = c.c_out * positions;
    assert!(products.len() >= ELEMENTS * element + LANES);
    assert!(block.len() * across <= positions);
    let (row0, row1) = scratch[..4 * width].split_at_mut(2 * width);
    for o in 0..c.c_out {
        for (j, ty) in block.clone().enumerate() {
            // SAFETY: the CPU has AVX2 (`pays` checked `conv_direct::available`); bounds above;
            // the rows hold `2 · width` values each.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                let m = products[o * positions + j * across..].as_ptr();
                avx2::output(m, element, width, [row0.as_mut_ptr(), row1.as_mut_ptr()])
            };
            write(o, ty, [&*row0, &*row1]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::LANES;
    use core::arch::x86_64::*;

    /// `out[b · width + t]` for `b` in 0..4 and tiles `t < width` (a multiple of 8): the
    /// horizontal transform of the padded row `row`.
    ///
    /// # Safety
    /// The CPU must have AVX2; `row.len() ≥ 2 · width + 2`, `out.len() ≥ 4 · width`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn horizontal(row: &[f32], out: &mut [f32], width: usize) {
        assert!(row.len() >= 2 * width + 2 && out.len() >= 4 * width);
        unsafe {
            let (src, dst) = (row.as_ptr(), out.as_mut_ptr());
            for t in (0..width).step_by(LANES) {
                let x = src.add(2 * t);
                let (e0, o0) = deinterleave(_mm256_loadu_ps(x), _mm256_loadu_ps(x.add(8)));
                let (e1, o1) = deinterleave(_mm256_loadu_ps(x.add(2)), _mm256_loadu_ps(x.add(10)));
                _mm256_storeu_ps(dst.add(t), _mm256_sub_ps(e0, e1));
                _mm256_storeu_ps(dst.add(width + t), _mm256_add_ps(o0, e1));
                _mm256_storeu_ps(dst.add(2 * width + t), _mm256_sub_ps(e1, o0));
                _mm256_storeu_ps(dst.add(3 * width + t), _mm256_sub_ps(o0, o1));
            }
        }
    }

    /// For each 8 tiles `t < width`: with `h[r]` the horizontal transforms of rows `r = 0..4`
    /// (4 arrays of `width`), element `4a + b` at `dst + (4a + b) · element_len + t` gets row `a`
    /// of `Bᵀ h[·][b]`: `h0 - h2`, `h1 + h2`, `h2 - h1`, `h1 - h3`.
    ///
    /// # Safety
    /// The CPU must have AVX2; `dst` must be valid for those writes.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn vertical(h: [&[f32]; 4], width: usize, dst: *mut f32, element_len: usize) {
        assert!(h.iter().all(|r| r.len() >= 4 * width));
        unsafe {
            for b in 0..4 {
                for t in (0..width).step_by(LANES) {
                    let [h0, h1, h2, h3] =
                        h.map(|r| _mm256_loadu_ps(r.as_ptr().add(b * width + t)));
                    let rows = [
                        _mm256_sub_ps(h0, h2),
                        _mm256_add_ps(h1, h2),
                        _mm256_sub_ps(h2, h1),
                        _mm256_sub_ps(h1, h3),
                    ];
                    for (a, v) in rows.into_iter().enumerate() {
                        _mm256_storeu_ps(dst.add((4 * a + b) * element_len + t), v);
                    }
                }
            }
        }
    }

    /// For each 8 tiles `t < width`: the products `m + e · element + t` of the 16 elements,
    /// transformed to the tiles' two output rows, `Aᵀ M A`, written interleaved (`y[2t]`,
    /// `y[2t + 1]`) to `rows[0]` and `rows[1]`.
    ///
    /// # Safety
    /// The CPU must have AVX2; `m` must be valid for reads of `15 · element + width` values and
    /// each row for writes of `2 · width`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn output(m: *const f32, element: usize, width: usize, rows: [*mut f32; 2]) {
        unsafe {
            for t in (0..width).step_by(LANES) {
                let e: [__m256; 16] =
                    core::array::from_fn(|e| _mm256_loadu_ps(m.add(e * element + t)));
                // Aᵀ along each row a: s0 = m0 + m1 + m2, s1 = m1 - m2 - m3.
                let s: [[__m256; 2]; 4] = core::array::from_fn(|a| {
                    let [m0, m1, m2, m3] = [e[4 * a], e[4 * a + 1], e[4 * a + 2], e[4 * a + 3]];
                    [
                        _mm256_add_ps(_mm256_add_ps(m0, m1), m2),
                        _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3),
                    ]
                });
                // Then along the columns, for output rows 0 and 1.
                for (y, row) in rows.into_iter().enumerate() {
                    let column = |x: usize| match y {
                        0 => _mm256_add_ps(_mm256_add_ps(s[0][x], s[1][x]), s[2][x]),
                        _ => _mm256_sub_ps(_mm256_sub_ps(s[1][x], s[2][x]), s[3][x]),
                    };
                    let (left, right) = (column(0), column(1));
                    let lo = _mm256_unpacklo_ps(left, right);
                    let hi = _mm256_unpackhi_ps(left, right);
                    _mm256_storeu_ps(row.add(2 * t), _mm256_permute2f128_ps::<0x20>(lo, hi));
                    _mm256_storeu_ps(row.add(2 * t + 8), _mm256_permute2f128_ps::<0x31>(lo, hi));
                }
            }
        }
    }

    /// The even and odd elements of 16 consecutive values.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn deinterleave(lo: __m256, hi: __m256) -> (__m256, __m256) {
        // Per 128-bit lane: [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6]; then the 64-bit pairs reordered.
        let even = _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi);
        let odd = _mm256_shuffle_ps::<0b11_01_11_01>(lo, hi);
        let order = |v: __m256| {
            _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)))
        };
        (order(even), order(odd))
    }
}
