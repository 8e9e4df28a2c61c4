//! Stride-1 3×3 correlations as Winograd F(2×4, 3×3) (added for clrtrain; see vendor/README.md).
//!
//! Each block of 2 × 4 outputs ("tile": 2 rows, 4 columns) is computed from the 4 × 6 input patch
//! under it: F(2, 3) down the columns, F(4, 3) along the rows. The patch `d` and the kernel `g`
//! are transformed, `V = B₂ᵀ d B₄` and `U = G₂ g G₄ᵀ`, and `y = A₂ᵀ (Σ_i U[o][i] ⊙ V[i]) A₄`,
//! with
//!
//! ```text
//!       ⎡1  0 -1  0⎤        ⎡ 1    0    0 ⎤
//! B₂ᵀ = ⎢0  1  1  0⎥   G₂ = ⎢1/2  1/2  1/2⎥   A₂ᵀ = ⎡1  1  1  0⎤
//!       ⎢0 -1  1  0⎥        ⎢1/2 -1/2  1/2⎥         ⎣0  1 -1 -1⎦
//!       ⎣0  1  0 -1⎦        ⎣ 0    0    1 ⎦
//!
//!       ⎡4  0 -5  0  1  0⎤        ⎡ 1/4    0     0 ⎤
//!       ⎢0 -4 -4  1  1  0⎥        ⎢-1/6  -1/6  -1/6⎥         ⎡1  1  1  1  1  0⎤
//! B₄ᵀ = ⎢0  4 -4 -1  1  0⎥   G₄ = ⎢-1/6   1/6  -1/6⎥   A₄ᵀ = ⎢0  1 -1  2 -2  0⎥
//!       ⎢0 -2 -1  2  1  0⎥        ⎢1/24  1/12   1/6⎥         ⎢0  1  1  4  4  0⎥
//!       ⎢0  2 -1 -2  1  0⎥        ⎢1/24 -1/12   1/6⎥         ⎣0  1 -1  8 -8  1⎦
//!       ⎣0  4  0 -5  0  1⎦        ⎣  0     0     1 ⎦
//! ```
//!
//! The sum over input channels is, for each of the 24 elements of the transformed tile, a matrix
//! product `M[e] = U[e] · V[e]` (output channels × input channels times input channels × tiles):
//! 24 products of `c_out · c_in · tiles` multiplications where the direct correlation does 9 of
//! `c_out · c_in · 8 · tiles` — 3 times fewer (F(2×2, 3×3), used before, saves 2.25 times; a
//! tile of 4 columns also puts a 15×15 map's tiles in 4 × 8 = 32, one micro-kernel tile). Those
//! products run on `conv_direct`'s forward micro-kernel as 1×1 correlations whose "positions" are
//! tiles. F(4, 3)'s larger coefficients cost precision: on the tests' shapes an f32 simulation
//! of these transforms is off by at most 2.5e-6 × (1 + |value|) against the f64 definition
//! (F(2×2): 9e-7), 40 times below the tests' bound.
//!
//! The weight gradient is the same computation transposed: each tile's output gradient carried
//! back through the output transform, `Z = A₂ dY A₄ᵀ`, the 24 products summed over the tiles of a
//! chunk of images, `dU[e] = Σ_t V[e] · Z[e]ᵀ` (input × output channels), and carried back through
//! the kernel transform once per chunk, `dg = G₂ᵀ dU G₄`. Those products are 1×1 weight
//! gradients whose positions are tiles, run as `conv_direct`'s point tiles (output channels in
//! the lanes, the transposed output gradient per tile); small maps take several images per pass
//! ([`GRADIENT_TILES`]) so that the tiles' sums are loaded and stored once per 128 tiles, side
//! by side in one strip where they can go so (as in the forward pass, below).
//!
//! An image's tiles are taken a block of tile rows at a time ([`Tiles::block_rows`]), so that the
//! block's transformed input and products stay in L2 between the three steps. Small images (one
//! block) go several side by side into one strip ([`Tiles::strip`]), so that the transforms'
//! vectors are full (a 7×7 map has 2 tiles per row) and one forward product covers
//! [`FORWARD_TILES`] tiles or more. The transforms run on 8-lane AVX2 vectors with either kernel
//! set, and the products add in the same order with either, so both sets give the same bits.
//! The strips follow from the batch alone (an image's last tile also transforms the next
//! image's first columns, which the output transform, or for the weight gradient the kernel
//! transform, cancels up to rounding) and each strip (each chunk, for the weight gradient) is
//! computed on one thread, so results do not depend on the number of threads.

use alloc::vec::Vec;
use core::mem::MaybeUninit;
use core::ops::Range;

use super::conv_direct::{self, Correlation, MAX_TILE};

/// Output rows and columns of a tile.
const TILE_H: usize = 2;
const TILE_W: usize = 4;
/// Columns of a transformed tile (its rows: 4), and its elements.
const PATCH_W: usize = TILE_W + 2;
const ELEMENTS: usize = (TILE_H + 2) * PATCH_W;
/// Lanes of the transforms' vectors (AVX2).
const LANES: usize = 8;
/// Bytes of transformed input and products per block of tile rows: half the 2 MiB L2 of the
/// machines measured.
const BLOCK_BYTES: usize = 1 << 20;
/// Tiles per pass of the weight gradient's products, at least: on 15×15 maps (32 tiles) 4
/// images at a time, on 7×7 maps (8 tiles) 16.
const GRADIENT_TILES: usize = 128;

/// Tiles per call of [`correlate`], at least, where images go side by side: on 7×7 maps (8
/// tiles) 8 images at a time, on 15×15 maps (32) 2. 64 and 128 measured alike, 32 slower.
const FORWARD_TILES: usize = 64;

/// The kernel transforms `G₂` and `G₄` (rows: the transformed tile's rows and columns).
const G2: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];
const G4: [[f64; 3]; PATCH_W] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// Whether a correlation (forward, input gradient, weight gradient) runs as Winograd tiles: 3×3,
/// stride 1, 16 channels or more on either side (the first layer's 3 input channels, or its
/// input gradient's 3 outputs, left the transforms a larger share than the products saved), and
/// maps of 15×15 or more, or of 7×7 or more where several images go side by side into one product
/// ([`Tiles::strip`]; 8 images of 7×7 forward, 16 in a weight-gradient pass). One 7×7 image per
/// call (8 tiles in a product of 32) lost to the direct correlation, which computes 63 positions
/// for 49 there; one 7×7 image per weight-gradient pass lost to the tap tiles (its transforms on
/// vectors of 8 tiles for 2 per row, its sums loaded and stored every 32 tiles), the strips of
/// 16 beat them with both kernel sets (`conv_ops`, AVX2 EPYC and AVX-512 Xeon).
pub fn pays(c: &Correlation) -> bool {
    let shaped = c.kh == 3 && c.kw == 3 && c.stride == 1 && c.top <= 2 && c.left <= 2;
    let channels = c.c_in >= 16 && c.c_out >= 16;
    let large = c.out_h >= 15 && c.out_w >= 15;
    let side_by_side = c.out_h >= 7 && c.out_w >= 7 && Tiles::new(c).forward_group() > 1;
    shaped && channels && (large || side_by_side) && conv_direct::available()
}

/// The kernel transformed and packed: `U[e]` for each element `e`, laid out as
/// `conv_direct::pack_kernel` lays out a 1×1 kernel.
pub struct Kernel {
    packed: Vec<f32>,
}

/// An image's tiles, or those of a strip of images side by side ([`Tiles::strip`]), and the
/// layout of one block of them.
#[derive(Clone, Copy)]
struct Tiles {
    /// One image's correlation.
    c: Correlation,
    /// Tiles per row (of all the strip's images) and rows of tiles.
    across: usize,
    down: usize,
    /// Tile rows per block.
    block_rows: usize,
    /// Images side by side, each `TILE_W · across / images` columns apart.
    images: usize,
}

impl Tiles {
    fn new(c: &Correlation) -> Self {
        let (across, down) = (c.out_w.div_ceil(TILE_W), c.out_h.div_ceil(TILE_H));
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
            images: 1,
        }
    }
    /// The tiles of `images` images laid side by side in one padded input, image `k`'s padded
    /// columns starting at `k · slot` (`slot = TILE_W · across`): image `k`'s last two patch
    /// columns are image `k + 1`'s first two. That shared strip lets the transforms' vectors
    /// run over the tiles of several small images at once (a 7×7 map has 2 tiles per row); it
    /// takes images whose valid outputs never read those shared columns beyond zeros, and a slot
    /// of whole 8-column vectors ([`Tiles::forward_group`] checks).
    fn strip(&self, images: usize) -> Tiles {
        assert!(images == 1 || self.block_rows == self.down);
        Tiles {
            across: self.across * images,
            images,
            ..*self
        }
    }
    /// Columns between images in a strip.
    fn slot(&self) -> usize {
        TILE_W * self.across / self.images
    }
    /// The blocks of tile rows, in order.
    fn blocks(&self) -> impl Iterator<Item = Range<usize>> + use<> {
        let (down, rows) = (self.down, self.block_rows);
        (0..down)
            .step_by(rows)
            .map(move |ty0| ty0..(ty0 + rows).min(down))
    }
    /// The products of one element as a 1×1 correlation over a block's tiles, rounded up to whole
    /// micro-kernel tiles.
    fn products(&self) -> Correlation {
        let tiles = (self.block_rows * self.across).div_ceil(MAX_TILE) * MAX_TILE;
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
    /// of `4 · across + 2` columns, `2 · down + 2` rows.
    fn padded(&self) -> Correlation {
        Correlation {
            out_h: TILE_H * self.down,
            out_w: TILE_W * self.across,
            ..self.c
        }
    }
    /// Whether images can go side by side in a strip ([`Tiles::strip`]): where an image is one
    /// block, its slot whole vectors and the columns it shares with the next image are zeros or
    /// unread (`left + in_w ≤ slot`: its input ends in its slot; the last valid output's last
    /// tap, `out_w + kw - 2`, before the next image's input).
    fn side_by_side(&self) -> bool {
        let (c, slot) = (&self.c, self.slot());
        let shared = c.left + c.in_w <= slot && c.out_w + c.kw <= slot + c.left + 1;
        self.block_rows == self.down && slot % LANES == 0 && shared
    }
    /// Images per call of [`correlate`], side by side in a strip: as many as make
    /// [`FORWARD_TILES`] tiles (the transformed kernel then read once per that many) where they
    /// can go side by side ([`Tiles::side_by_side`]), else one.
    fn forward_group(&self) -> usize {
        if self.side_by_side() {
            FORWARD_TILES.div_ceil(self.block_rows * self.across).max(1)
        } else {
            1
        }
    }
    /// Vectors' worth of tiles per row.
    fn across_lanes(&self) -> usize {
        self.across.div_ceil(LANES) * LANES
    }
    /// Horizontally transformed rows of one channel of a block: `2 · block_rows + 2` input rows,
    /// each `PATCH_W` arrays of `across_lanes`.
    fn rows_len(&self) -> usize {
        (TILE_H * self.block_rows + 2) * PATCH_W * self.across_lanes()
    }
    /// Images per pass of the weight gradient: one where an image takes several blocks, else as
    /// many as make [`GRADIENT_TILES`] tiles (the point tiles' sums then loaded and stored once
    /// per that many positions).
    fn image_group(&self) -> usize {
        if self.block_rows < self.down {
            1
        } else {
            GRADIENT_TILES.div_ceil(self.down * self.across).max(1)
        }
    }
    /// How a weight-gradient pass of `count` images is laid out: `(parts, per)`, `parts`
    /// transforms of `per` images each. Images that can go side by side make one strip (the
    /// transforms' vectors full); others are transformed one by one.
    fn gradient_parts(&self, count: usize) -> (usize, usize) {
        if self.side_by_side() {
            (1, count)
        } else {
            (count, 1)
        }
    }
    /// Transformed output gradient of one element of a block: `[tile][lanes_out]`.
    fn gradient_len(&self) -> usize {
        self.block_rows * self.across * self.c.lanes_out()
    }
    /// Scratch for [`weight_gradient`]: the sums `dU`, then [`Tiles::pass_len`] for a full pass.
    fn weight_scratch_len(&self) -> usize {
        let (parts, per) = self.gradient_parts(self.image_group());
        ELEMENTS * self.c.c_in * self.c.lanes_out() + self.strip(per).pass_len(parts)
    }
    /// Scratch for one weight-gradient pass of `parts` transforms of this strip's images: the
    /// padded input, one channel's horizontally transformed rows, the transposed output
    /// gradients, and each part's transformed inputs and output gradients.
    fn pass_len(&self, parts: usize) -> usize {
        let transposed = self.images * self.c.out_h * self.c.out_w * self.c.lanes_out();
        let transformed = ELEMENTS * (self.products().padded_len() + self.gradient_len());
        self.padded().padded_len() + self.rows_len() + transposed + parts * transformed
    }
    /// Scratch for [`correlate`] on a strip: the padded input, the transformed inputs, the
    /// products and one channel's horizontally transformed rows.
    fn scratch_len(&self) -> usize {
        let p = self.products();
        let transformed = ELEMENTS * p.padded_len();
        let products = ELEMENTS * p.c_out * p.positions() + LANES;
        self.padded().padded_len() + transformed + products + self.rows_len()
    }
}

/// Scratch per call of [`correlate`].
pub fn scratch_len(c: &Correlation) -> usize {
    let tiles = Tiles::new(c);
    tiles.strip(tiles.forward_group()).scratch_len()
}

/// Transforms and packs the kernel `value(o, i, ky, kx)` for [`correlate`]: `U = G₂ g G₄ᵀ`,
/// in f32, 8 output channels at a time, each element written straight into its packed block
/// ([`conv_direct::kernel_row_blocks`]). Transformed into `u[e][i][o]` first and packed in a
/// second pass, it took a quarter of a 336 → 160 forward pass on 7×7 maps (one thread, `perf`:
/// the buffer's zeros, its scattered writes and the copy), about half that this way.
pub fn transform_kernel(
    c: &Correlation,
    value: impl Fn(usize, usize, usize, usize) -> f32,
) -> Kernel {
    let (c_in, c_out) = (c.c_in, c.c_out);
    let len = Tiles::new(c).products().kernel_len();
    let mut packed = alloc::vec![0.0f32; ELEMENTS * len];
    // Each element's kernel is a 1×1 one: `c_out × c_in` values.
    let layout = conv_direct::KernelLayout { c_in, taps: 1 };
    for rows in conv_direct::kernel_row_blocks(c_out) {
        for i in 0..c_in {
            for o0 in rows.clone().step_by(LANES) {
                let count = LANES.min(rows.end - o0);
                let g = gather_taps(&value, o0..o0 + count, i);
                // SAFETY: the CPU has AVX2 and FMA (`pays` checked `conv_direct::available`).
                #[cfg(target_arch = "x86_64")]
                let transformed = unsafe { avx2::kernel(&g) };
                #[cfg(not(target_arch = "x86_64"))]
                let transformed: [[f32; LANES]; ELEMENTS] = unreachable!("pays() needs AVX2");
                let at = layout.at(&rows, i, 0, o0);
                for (u_e, t) in packed.chunks_exact_mut(len).zip(&transformed) {
                    u_e[at..][..count].copy_from_slice(&t[..count]);
                }
            }
        }
    }
    Kernel { packed }
}

/// The 9 taps `g[ky · 3 + kx]` of input channel `i` for the output channels `outputs` (at most
/// [`LANES`], one per lane; lanes past them zero).
fn gather_taps(
    value: &impl Fn(usize, usize, usize, usize) -> f32,
    outputs: Range<usize>,
    i: usize,
) -> [[f32; LANES]; 9] {
    let mut g = [[0.0f32; LANES]; 9];
    for (tap, g) in g.iter_mut().enumerate() {
        for (g, o) in g.iter_mut().zip(outputs.clone()) {
            *g = value(o, i, tap / 3, tap % 3);
        }
    }
    g
}

/// Images per call of [`correlate`] (the batch's last call may take fewer).
pub fn images_per_call(c: &Correlation) -> usize {
    Tiles::new(c).forward_group()
}

/// Correlates up to [`images_per_call`] images, each as [`conv_direct::correlate`] does one
/// (same arguments, images one after another in `input` and `out`, the kernel from
/// [`transform_kernel`], `scratch` at least [`scratch_len`]), side by side in one strip
/// ([`Tiles::strip`]). Call only when [`pays`] is true.
pub fn correlate(
    c: &Correlation,
    kernel: &Kernel,
    input: &[f32],
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
    scratch: &mut [f32],
) {
    assert!(pays(c));
    let image = Tiles::new(c);
    let images = input.len() / c.input_len();
    assert!((1..=image.forward_group()).contains(&images));
    assert_eq!(input.len(), images * c.input_len());
    assert_eq!(out.len(), images * c.output_len());
    assert!(bias.is_none_or(|b| b.len() == c.c_out));
    let tiles = image.strip(images);
    let p = tiles.products();
    // The packed kernel of one element: `c_out × c_in` values.
    let len = p.kernel_len();
    assert_eq!(kernel.packed.len(), ELEMENTS * len);
    assert!(scratch.len() >= tiles.scratch_len());
    let (padded, rest) = scratch.split_at_mut(tiles.padded().padded_len());
    conv_direct::pad_images(&tiles.padded(), images, tiles.slot(), input, padded);
    let (transformed, rest) = rest.split_at_mut(ELEMENTS * p.padded_len());
    let per_element = p.c_out * p.positions();
    let (products, rest) = rest.split_at_mut(ELEMENTS * per_element + LANES);
    let rows = &mut rest[..tiles.rows_len()];
    for block in tiles.blocks() {
        transform_input(&tiles, padded, block.clone(), rows, transformed);
        for (e, m) in products.chunks_exact_mut(per_element).enumerate() {
            let u = &kernel.packed[e * len..][..len];
            let v = &transformed[e * p.padded_len()..][..p.padded_len()];
            let part = conv_direct::Part {
                src: v,
                kernel: u,
                kh: 1,
                kw: 1,
            };
            conv_direct::sum_parts(&p, &[part], None, m);
        }
        transform_output(&tiles, block, products, p.positions(), bias, out);
    }
}

/// Scratch for [`weight_gradient`] on any number of images.
pub fn weight_scratch_len(c: &Correlation) -> usize {
    Tiles::new(c).weight_scratch_len()
}

/// Images per chunk of the batch that [`weight_gradient`] needs, at least, for its passes to be
/// whole ([`GRADIENT_TILES`] tiles: 16 images of 7×7, 4 of 15×15).
pub fn gradient_chunk(c: &Correlation) -> usize {
    Tiles::new(c).image_group()
}

/// Adds to `dk` (`[o][i][ky][kx]`) the kernel gradient over a chunk of images (`input` their
/// inputs, `out_grad` their output gradients, `scratch` at least [`weight_scratch_len`]). The
/// transpose of the forward pass: with `Z = A₂ dY A₄ᵀ` each tile's output gradient carried back
/// through the output transform (per output channel) and `V` its transformed input,
/// `dU[e][i][o] = Σ_tiles V[e][i] · Z[e][o]` — 24 products of `c_in · c_out · tiles`, 3 times
/// fewer multiplications than the direct sums — and `dk[o][i] = G₂ᵀ dU[·][i][o] G₄`. Call only
/// when [`pays`] is true.
pub fn weight_gradient(
    c: &Correlation,
    input: &[f32],
    out_grad: &[f32],
    dk: &mut [f32],
    scratch: &mut [f32],
) {
    assert!(pays(c));
    let images = input.len() / c.input_len();
    assert_eq!(input.len(), images * c.input_len());
    assert_eq!(out_grad.len(), images * c.output_len());
    assert_eq!(dk.len(), c.kernel_len());
    let tiles = Tiles::new(c);
    assert!(scratch.len() >= tiles.weight_scratch_len());
    let (du, rest) = scratch.split_at_mut(ELEMENTS * c.c_in * c.lanes_out());
    du.fill(0.0);
    let group = tiles.image_group();
    for n0 in (0..images).step_by(group) {
        let count = group.min(images - n0);
        let (parts, per) = tiles.gradient_parts(count);
        let pass = Pass {
            tiles: tiles.strip(per),
            parts,
            input: &input[n0 * c.input_len()..][..count * c.input_len()],
            out_grad: &out_grad[n0 * c.output_len()..][..count * c.output_len()],
        };
        pass.add_to(du, rest);
    }
    add_kernel_gradient(c, du, dk);
}

/// One pass of [`weight_gradient`]: `parts` transforms of `tiles.images` images each (a strip
/// of several, or one image), their products added to the sums in one sweep per block.
struct Pass<'a> {
    tiles: Tiles,
    parts: usize,
    input: &'a [f32],
    out_grad: &'a [f32],
}

impl Pass<'_> {
    /// Adds the pass's products to `du` (`[e][i][lanes_out]`); `scratch` at least
    /// [`Tiles::pass_len`].
    fn add_to(&self, du: &mut [f32], scratch: &mut [f32]) {
        let (tiles, c) = (&self.tiles, &self.tiles.c);
        let (p, padded_c, lanes) = (tiles.products(), tiles.padded(), c.lanes_out());
        let (v_len, z_len) = (ELEMENTS * p.padded_len(), ELEMENTS * tiles.gradient_len());
        let (per, transposed) = (tiles.images, c.out_h * c.out_w * lanes);
        let (padded, rest) = scratch.split_at_mut(padded_c.padded_len());
        let (rows, rest) = rest.split_at_mut(tiles.rows_len());
        let (dyt, rest) = rest.split_at_mut(per * transposed);
        let (transformed, rest) = rest.split_at_mut(self.parts * v_len);
        let z = &mut rest[..self.parts * z_len];
        assert!(self.parts == 1 || tiles.block_rows == tiles.down);
        for block in tiles.blocks() {
            for k in 0..self.parts {
                // A part with several blocks is alone in its pass: laid out once, at the first.
                if block.start == 0 {
                    let x = &self.input[k * per * c.input_len()..][..per * c.input_len()];
                    conv_direct::pad_images(&padded_c, per, tiles.slot(), x, padded);
                    let dy = self.out_grad[k * per * c.output_len()..].chunks(c.output_len());
                    for (dy, dyt) in dy.take(per).zip(dyt.chunks_mut(transposed)) {
                        conv_direct::transpose_output_grad(c, dy, dyt);
                    }
                }
                let v = &mut transformed[k * v_len..][..v_len];
                transform_input(tiles, padded, block.clone(), rows, v);
                transform_gradient(tiles, block.clone(), dyt, &mut z[k * z_len..][..z_len]);
            }
            let positions = block.len() * tiles.across;
            for e in 0..ELEMENTS {
                let products = conv_direct::PointSums {
                    x: &transformed[e * p.padded_len()..],
                    x_row: p.channel_stride(),
                    x_stride: v_len,
                    dyt: &z[e * tiles.gradient_len()..],
                    dy_stride: z_len,
                    shape: [self.parts, c.c_in, positions, lanes],
                };
                products.add_to(&mut du[e * c.c_in * lanes..][..c.c_in * lanes]);
            }
        }
    }
}

/// The output gradient's transform for a block's tiles, `Z = A₂ dY A₄ᵀ` (`dY` a tile's 2 × 4
/// gradients, zero outside the map), every output channel: tile `t` of the block at
/// `z[e · gradient_len + t · lanes_out + o]`, from `dyt` holding the strip's images one after
/// another, each laid out as `conv_direct::transpose_output_grad` lays it out.
fn transform_gradient(tiles: &Tiles, block: Range<usize>, dyt: &[f32], z: &mut [f32]) {
    let c = &tiles.c;
    let (lanes, len) = (c.lanes_out(), tiles.gradient_len());
    let (hw, across) = (c.out_h * c.out_w, tiles.across / tiles.images);
    assert!(dyt.len() >= tiles.images * hw * lanes && z.len() >= ELEMENTS * len);
    assert!(block.len() * tiles.across * lanes <= len && block.end <= tiles.down);
    for (j, ty) in block.enumerate() {
        for tx in 0..tiles.across {
            // Tile `tx` of the strip is tile `tx % across` of image `tx / across`.
            let (image, tx_image) = (tx / across, tx % across);
            let at = |r: usize, k: usize| {
                let (y, x) = (TILE_H * ty + r, TILE_W * tx_image + k);
                (y < c.out_h && x < c.out_w).then_some((image * hw + y * c.out_w + x) * lanes)
            };
            let d = core::array::from_fn(|r| core::array::from_fn(|k| at(r, k)));
            let t = j * tiles.across + tx;
            // SAFETY: the CPU has AVX2 and FMA (`pays` checked `conv_direct::available`); every
            // offset in `d` is a position inside an image's map, whose `lanes` values `dyt`
            // holds; tile `t`'s writes end at `23 · len + (t + 1) · lanes ≤ 24 · len` (bounds
            // above).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                avx2::gradient(dyt.as_ptr(), d, lanes, z[t * lanes..].as_mut_ptr(), len)
            };
        }
    }
}

/// Adds `G₂ᵀ dU G₄` to `dk[o][i]` for every pair of channels: the sums carried back through the
/// kernel transform `U = G₂ g G₄ᵀ`, 8 output channels at a time.
fn add_kernel_gradient(c: &Correlation, du: &[f32], dk: &mut [f32]) {
    let lanes = c.lanes_out();
    assert!(du.len() >= ELEMENTS * c.c_in * lanes && dk.len() == c.kernel_len());
    let element = c.c_in * lanes;
    let mut taps = [[0.0f32; LANES]; 9];
    // Input channels innermost: each of the 8 output channels' rows of `dk` is written in order.
    for o0 in (0..c.c_out).step_by(LANES) {
        for i in 0..c.c_in {
            // SAFETY: the CPU has AVX2 and FMA (`pays` checked `conv_direct::available`); the 24
            // elements' vectors at `e · element + i · lanes + o0` lie inside `du` (bounds above,
            // `o0 + 8 ≤ lanes`).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                avx2::kernel_taps(du[i * lanes + o0..].as_ptr(), element, &mut taps)
            };
            for o in o0..(o0 + LANES).min(c.c_out) {
                let dk_oi = &mut dk[(o * c.c_in + i) * 9..][..9];
                for (d, tap) in dk_oi.iter_mut().zip(&taps) {
                    *d += tap[o - o0];
                }
            }
        }
    }
}

/// The input transform of a block of tile rows, every channel: `V[e][i]` of the block's tiles
/// at `transformed[e · element_len + i · channel_stride + t]` (`element_len` and
/// `channel_stride` those of [`Tiles::products`], tile `t = j · across + x` of the block's row
/// `j`), from the padded input laid out as [`Tiles::padded`] says.
fn transform_input(
    tiles: &Tiles,
    padded: &[f32],
    block: Range<usize>,
    rows: &mut [f32],
    transformed: &mut [f32],
) {
    let (padded_c, p) = (tiles.padded(), tiles.products());
    for i in 0..tiles.c.c_in {
        let channel = &padded[i * padded_c.channel_stride()..];
        transform_rows(tiles, channel, block.start, block.len(), rows);
        let at = i * p.channel_stride();
        transform_columns(tiles, block.len(), rows, transformed, p.padded_len(), at);
    }
}

/// The horizontal input transform (`B₄ᵀ` along each row) of one channel's padded rows
/// `2 · ty0 ..` `2 · (ty0 + count) + 2`: for each row, the `PATCH_W` arrays over tiles `t` of
/// `B₄ᵀ (x[4t], …, x[4t + 5])`.
///
/// Bounds: a row's vectors read `4 · across_lanes + 4` values from its start, up to
/// `4 · 7 + 2 = 30` past the row's `4 · across + 2`: into the next rows, or after the last
/// channel's last row into the padded input's tail (`MAX_TILE + kw` values).
fn transform_rows(tiles: &Tiles, channel: &[f32], ty0: usize, count: usize, rows: &mut [f32]) {
    let (pw, width) = (TILE_W * tiles.across + 2, tiles.across_lanes());
    assert!(ty0 + count <= tiles.down);
    let rows = &mut rows[..(TILE_H * count + 2) * PATCH_W * width];
    for (r, out) in rows.chunks_mut(PATCH_W * width).enumerate() {
        let r = TILE_H * ty0 + r;
        // SAFETY: the CPU has AVX2 and FMA (`pays` checked `conv_direct::available`); `out`
        // holds `PATCH_W · width` values; the row `4 · width + 4` (bounds above).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            avx2::horizontal(&channel[r * pw..][..TILE_W * width + 4], out, width)
        };
    }
}

/// The vertical input transform (`B₂ᵀ` down the columns) of a block's horizontally transformed
/// rows into the 24 elements' inputs: element `6a + b` at
/// `transformed[(6a + b) · element_len + at + j · across + t]` for tile `t` of tile row `j`.
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
    let row_len = PATCH_W * width;
    assert!(rows.len() >= (TILE_H * block_rows + 2) * row_len);
    assert!(transformed.len() >= ELEMENTS * element_len);
    assert!(at + (block_rows - 1) * across + width <= element_len);
    for j in 0..block_rows {
        let h = |r: usize| &rows[(TILE_H * j + r) * row_len..][..row_len];
        // SAFETY: the CPU has AVX2 (`pays` checked `conv_direct::available`); bounds above.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            let dst = transformed[at + j * across..].as_mut_ptr();
            avx2::vertical([h(0), h(1), h(2), h(3)], width, dst, element_len)
        };
    }
}

/// The output transform of a block: for each output channel `o` and tile row `ty`, output rows
/// `2 · ty` and `2 · ty + 1` (where inside the map) of each of the strip's images,
/// `y = A₂ᵀ M A₄ + bias[o]`, written to `out` (the images one after another).
///
/// Bounds: a tile row's vectors read `products` up to `across_lanes - across < 8` values past
/// the row's tiles: at most 8 past the last element's last channel, which `products` holds. The
/// writes stop at each row's `out_w` values.
fn transform_output(
    tiles: &Tiles,
    block: Range<usize>,
    products: &[f32],
    positions: usize,
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
) {
    let c = &tiles.c;
    let across = tiles.across;
    let element = c.c_out * positions;
    assert!(products.len() >= ELEMENTS * element + LANES);
    assert!(block.len() * across <= positions);
    assert!(tiles.slot() >= c.out_w && out.len() == tiles.images * c.output_len());
    assert!(tiles.images == 1 || tiles.slot() % LANES == 0);
    let base = out.as_mut_ptr().cast::<f32>();
    for o in 0..c.c_out {
        let b = bias.map_or(0.0, |b| b[o]);
        for (j, ty) in block.clone().enumerate() {
            let rows = [0, 1].map(|k| {
                let y = TILE_H * ty + k;
                (y < c.out_h).then(|| base.wrapping_add((o * c.out_h + y) * c.out_w))
            });
            let strip = avx2::Strip {
                rows,
                images: tiles.images,
                image_len: c.output_len(),
                slot: tiles.slot(),
                len: c.out_w,
            };
            // SAFETY: the CPU has AVX2 and FMA (`pays` checked `conv_direct::available`); bounds
            // above; each row of each image holds `out_w` values.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                let m = products[o * positions + j * across..].as_ptr();
                avx2::output(m, element, across, b, &strip)
            };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{G2, G4, LANES, PATCH_W, TILE_H, TILE_W};
    use core::arch::x86_64::*;

    /// `out[b · width + t]` for `b` in 0..6 and tiles `t < width` (a multiple of 8): the
    /// horizontal transform `B₄ᵀ (x[4t], …, x[4t + 5])` of the padded row `row`.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `row.len() ≥ 4 · width + 4`, `out.len() ≥ 6 · width`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn horizontal(row: &[f32], out: &mut [f32], width: usize) {
        assert!(row.len() >= 4 * width + 4 && out.len() >= PATCH_W * width);
        unsafe {
            let (src, dst) = (row.as_ptr(), out.as_mut_ptr());
            // Tiles `q` and `q + 4` of a group of 8, one per 128-bit lane.
            let pair =
                |x: *const f32, q: usize| _mm256_loadu2_m128(x.add(16 + 4 * q), x.add(4 * q));
            let (two, four) = (_mm256_set1_ps(2.0), _mm256_set1_ps(4.0));
            for t in (0..width).step_by(LANES) {
                let x = src.add(4 * t);
                let [d0, d1, d2, d3] = columns([pair(x, 0), pair(x, 1), pair(x, 2), pair(x, 3)]);
                // Columns 4 and 5 of tile t are columns 0 and 1 of tile t + 1.
                let lo = _mm256_unpacklo_ps(pair(x, 1), pair(x, 2));
                let hi = _mm256_unpacklo_ps(pair(x, 3), pair(x, 4));
                let d4 = _mm256_shuffle_ps::<0b01_00_01_00>(lo, hi);
                let d5 = _mm256_shuffle_ps::<0b11_10_11_10>(lo, hi);
                let d42 = _mm256_sub_ps(d4, d2);
                let d31 = _mm256_sub_ps(d3, d1);
                let h = [
                    _mm256_fmadd_ps(four, _mm256_sub_ps(d0, d2), d42),
                    _mm256_fnmadd_ps(four, _mm256_add_ps(d1, d2), _mm256_add_ps(d3, d4)),
                    _mm256_fmadd_ps(four, _mm256_sub_ps(d1, d2), _mm256_sub_ps(d4, d3)),
                    _mm256_fmadd_ps(two, d31, d42),
                    _mm256_fnmadd_ps(two, d31, d42),
                    _mm256_fnmadd_ps(four, d31, _mm256_sub_ps(d5, d3)),
                ];
                for (b, v) in h.into_iter().enumerate() {
                    _mm256_storeu_ps(dst.add(b * width + t), v);
                }
            }
        }
    }

    /// For each 8 tiles `t < width`: with `h[r]` the horizontal transforms of rows `r = 0..4`
    /// (6 arrays of `width`), element `6a + b` at `dst + (6a + b) · element_len + t` gets row `a`
    /// of `B₂ᵀ h[·][b]`: `h0 - h2`, `h1 + h2`, `h2 - h1`, `h1 - h3`.
    ///
    /// # Safety
    /// The CPU must have AVX2; `dst` must be valid for those writes.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn vertical(h: [&[f32]; 4], width: usize, dst: *mut f32, element_len: usize) {
        assert!(h.iter().all(|r| r.len() >= PATCH_W * width));
        unsafe {
            for b in 0..PATCH_W {
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
                        _mm256_storeu_ps(dst.add((PATCH_W * a + b) * element_len + t), v);
                    }
                }
            }
        }
    }

    /// Where a row of tiles' outputs go: the strip's column `k · slot + x` to image `k`'s
    /// `rows[y] + k · image_len + x`, for `x < len` and `k < images`; rows that are `None`
    /// skipped.
    pub(super) struct Strip {
        pub rows: [Option<*mut f32>; 2],
        pub images: usize,
        pub image_len: usize,
        pub slot: usize,
        pub len: usize,
    }

    /// For each 8 tiles `t < across` (the last group rounded up): the products
    /// `m + e · element + t` of the 24 elements, transformed to the tiles' two output rows,
    /// `A₂ᵀ M A₄ + bias`, each 8 columns written where `strip` says (masked stores at the end of
    /// an image's row).
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `m` must be valid for reads of
    /// `23 · element + across.div_ceil(8) · 8` values; `strip.slot` a multiple of 8 or
    /// `strip.images` one; each row of each image valid for writes of `strip.len`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn output(
        m: *const f32,
        element: usize,
        across: usize,
        bias: f32,
        strip: &Strip,
    ) {
        unsafe {
            let (two, four) = (_mm256_set1_ps(2.0), _mm256_set1_ps(4.0));
            let (eight, bias) = (_mm256_set1_ps(8.0), _mm256_set1_ps(bias));
            let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            for t in (0..across).step_by(LANES) {
                let load = |e: usize| _mm256_loadu_ps(m.add(e * element + t));
                // A₂ᵀ down each column b: s0 = m0b + m1b + m2b, s1 = m1b - m2b - m3b.
                let mut s = [[_mm256_setzero_ps(); PATCH_W]; 2];
                for b in 0..PATCH_W {
                    let [m0, m1, m2, m3] = core::array::from_fn(|a| load(PATCH_W * a + b));
                    s[0][b] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
                    s[1][b] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
                }
                // Then A₄ᵀ along each output row.
                for (s, row) in s.iter().zip(strip.rows) {
                    let Some(row) = row else { continue };
                    let (p, q) = (_mm256_add_ps(s[1], s[2]), _mm256_sub_ps(s[1], s[2]));
                    let (r, u) = (_mm256_add_ps(s[3], s[4]), _mm256_sub_ps(s[3], s[4]));
                    let y = [
                        _mm256_add_ps(_mm256_add_ps(s[0], p), _mm256_add_ps(r, bias)),
                        _mm256_add_ps(_mm256_fmadd_ps(two, u, q), bias),
                        _mm256_add_ps(_mm256_fmadd_ps(four, r, p), bias),
                        _mm256_add_ps(_mm256_add_ps(_mm256_fmadd_ps(eight, u, q), s[5]), bias),
                    ];
                    // Tile q's 4 columns in the low lane of `c[q]`, tile q + 4's in the high.
                    let c = columns(y);
                    let values = [
                        _mm256_permute2f128_ps::<0x20>(c[0], c[1]),
                        _mm256_permute2f128_ps::<0x20>(c[2], c[3]),
                        _mm256_permute2f128_ps::<0x31>(c[0], c[1]),
                        _mm256_permute2f128_ps::<0x31>(c[2], c[3]),
                    ];
                    for (k, v) in values.into_iter().enumerate() {
                        let at = 4 * t + 8 * k;
                        let (image, x) = (at / strip.slot, at % strip.slot);
                        if image >= strip.images {
                            continue;
                        }
                        let dst = row.add(image * strip.image_len + x);
                        match strip.len.saturating_sub(x) {
                            0 => {}
                            n if n >= 8 => _mm256_storeu_ps(dst, v),
                            n => {
                                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lane);
                                _mm256_maskstore_ps(dst, mask, v)
                            }
                        }
                    }
                }
            }
        }
    }

    /// For each 8 output channels `o < lanes`: the tile's output gradients `d[r][k]` (offsets
    /// into `dyt`, `None` outside the map: zero) carried back through the output transform,
    /// `A₂ d A₄ᵀ`, element `6a + b` written at `z + (6a + b) · element_len + o`.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `dyt` must hold `lanes` values at each offset in `d`, `z`
    /// be valid for those writes, `lanes` a multiple of 8.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gradient(
        dyt: *const f32,
        d: [[Option<usize>; TILE_W]; TILE_H],
        lanes: usize,
        z: *mut f32,
        element_len: usize,
    ) {
        unsafe {
            for o in (0..lanes).step_by(LANES) {
                let load = |at: Option<usize>| {
                    at.map_or(_mm256_setzero_ps(), |at| _mm256_loadu_ps(dyt.add(at + o)))
                };
                // A₄ᵀ's transpose along each row, then A₂'s rows: d0, d0 + d1, d0 - d1, -d1.
                let [r0, r1] = d.map(|row| along(row.map(load)));
                for b in 0..PATCH_W {
                    let rows = [
                        r0[b],
                        _mm256_add_ps(r0[b], r1[b]),
                        _mm256_sub_ps(r0[b], r1[b]),
                        _mm256_sub_ps(_mm256_setzero_ps(), r1[b]),
                    ];
                    for (a, v) in rows.into_iter().enumerate() {
                        _mm256_storeu_ps(z.add((PATCH_W * a + b) * element_len + o), v);
                    }
                }
            }
        }
    }

    /// `(y0, …, y3)` times `A₄ᵀ`: `y0`, `y0 + y1 + y2 + y3`, `y0 - y1 + y2 - y3`,
    /// `y0 + 2y1 + 4y2 + 8y3`, `y0 - 2y1 + 4y2 - 8y3`, `y3`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn along([y0, y1, y2, y3]: [__m256; TILE_W]) -> [__m256; PATCH_W] {
        let (p, q) = (_mm256_add_ps(y0, y2), _mm256_add_ps(y1, y3));
        let r = _mm256_fmadd_ps(_mm256_set1_ps(4.0), y2, y0);
        let s = _mm256_fmadd_ps(
            _mm256_set1_ps(8.0),
            y3,
            _mm256_mul_ps(_mm256_set1_ps(2.0), y1),
        );
        [
            y0,
            _mm256_add_ps(p, q),
            _mm256_sub_ps(p, q),
            _mm256_add_ps(r, s),
            _mm256_sub_ps(r, s),
            y3,
        ]
    }

    /// `U = G₂ g G₄ᵀ` for 8 kernels: `g[ky · 3 + kx]` their taps, the 24 elements returned.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel(g: &[[f32; LANES]; 9]) -> [[f32; LANES]; 24] {
        let (g2, g4) = (
            G2.map(|r| r.map(|v| _mm256_set1_ps(v as f32))),
            G4.map(|r| r.map(|v| _mm256_set1_ps(v as f32))),
        );
        let mut u = [[0.0f32; LANES]; 24];
        unsafe {
            let g = g.map(|tap| _mm256_loadu_ps(tap.as_ptr()));
            // Along each kernel row first: t[ky][b] = Σ_kx G₄[b][kx] g[ky][kx].
            let t: [[__m256; PATCH_W]; 3] = core::array::from_fn(|ky| {
                g4.map(|k| {
                    let sum = _mm256_mul_ps(k[0], g[3 * ky]);
                    let sum = _mm256_fmadd_ps(k[1], g[3 * ky + 1], sum);
                    _mm256_fmadd_ps(k[2], g[3 * ky + 2], sum)
                })
            });
            // Then down the columns: U[a][b] = Σ_ky G₂[a][ky] t[ky][b].
            for (a, k) in g2.iter().enumerate() {
                for b in 0..PATCH_W {
                    let sum = _mm256_mul_ps(k[0], t[0][b]);
                    let sum = _mm256_fmadd_ps(k[1], t[1][b], sum);
                    let sum = _mm256_fmadd_ps(k[2], t[2][b], sum);
                    _mm256_storeu_ps(u[PATCH_W * a + b].as_mut_ptr(), sum);
                }
            }
        }
        u
    }

    /// `G₂ᵀ dU G₄` for 8 output channels: `du` the 24 elements' vectors `element` apart, the 9
    /// taps' sums into `taps[ky · 3 + kx]` (coefficients rounded to f32).
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `du` must hold 8 values at each `e · element`, `e < 24`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel_taps(du: *const f32, element: usize, taps: &mut [[f32; LANES]; 9]) {
        let (g2, g4) = (
            G2.map(|r| r.map(|v| v as f32)),
            G4.map(|r| r.map(|v| v as f32)),
        );
        unsafe {
            // Along each row a: t[a][kx] = Σ_b dU[a][b] G₄[b][kx].
            let mut t = [[_mm256_setzero_ps(); 3]; 4];
            for (a, t_a) in t.iter_mut().enumerate() {
                for (b, g) in g4.iter().enumerate() {
                    let v = _mm256_loadu_ps(du.add((PATCH_W * a + b) * element));
                    for (t, &k) in t_a.iter_mut().zip(g) {
                        *t = _mm256_fmadd_ps(_mm256_set1_ps(k), v, *t);
                    }
                }
            }
            // Then down the columns: tap (ky, kx) = Σ_a G₂[a][ky] t[a][kx].
            for (tap, out) in taps.iter_mut().enumerate() {
                let (ky, kx) = (tap / 3, tap % 3);
                let mut sum = _mm256_setzero_ps();
                for (g, t_a) in g2.iter().zip(&t) {
                    sum = _mm256_fmadd_ps(_mm256_set1_ps(g[ky]), t_a[kx], sum);
                }
                _mm256_storeu_ps(out.as_mut_ptr(), sum);
            }
        }
    }

    /// A 4 × 4 transpose within each 128-bit lane: element `k` of lane half `l` of `v[q]` goes to
    /// element `q` of the same half of the result's `[k]`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn columns(v: [__m256; 4]) -> [__m256; 4] {
        let t0 = _mm256_unpacklo_ps(v[0], v[1]);
        let t1 = _mm256_unpacklo_ps(v[2], v[3]);
        let t2 = _mm256_unpackhi_ps(v[0], v[1]);
        let t3 = _mm256_unpackhi_ps(v[2], v[3]);
        [
            _mm256_shuffle_ps::<0b01_00_01_00>(t0, t1),
            _mm256_shuffle_ps::<0b11_10_11_10>(t0, t1),
            _mm256_shuffle_ps::<0b01_00_01_00>(t2, t3),
            _mm256_shuffle_ps::<0b11_10_11_10>(t2, t3),
        ]
    }
}
