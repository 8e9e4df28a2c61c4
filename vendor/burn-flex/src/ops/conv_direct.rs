//! Stride-1 2D correlations computed directly, without an im2col matrix (added for clrtrain; see
//! vendor/README.md). Strided convolutions are sums of such correlations (`conv_phases`).
//!
//! A stride-1, dilation-1 convolution's forward pass is such a correlation, and so is its input
//! gradient: the output gradient correlated with the kernel turned 180° and its channel axes
//! swapped. The im2col + GEMM route builds a matrix nine times the input for a 3×3 kernel, the
//! GEMM packs it again, and the input gradient scatters one back (col2im); its GEMM also walks the
//! im2col rows one page apart on 32×32 maps. Here the input is copied once into a zero-padded
//! buffer whose rows all have the padded width, so that every kernel tap is one constant offset:
//! output position `q = y · padded_w + x` reads input element `q + ky · padded_w + kx` of each
//! channel. A micro-kernel then accumulates consecutive positions × output channels in registers
//! (AVX2/FMA: 16 × 6; AVX-512: 32 × 12) over every (input channel, tap), reading the padded input
//! straight from cache and the kernel from a buffer packed once per call, starting its sums from
//! the bias. Positions whose `x` falls in the padding columns are computed and thrown away
//! (`kw - 1` per row). A 1×1 kernel without padding needs no padded copy: its tiles read the
//! input and write the output where they are (the output's rows are then the tiles' rows), with
//! the next tile's input prefetched.
//!
//! The weight gradient, `dk[o][i][ky][kx] = Σ_q dy[o][q] · in[i][q + ky · padded_w + kx]`, uses the
//! same padded input. With a 3×3 kernel it runs as tap tiles: the output gradient is transposed
//! so that each position holds a row of output channels, and an AVX-512 micro-kernel keeps 32
//! output channels × the 9 taps of one input channel in registers, adding at each position the
//! output-gradient vectors times the 9 input values under the taps (broadcast) — the forward
//! tile's shape, with output channels in the lanes and no horizontal sums; strided convolutions
//! too (the downsample blocks' stride 2), the tile reading every `s`-th input; 1×1 convolutions
//! with 8 input channels in the taps' place, read straight from the input (these point tiles also
//! run the Winograd weight gradient's products, `conv_winograd`). The AVX2 set's tiles hold 16
//! output channels (two 8-lane halves) × 6 columns: 6 input channels of a 1×1 kernel, or 6
//! (input channel, tap) pairs of a 3×3 one. Otherwise (other kernel sizes; stride 1 only) each
//! weight is a dot product of two contiguous runs, the output gradient laid out in padded rows
//! (zeros in the padding columns), computed 4 output channels × 3 kernel columns at a time and
//! summed over a chunk of images before its horizontal sums. The dot products read
//! 4 output-gradient and 3 input vectors per 12 FMAs, mostly from L2, and ran at about a third
//! of the FMA peak; the tap tiles read 2 vectors and 9 scalars per 18 FMAs.
//!
//! Used for f32 where the CPU has AVX2 and FMA, with the AVX-512 kernels on Intel CPUs that have
//! AVX-512F (checked at run time, see [`kernels`]); elsewhere the caller keeps its im2col path.
//! Each image is computed on one thread in a fixed order, so results do not depend on the number
//! of threads. Both forward kernel sets add the same products in the same order for every
//! position, so they give the same bits; so do their weight gradients' tap and point tiles, while
//! their dot products add in different orders and differ in rounding.

use alloc::vec::Vec;
use core::mem::MaybeUninit;
use core::ops::Range;

/// Output positions per tile of the widest kernel (AVX-512: two 16-lane vectors); the padded
/// layouts are sized for it, whichever kernel runs.
pub(super) const MAX_TILE: usize = 32;
/// Input channels per pass over the positions of an in-place sweep, and of an AVX-512 padded one:
/// the tile's input (`kh` rows of `tile + kw - 1` values per channel) and a block's packed kernel
/// stay in L1 across the output-channel blocks. AVX2's padded sweeps take every channel in one
/// pass ([`Kernels::padded_channels`]).
const CHANNEL_BLOCK: usize = 32;
/// Tiles ahead whose outputs [`prefetch_rows`] fetches, for a sweep written in place: one ahead
/// measured ≈ 10 % slower than none on the input gradient of 64 → 32 channels on 32×32 maps
/// (32 → 64 written), two as fast; both alike elsewhere.
const OUTPUT_AHEAD: usize = 2;
/// Output-gradient rows × kernel columns per weight-gradient dot product call. Larger blocks
/// that AVX-512's 32 registers would hold (8 × 3, 4 × 6) measured slower, on 32×32 and 15×15
/// maps alike.
const DOT_ROWS: usize = 4;
const DOT_COLS: usize = 3;
/// Output channels per vector of a weight-gradient tap tile (AVX-512; an AVX2 tile takes one, in
/// two 8-lane halves), and the vectors of a full AVX-512 tile: 2 × 9 taps = 18 accumulators.
const TAP_LANES: usize = 16;
const TAP_VECTORS: usize = 2;
/// Input channels per weight-gradient tile of a 1×1 convolution (AVX-512): 2 × 8 = 16
/// accumulators, and the 8 channels' base pointers still fit the general registers.
const POINT_CHANNELS: usize = 8;
/// Columns per AVX2 weight-gradient tile (input channels of 1×1 products, (input channel, tap)
/// pairs of a 3×3 kernel): 6 × 2 vectors = 12 of the 16 registers as accumulators.
const AVX2_POINT_CHANNELS: usize = 6;
/// Transposed output gradient per group of images that a tap tile runs over: small maps (7×7)
/// take several images per tile, so that loading and storing its sums stays a small part.
const TAP_GROUP_BYTES: usize = 128 * 1024;

/// One image's correlation, dilation 1:
/// `out[o][y][x] = Σ_i Σ_ky Σ_kx k[o][i][ky][kx] · in[i][s·y + ky - top][s·x + kx - left]`, with
/// zeros outside the input and `s` the stride: 1 everywhere but in the tap tiles' weight
/// gradient, which also takes stride 2 (and any other).
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
    pub stride: usize,
}

impl Correlation {
    /// Width of the padded input's rows: the columns the last output reads, `s·(out_w - 1) + kw`.
    pub(super) fn padded_w(&self) -> usize {
        (self.out_w * self.stride + self.kw).saturating_sub(self.stride)
    }
    /// Rows × columns of one channel of the padded input.
    pub(super) fn plane(&self) -> usize {
        (self.out_h * self.stride + self.kh).saturating_sub(self.stride) * self.padded_w()
    }
    /// Distance between channels in the padded input: the plane rounded up to whole cache lines,
    /// an odd number of them, so that the channels a tile reads fall in different L1 sets (a
    /// plane of a multiple of 4 KiB would put them all in the same set).
    pub(super) fn channel_stride(&self) -> usize {
        let lines = self.plane().div_ceil(16);
        (lines | 1) * 16
    }
    fn taps(&self) -> usize {
        self.kh * self.kw
    }
    /// Output positions per channel of the sums (padded-row coordinates): whole tiles of the
    /// widest kernel set, of which a sweep computes those that cover `out_h` rows
    /// ([`Sweep::padded`]).
    pub(super) fn positions(&self) -> usize {
        (self.out_h * self.padded_w()).div_ceil(MAX_TILE) * MAX_TILE
    }
    /// The padded input, with room for the last tile reading past the last row.
    pub(super) fn padded_len(&self) -> usize {
        self.c_in * self.channel_stride() + MAX_TILE + self.kw
    }
    /// Scratch per image: the padded input and the output in padded-row coordinates; none for
    /// [`correlate_in_place`].
    pub fn scratch_len(&self) -> usize {
        if self.in_place() {
            0
        } else {
            self.padded_len() + self.c_out * self.positions()
        }
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
    /// 16-lane vectors.
    fn grad_positions(&self) -> usize {
        (self.out_h * self.padded_w()).div_ceil(16) * 16
    }
    /// Scratch for [`weight_gradient`] on a chunk of `images`: with tap tiles, a group of images'
    /// padded inputs and transposed output gradients; with dot products, every image's padded
    /// input and output gradient in padded rows.
    pub fn weight_scratch_len(&self, images: usize) -> usize {
        if self.sums_by_taps() {
            self.tap_group(images) * self.tap_image_len()
        } else {
            images * (self.padded_len() + self.c_out * self.grad_positions())
        }
    }
    /// Length of the sums [`weight_gradient`] adds to: the tap tiles' `[i][tap][lanes_out]`, or
    /// the kernel's own `[o][i][ky][kx]` for dot products. Summed over image chunks in that
    /// layout, they become the kernel gradient once, through [`kernel_gradient`].
    pub fn weight_sums_len(&self) -> usize {
        if self.sums_by_taps() {
            self.tap_sums_len()
        } else {
            self.kernel_len()
        }
    }
    fn sums_by_taps(&self) -> bool {
        available() && self.by_taps()
    }
    /// Whether the weight gradient runs as tap tiles: a 3×3 kernel, or a 1×1 kernel at stride 1
    /// (input channels in the taps' place); otherwise as dot products.
    fn by_taps(&self) -> bool {
        (self.kh == 3 && self.kw == 3) || self.pointwise()
    }
    /// Whether [`correlate`] reads the input and writes the output in place
    /// ([`correlate_in_place`]): a 1×1 kernel at stride 1 without padding, on a map of at least
    /// one tile.
    fn in_place(&self) -> bool {
        let tile = kernels().map_or(MAX_TILE, Kernels::tile);
        self.pointwise() && self.in_h * self.in_w >= tile
    }
    /// A 1×1 kernel at stride 1 without padding: its tap tiles read the input as it is (no padded
    /// copy).
    fn pointwise(&self) -> bool {
        let one = self.kh == 1 && self.kw == 1;
        one && self.stride == 1 && self.top == 0 && self.left == 0
    }
    /// Output channels rounded up to whole tap-tile vectors: the row length of the transposed
    /// output gradient and of the tap sums.
    pub(super) fn lanes_out(&self) -> usize {
        self.c_out.div_ceil(TAP_LANES) * TAP_LANES
    }
    /// Length of one image's transposed output gradient, `[position][lanes_out]`.
    fn transposed_len(&self) -> usize {
        self.out_h * self.out_w * self.lanes_out()
    }
    /// Scratch per image of a tap-tile group: the padded input (none for 1×1) and the transposed
    /// output gradient.
    fn tap_image_len(&self) -> usize {
        self.tap_padded_len() + self.transposed_len()
    }
    fn tap_padded_len(&self) -> usize {
        if self.pointwise() {
            0
        } else {
            self.padded_len()
        }
    }
    /// Images per tap-tile group: as many as keep the group's transposed output gradients within
    /// [`TAP_GROUP_BYTES`], at least one.
    fn tap_group(&self, images: usize) -> usize {
        let per_image = self.transposed_len() * size_of::<f32>();
        (TAP_GROUP_BYTES / per_image.max(1)).clamp(1, images.max(1))
    }
    /// Length of the tap sums, `[i][tap][lanes_out]`.
    fn tap_sums_len(&self) -> usize {
        self.c_in * self.taps() * self.lanes_out()
    }
}

/// The micro-kernels this CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernels {
    Avx2,
    Avx512,
}

impl Kernels {
    /// Output channels per full forward tile: as many as leave registers for the inputs (AVX2:
    /// 12 accumulators of 16, AVX-512: 24 of 32).
    fn rows(self) -> usize {
        match self {
            Kernels::Avx2 => 6,
            Kernels::Avx512 => 12,
        }
    }
    /// Output positions per forward tile: two vectors.
    fn tile(self) -> usize {
        match self {
            Kernels::Avx2 => 16,
            Kernels::Avx512 => MAX_TILE,
        }
    }
    /// Input channels per pass of a sweep over a padded copy ([`Sweep::padded`]). On AVX2 all of
    /// them: each tile's sums then go to memory once, not once per [`CHANNEL_BLOCK`] and part
    /// (Winograd's products and the strided phases ran 5–16 % faster on Zen 2, one thread). On
    /// AVX-512 the block, as measured there.
    fn padded_channels(self, c_in: usize) -> usize {
        match self {
            Kernels::Avx2 => c_in.max(1),
            Kernels::Avx512 => CHANNEL_BLOCK,
        }
    }
    /// The output channels of each forward tile ([`blocks`] of [`Kernels::rows`]).
    fn row_blocks(self, c_out: usize) -> impl Iterator<Item = Range<usize>> {
        blocks(c_out, self.rows())
    }
    /// Input channels per point tile: AVX-512 [`POINT_CHANNELS`], AVX2 [`AVX2_POINT_CHANNELS`].
    fn point_channels(self) -> usize {
        match self {
            Kernels::Avx2 => AVX2_POINT_CHANNELS,
            Kernels::Avx512 => POINT_CHANNELS,
        }
    }
    /// `vectors` output-channel vectors cut into point tiles `(first, count)`: on AVX-512 of 3
    /// (24 accumulators), the rest in 2s, so that no tile of one is left where two of 2 fit
    /// (4 → 2 + 2, 5 → 3 + 2); on AVX2 of one.
    fn point_vectors(self, vectors: usize) -> impl Iterator<Item = (usize, usize)> {
        let mut v0 = 0;
        core::iter::from_fn(move || {
            let count = match (self, vectors - v0) {
                (_, 0) => return None,
                (Kernels::Avx2, _) => 1,
                (Kernels::Avx512, 4) => 2,
                (Kernels::Avx512, left) => left.min(3),
            };
            v0 += count;
            Some((v0 - count, count))
        })
    }
}

/// `0..len` cut into blocks of `full`, then the rest into blocks of 8, 4, 2 and 1 (smaller than
/// `full`): fewer micro-kernel variants than one per remainder.
fn blocks(len: usize, full: usize) -> impl Iterator<Item = Range<usize>> {
    let whole = len / full * full;
    let starts = (0..whole).step_by(full);
    let full_blocks = starts.map(move |o0| o0..o0 + full);
    let rest = [8, 4, 2, 1].into_iter().filter(move |&b| b < full);
    let rest_blocks = rest.scan(whole, move |start, b| {
        let block = *start..*start + ((len - *start) & b);
        *start = block.end;
        Some(block)
    });
    full_blocks.chain(rest_blocks.filter(|b| !b.is_empty()))
}

/// Detected once: AVX2 + FMA, and the AVX-512 kernels where the CPU has AVX-512F and is an
/// Intel one. AMD's Zen 4 runs each 512-bit FMA as two 256-bit halves and was only ever measured
/// with the AVX2 kernels, so AMD keeps them. `FLEX_CONV_KERNELS=avx2` or `=avx512` overrides the
/// choice (to compare the two on one machine, or to test both).
fn kernels() -> Option<Kernels> {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        static KERNELS: std::sync::OnceLock<Option<Kernels>> = std::sync::OnceLock::new();
        *KERNELS.get_or_init(|| {
            let avx2 =
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
            let avx512 = std::is_x86_feature_detected!("avx512f")
                && match std::env::var("FLEX_CONV_KERNELS").as_deref() {
                    Ok("avx2") => false,
                    Ok("avx512") => true,
                    _ => cpu_vendor() == *b"GenuineIntel",
                };
            match (avx512, avx2) {
                (true, true) => Some(Kernels::Avx512),
                (false, true) => Some(Kernels::Avx2),
                _ => None,
            }
        })
    }
    #[cfg(not(all(target_arch = "x86_64", feature = "std")))]
    {
        None
    }
}

/// The CPU's vendor string (CPUID leaf 0: EBX, EDX, ECX).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn cpu_vendor() -> [u8; 12] {
    let leaf = core::arch::x86_64::__cpuid(0);
    let mut vendor = [0; 12];
    for (bytes, register) in vendor.chunks_mut(4).zip([leaf.ebx, leaf.edx, leaf.ecx]) {
        bytes.copy_from_slice(&register.to_le_bytes());
    }
    vendor
}

/// Whether the micro-kernels run on this CPU (AVX2 and FMA at least).
pub fn available() -> bool {
    kernels().is_some()
}

/// Whether 1×1 convolutions on maps of `positions` run faster as direct correlations, read and
/// written in place, than as a GEMM: always with the AVX-512 set; with the AVX2 set on maps of
/// [`AVX2_POINTWISE_POSITIONS`] or more: on MiniGoogLeNet's shapes (`conv_ops`, one thread) its
/// 16 × 6 tiles beat the GEMM on 32×32 maps and lost on 15×15 and 7×7 (4 tiles of 16 for 49
/// positions). (Strided convolutions, as sums over phases, `conv_phases`, beat im2col + GEMM on
/// both sets.)
pub fn pointwise_pays(positions: usize) -> bool {
    match kernels() {
        Some(Kernels::Avx512) => true,
        Some(Kernels::Avx2) => positions >= AVX2_POINTWISE_POSITIONS,
        None => false,
    }
}

/// Smallest map, in positions, whose 1×1 convolutions take the AVX2 set's direct tiles
/// ([`pointwise_pays`]).
const AVX2_POINTWISE_POSITIONS: usize = 1024;

/// Packs the kernel `value(o, i, ky, kx)` for [`correlate`] in the [`KernelLayout`] the
/// micro-kernel reads sequentially.
pub fn pack_kernel(c: &Correlation, value: impl Fn(usize, usize, usize, usize) -> f32) -> Vec<f32> {
    let layout = KernelLayout {
        c_in: c.c_in,
        taps: c.taps(),
    };
    let mut packed = alloc::vec![0.0f32; c.kernel_len()];
    for rows in kernel_row_blocks(c.c_out) {
        for i in 0..c.c_in {
            for tap in 0..layout.taps {
                for o in rows.clone() {
                    packed[layout.at(&rows, i, tap, o)] = value(o, i, tap / c.kw, tap % c.kw);
                }
            }
        }
    }
    packed
}

/// The blocks of output channels that a packed kernel ([`KernelLayout`]) lays out one after
/// another: a caller can write a kernel in that layout as it computes it.
pub fn kernel_row_blocks(c_out: usize) -> impl Iterator<Item = Range<usize>> {
    kernels().expect("AVX2 and FMA").row_blocks(c_out)
}

/// The packed kernel's layout: blocks of output channels ([`kernel_row_blocks`]) one after
/// another, each `[i][tap][row]`, taps row-major (`ky · kw + kx`).
#[derive(Clone, Copy)]
pub struct KernelLayout {
    pub c_in: usize,
    /// Taps per (output, input) channel pair: `kh · kw`.
    pub taps: usize,
}

impl KernelLayout {
    /// Where the weight of output channel `o` (in the block `rows`), input channel `i` and tap
    /// `tap` goes.
    pub fn at(self, rows: &Range<usize>, i: usize, tap: usize, o: usize) -> usize {
        debug_assert!(rows.contains(&o) && i < self.c_in && tap < self.taps);
        rows.start * self.c_in * self.taps + (i * self.taps + tap) * rows.len() + o - rows.start
    }
}

/// Correlates one image (`c_in × in_h × in_w`) with a kernel packed by [`pack_kernel`] into
/// `out` (`c_out × out_h × out_w`), adding `bias[o]` to channel `o`. Writes every element of
/// `out`, so it may start uninitialised (no zero fill of a fresh output first). Call only when
/// [`available`] is true.
pub fn correlate(
    c: &Correlation,
    kernel: &[f32],
    input: &[f32],
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
    scratch: &mut [f32],
) {
    assert!(c.stride == 1);
    assert_eq!(input.len(), c.input_len());
    assert!(scratch.len() >= c.scratch_len());
    if c.in_place() {
        return correlate_in_place(c, kernel, input, bias, out);
    }
    let (padded, flat) = scratch.split_at_mut(c.padded_len());
    pad_input(c, input, padded);
    let part = Part {
        src: padded,
        kernel,
        kh: c.kh,
        kw: c.kw,
    };
    correlate_parts(c, &[part], bias, out, flat);
}

/// [`correlate`] for a 1×1 kernel without padding on a map of at least one tile, whose padded
/// geometry is the input's own (rows of `in_w`, channels `in_h · in_w` apart): the tiles read the
/// input and write the output where they are, with no padded copy in and no copy out. Positions
/// after the last whole tile are covered by one more tile ending at the last position; it
/// overwrites the positions it shares with the one before with its own first channel block's
/// sums, then adds the others, so they end with the same sums, in the same order, as before.
fn correlate_in_place(
    c: &Correlation,
    kernel: &[f32],
    input: &[f32],
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
) {
    assert_eq!(out.len(), c.output_len());
    let kernels = kernels().expect("AVX2 and FMA");
    let (tile, hw) = (kernels.tile(), c.in_h * c.in_w);
    assert!(hw >= tile);
    let whole = hw / tile * tile;
    let part = [Part {
        src: input,
        kernel,
        kh: 1,
        kw: 1,
    }];
    let sweep = |positions| Sweep {
        plane: hw,
        padded_w: c.in_w,
        positions,
        dst_stride: hw,
        ahead: true,
        channels: CHANNEL_BLOCK,
    };
    accumulate(c, kernels, &part, bias, &sweep(0..whole), out);
    if whole < hw {
        accumulate(c, kernels, &part, bias, &sweep(hw - tile..hw), out);
    }
}

/// One correlation of a sum that [`sum_parts`] computes: its input laid out in the padded
/// geometry of the sum's [`Correlation`] (from the part's first channel, every channel a
/// `channel_stride` apart), its kernel packed by [`pack_kernel`] for its own size, no larger than
/// the sum's.
/// Strided convolutions sum their phases this way (`conv_phases`); a part whose kernel is
/// smaller may start its input further in (the input gradient's phases, padded less).
pub(super) struct Part<'a> {
    pub src: &'a [f32],
    pub kernel: &'a [f32],
    pub kh: usize,
    pub kw: usize,
}

/// Fills `flat[o * c.positions() + q]` (at least `c_out * positions` values) with the sum of
/// `parts`' correlations at padded-row position `q` of `c`, plus `bias[o]`, for the `q` of the
/// whole tiles that cover `out_h` rows (later ones are left as they are): one part,
/// [`correlate`]'s sums; Winograd's element-wise products (`conv_winograd`), 1×1 parts over
/// tiles; a strided convolution's phases. Call only when [`available`] is true.
pub(super) fn sum_parts(c: &Correlation, parts: &[Part], bias: Option<&[f32]>, flat: &mut [f32]) {
    let kernels = kernels().expect("AVX2 and FMA");
    accumulate(c, kernels, parts, bias, &Sweep::padded(c, kernels), as_uninit(flat));
}

/// Sums `parts` ([`sum_parts`]) into `out`, `c_out × out_h × out_w`, adding `bias[o]` to channel
/// `o`; writes every element of `out`. `flat` is scratch of at least `c_out * positions` values.
pub(super) fn correlate_parts(
    c: &Correlation,
    parts: &[Part],
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
    flat: &mut [f32],
) {
    assert_eq!(out.len(), c.output_len());
    sum_parts(c, parts, bias, flat);
    let (pw, positions) = (c.padded_w(), c.positions());
    for (out_o, flat_o) in out
        .chunks_mut(c.out_h * c.out_w)
        .zip(flat.chunks(positions))
    {
        for (y, row) in out_o.chunks_mut(c.out_w).enumerate() {
            row.write_copy_of_slice(&flat_o[y * pw..][..row.len()]);
        }
    }
}

/// `values` as the uninitialised slots [`accumulate`] writes.
fn as_uninit(values: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: same layout; callers write only initialised values through it, so `values` stays
    // initialised.
    unsafe { &mut *(values as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// Whether [`weight_gradient`] beats im2col + GEMM for this shape, as measured on MiniGoogLeNet's:
/// both need 16 input channels or more (with fewer, laying out the output gradient costs more
/// than it saves); dot products also need stride 1, a kernel larger than 1×1 (1×1: GEMM's packed
/// panels were faster) and maps of 128 positions or more (7×7 maps make them too short for their
/// horizontal sums), tap tiles take 7×7 maps a group of images at a time, stride 2, and 1×1
/// kernels (on AVX2, as fast as the GEMM on 15×15 and 7×7 maps and faster on 32×32 ones).
pub fn weight_gradient_pays(c: &Correlation) -> bool {
    let dots = c.stride == 1 && c.kh * c.kw > 1 && c.out_h * c.out_w >= 128;
    available() && c.c_in >= 16 && (c.by_taps() || dots)
}

/// Adds to `sums` (laid out as [`Correlation::weight_sums_len`] says) the kernel gradient's sums
/// over a chunk of images: `input` holds `images` inputs, `out_grad` their output gradients,
/// `scratch` at least [`Correlation::weight_scratch_len`]`(images)`. Call only when [`available`]
/// is true.
pub fn weight_gradient(
    c: &Correlation,
    input: &[f32],
    out_grad: &[f32],
    sums: &mut [f32],
    scratch: &mut [f32],
) {
    let images = input.len() / c.input_len().max(1);
    assert_eq!(input.len(), images * c.input_len());
    assert_eq!(out_grad.len(), images * c.output_len());
    assert_eq!(sums.len(), c.weight_sums_len());
    assert!(scratch.len() >= c.weight_scratch_len(images));
    let kernels = kernels().expect("AVX2 and FMA");
    if c.by_taps() {
        return weight_gradient_by_taps(c, images, input, out_grad, sums, scratch);
    }
    assert_eq!(c.stride, 1, "dot products need stride 1");
    let (padded, flat) =
        scratch[..c.weight_scratch_len(images)].split_at_mut(images * c.padded_len());
    let inputs = input.chunks(c.input_len().max(1));
    for (x, p) in inputs.zip(padded.chunks_mut(c.padded_len())) {
        pad_input(c, x, p);
    }
    let per_image = c.c_out * c.grad_positions();
    let grads = out_grad.chunks(c.output_len().max(1));
    for (dy, f) in grads.zip(flat.chunks_mut(per_image)) {
        flatten_output_grad(c, dy, f);
    }
    add_weight_gradient(c, kernels, images, padded, flat, sums);
}

/// The kernel gradient `[o][i][ky][kx]` from sums that [`weight_gradient`] added to: tap sums
/// transposed (16 columns at a time, so that their rows are read in step), others as they are.
pub fn kernel_gradient(c: &Correlation, sums: Vec<f32>) -> Vec<f32> {
    const COLUMNS: usize = 16;
    assert_eq!(sums.len(), c.weight_sums_len());
    if !c.sums_by_taps() {
        return sums;
    }
    let (lanes, columns) = (c.lanes_out(), c.c_in * c.taps());
    let mut dk = alloc::vec![0.0; c.kernel_len()];
    for j0 in (0..columns).step_by(COLUMNS) {
        let j1 = (j0 + COLUMNS).min(columns);
        for (o, dk_o) in dk.chunks_mut(columns.max(1)).enumerate() {
            for (j, d) in (j0..j1).zip(&mut dk_o[j0..j1]) {
                *d = sums[j * lanes + o];
            }
        }
    }
    dk
}

/// The weight gradient as tiles (3×3 kernels: AVX-512 tap tiles or AVX2 column tiles; 1×1 at
/// stride 1: point tiles): a group of images at a time ([`Correlation::tap_group`]), their inputs
/// padded and their output gradients transposed to position-major rows of output channels; the
/// tiles add their taps' sums over the group's positions to `sums` (`[i][tap][lanes_out]`).
fn weight_gradient_by_taps(
    c: &Correlation,
    images: usize,
    input: &[f32],
    out_grad: &[f32],
    sums: &mut [f32],
    scratch: &mut [f32],
) {
    let (group, padded_len) = (c.tap_group(images), c.tap_padded_len());
    let (padded, dyt) = scratch.split_at_mut(group * padded_len);
    for n0 in (0..images).step_by(group) {
        let count = group.min(images - n0);
        for k in 0..count {
            let n = n0 + k;
            if !c.pointwise() {
                let p = &mut padded[k * padded_len..][..padded_len];
                pad_input(c, &input[n * c.input_len()..][..c.input_len()], p);
            }
            let t = &mut dyt[k * c.transposed_len()..][..c.transposed_len()];
            transpose_output_grad(c, &out_grad[n * c.output_len()..][..c.output_len()], t);
        }
        if c.pointwise() {
            let inputs = &input[n0 * c.input_len()..][..count * c.input_len()];
            add_point_tiles(c, count, inputs, dyt, sums);
        } else if kernels() == Some(Kernels::Avx512) {
            add_tap_tiles(c, count, padded, dyt, sums);
        } else {
            add_column_tiles(c, count, padded, dyt, sums);
        }
    }
}

/// Lays one output gradient out position-major, `dyt[p · lanes_out + o] = dy[o][p]`, zeros in the
/// lanes past `c_out`; a block of positions at a time, so that the rows written stay in L1, and
/// within it 8 output channels × 8 positions at a time on AVX2 vectors (the rest one by one).
pub(super) fn transpose_output_grad(c: &Correlation, dy: &[f32], dyt: &mut [f32]) {
    const BLOCK: usize = 64;
    let (hw, lanes) = (c.out_h * c.out_w, c.lanes_out());
    assert!(available() && dy.len() >= c.c_out * hw && dyt.len() >= hw * lanes);
    let squares = c.c_out / 8 * 8;
    for p0 in (0..hw).step_by(BLOCK) {
        let p1 = (p0 + BLOCK).min(hw);
        let whole = p0 + (p1 - p0) / 8 * 8;
        for o0 in (0..squares).step_by(8) {
            for q in (p0..whole).step_by(8) {
                let (src, dst) = (&dy[o0 * hw + q..], &mut dyt[q * lanes + o0..]);
                // SAFETY: AVX2 is there (`available`); both squares are inside the slices (the
                // last row of `src` ends at `(o0 + 7) * hw + q + 8 ≤ c_out * hw`, of `dst` at
                // `(q + 7) * lanes + o0 + 8 ≤ hw * lanes`), asserted by `square`.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    avx2_transpose::square(src, hw, dst, lanes)
                };
            }
        }
        for o in 0..c.c_out {
            let from = if o < squares { whole } else { p0 };
            for (q, &v) in (from..p1).zip(&dy[o * hw + from..o * hw + p1]) {
                dyt[q * lanes + o] = v;
            }
        }
        for row in dyt[p0 * lanes..p1 * lanes].chunks_exact_mut(lanes) {
            row[c.c_out..].fill(0.0);
        }
    }
}

/// Adds a group of `images`' tap tiles to `sums` (`[i][tap][lanes_out]`): for every block of
/// [`TAP_VECTORS`] × [`TAP_LANES`] output channels and every input channel, the 9 taps' sums over
/// the images' positions.
///
/// Bounds: a tile reads image `n`'s channel `i` of `padded` at `n * padded_len + i *
/// channel_stride + (s·y + ky) * padded_w + s·x + kx` for `y < out_h`, `x < out_w`, `ky, kx < 3`
/// (`s` the stride), inside the channel's plane of `(s·(out_h - 1) + 3) * padded_w` (`padded_w =
/// s·(out_w - 1) + 3`); `dyt` at `(n * out_h * out_w + p) *
/// lanes_out + o` for `p < out_h * out_w`, `o < lanes_out`; and `sums` at `(i * 9 + tap) *
/// lanes_out + o`, inside `tap_sums_len`.
fn add_tap_tiles(c: &Correlation, images: usize, padded: &[f32], dyt: &[f32], sums: &mut [f32]) {
    let (lanes, hw) = (c.lanes_out(), c.out_h * c.out_w);
    assert!(padded.len() >= images * c.padded_len() && c.kh == 3 && c.kw == 3);
    assert!(dyt.len() >= images * hw * lanes && sums.len() >= c.tap_sums_len());
    for o0 in (0..lanes).step_by(TAP_VECTORS * TAP_LANES) {
        let vectors = ((lanes - o0) / TAP_LANES).min(TAP_VECTORS);
        for i in 0..c.c_in {
            let tile = TapTile {
                images,
                x: padded[i * c.channel_stride()..].as_ptr(),
                x_stride: c.padded_len(),
                padded_w: c.padded_w(),
                stride: c.stride,
                out_h: c.out_h,
                out_w: c.out_w,
                dy: dyt[o0..].as_ptr(),
                dy_row: lanes,
                dy_stride: hw * lanes,
                sums: sums[i * c.taps() * lanes + o0..].as_mut_ptr(),
                sums_row: lanes,
            };
            // SAFETY: the caller checked for AVX-512 (`weight_gradient_by_taps`); the tile reads
            // and writes inside the buffers (bounds above).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                avx512_taps::tile(&tile, vectors)
            }
        }
    }
}

/// [`add_tap_tiles`] on AVX2: the sums' rows `j = i · 9 + tap` taken [`AVX2_POINT_CHANNELS`] at
/// a time (a tile's columns may span two input channels) × 16 output channels, each column
/// reading the input at its tap's offset ([`ColumnTile`]). Each sum adds the same products in
/// the same order as the AVX-512 tap tiles, so the two sets give the same bits.
///
/// Bounds: those of [`add_tap_tiles`], column `j` reading input channel `j / 9`.
fn add_column_tiles(c: &Correlation, images: usize, padded: &[f32], dyt: &[f32], sums: &mut [f32]) {
    let (lanes, hw, pw) = (c.lanes_out(), c.out_h * c.out_w, c.padded_w());
    assert!(padded.len() >= images * c.padded_len() && c.kh == 3 && c.kw == 3);
    assert!(dyt.len() >= images * hw * lanes && sums.len() >= c.tap_sums_len());
    let columns = c.c_in * c.taps();
    for o0 in (0..lanes).step_by(TAP_LANES) {
        for j0 in (0..columns).step_by(AVX2_POINT_CHANNELS) {
            let own = AVX2_POINT_CHANNELS.min(columns - j0);
            let offsets = core::array::from_fn(|k| {
                let j = j0 + k.min(own - 1);
                let (i, tap) = (j / c.taps(), j % c.taps());
                i * c.channel_stride() + tap / c.kw * pw + tap % c.kw
            });
            let tile = ColumnTile {
                images,
                x: padded.as_ptr(),
                x_stride: c.padded_len(),
                offsets,
                own,
                rows: c.out_h,
                cols: c.out_w,
                row_step: c.stride * pw,
                col_step: c.stride,
                dy: dyt[o0..].as_ptr(),
                dy_row: lanes,
                dy_stride: hw * lanes,
                sums: sums[j0 * lanes + o0..].as_mut_ptr(),
                sums_row: lanes,
            };
            // SAFETY: the CPU has AVX2 and FMA (`weight_gradient` is called only where the kernels
            // are `available`); the tile reads and writes inside the buffers (bounds above).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                avx2_points::tile(&tile)
            }
        }
    }
}

/// Adds a group of `images`' 1×1 products to `sums` (`[i][lanes_out]`) as point tiles
/// ([`PointSums`]): the input read as it is (its own map: stride 1, no padding), the output
/// gradient transposed per image (`dyt`, `hw * lanes_out` per image).
fn add_point_tiles(c: &Correlation, images: usize, input: &[f32], dyt: &[f32], sums: &mut [f32]) {
    let (lanes, hw) = (c.lanes_out(), c.out_h * c.out_w);
    assert!(c.pointwise() && c.in_h * c.in_w == hw && input.len() >= images * c.input_len());
    assert!(dyt.len() >= images * hw * lanes && sums.len() >= c.tap_sums_len());
    let products = PointSums {
        x: input,
        x_row: hw,
        x_stride: c.input_len(),
        dyt,
        dy_stride: hw * lanes,
        shape: [images, c.c_in, hw, lanes],
    };
    products.add_to(sums);
}

/// A 1×1 weight gradient's products over runs of positions, as point tiles: image
/// `n`'s input channel `i` is the run `x[n · x_stride + i · x_row..][..positions]`, its output
/// gradient at position `p` the row `dyt[n · dy_stride + p · lanes..][..lanes]`.
pub(super) struct PointSums<'a> {
    pub x: &'a [f32],
    pub x_row: usize,
    pub x_stride: usize,
    pub dyt: &'a [f32],
    pub dy_stride: usize,
    /// Images, input channels, positions, and output-channel lanes (whole [`TAP_LANES`] vectors).
    pub shape: [usize; 4],
}

impl PointSums<'_> {
    /// Adds `Σ_n Σ_p x[n][i][p] · dyt[n][p][o]` to `sums[i · lanes + o]`, in that order. Call
    /// only where [`available`] is true.
    pub(super) fn add_to(&self, sums: &mut [f32]) {
        let [images, channels, positions, lanes] = self.shape;
        assert!(available() && lanes % TAP_LANES == 0 && self.x_row >= positions);
        if images == 0 || channels == 0 || positions == 0 || lanes == 0 {
            return;
        }
        let x_end = (images - 1) * self.x_stride + (channels - 1) * self.x_row + positions;
        let dy_end = (images - 1) * self.dy_stride + positions * lanes;
        assert!(self.x.len() >= x_end && self.dyt.len() >= dy_end);
        assert!(sums.len() >= channels * lanes);
        let all = PointTile {
            images,
            channels,
            x: self.x.as_ptr(),
            x_row: self.x_row,
            x_stride: self.x_stride,
            positions,
            dy: self.dyt.as_ptr(),
            dy_row: lanes,
            dy_stride: self.dy_stride,
            sums: sums.as_mut_ptr(),
            sums_row: lanes,
        };
        // SAFETY: the CPU has the kernels' features (`kernels` was detected); the tiles read
        // and write inside the buffers (bounds above).
        unsafe { point_tiles(&all, kernels().expect("AVX2 and FMA")) }
    }
}

/// Runs `all` (its `channels` input channels, `dy_row` lanes of output channels) as tiles of
/// [`Kernels::point_channels`] input channels × [`Kernels::point_vectors`] output-channel
/// vectors (on AVX2 one, in two 8-lane halves). Both sets add each sum's products in the same
/// order, so they give the same bits.
///
/// # Safety
/// The CPU must have `kernels`' features; `all`'s pointers must hold what its fields say.
unsafe fn point_tiles(all: &PointTile, kernels: Kernels) {
    let channels = kernels.point_channels();
    for (v0, vectors) in kernels.point_vectors(all.dy_row / TAP_LANES) {
        let o0 = v0 * TAP_LANES;
        for i0 in (0..all.channels).step_by(channels) {
            let tile = PointTile {
                channels: channels.min(all.channels - i0),
                x: all.x.wrapping_add(i0 * all.x_row),
                dy: all.dy.wrapping_add(o0),
                sums: all.sums.wrapping_add(i0 * all.sums_row + o0),
                ..*all
            };
            // SAFETY: as the caller promised for `all`, of which `tile` is a part.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                match kernels {
                    Kernels::Avx512 => avx512_taps::point_tile(&tile, vectors),
                    Kernels::Avx2 => avx2_points::tile(&ColumnTile::points(&tile)),
                }
            }
        }
    }
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
pub(super) fn pad_input(c: &Correlation, input: &[f32], padded: &mut [f32]) {
    pad_images(c, 1, 0, input, padded);
}

/// [`pad_input`] for `images` images side by side (one after another in `input`), image `k`'s
/// column `x` at column `k · slot + x` of each padded row; each image's input columns clipped to
/// the row (one image) or to its slot. Every value is written once.
pub(super) fn pad_images(
    c: &Correlation,
    images: usize,
    slot: usize,
    input: &[f32],
    padded: &mut [f32],
) {
    assert_eq!(input.len(), images * c.input_len());
    let (pw, plane, stride) = (c.padded_w(), c.plane(), c.channel_stride());
    let room = if images == 1 { pw } else { slot };
    // Input columns [0, width) land on padded columns [left, left + width) of the image's room.
    let width = c.in_w.min(room.saturating_sub(c.left));
    let (in_plane, image) = (c.in_h * c.in_w, c.input_len());
    let tail = c.c_in * stride;
    padded[tail..].fill(0.0);
    for (i, channel) in padded[..tail].chunks_mut(stride).enumerate() {
        let (rows, gap) = channel.split_at_mut(plane);
        gap.fill(0.0);
        for (r, row) in rows.chunks_mut(pw).enumerate() {
            let Some(y) = r.checked_sub(c.top).filter(|&y| y < c.in_h) else {
                row.fill(0.0);
                continue;
            };
            // Zeros up to each image's input row, then the row; zeros after the last.
            let mut at = 0;
            for k in 0..images {
                let start = (k * slot + c.left).min(pw);
                row[at..start].fill(0.0);
                let src = &input[k * image + i * in_plane + y * c.in_w..][..width];
                row[start..][..width].copy_from_slice(src);
                at = start + width;
            }
            row[at..].fill(0.0);
        }
    }
}

/// Where [`accumulate`]'s tiles read and write: each part's input channels `plane` apart in rows
/// of `padded_w`, the sums' channels `dst_stride` apart, tiles over `positions` (whole tiles).
struct Sweep {
    plane: usize,
    padded_w: usize,
    positions: Range<usize>,
    dst_stride: usize,
    /// Whether to prefetch each tile's successor's input ([`prefetch_tile`]) and, in the first
    /// channel block, the outputs of the tile [`OUTPUT_AHEAD`] on ([`prefetch_rows`]): for an
    /// input read and an output written in place, in memory.
    ahead: bool,
    /// Input channels per pass over the positions: [`CHANNEL_BLOCK`], or all of them
    /// ([`Kernels::padded_channels`]).
    channels: usize,
}

impl Sweep {
    /// The padded geometry of `c`: channels `channel_stride` apart, sums `positions` apart, tiles
    /// over the `out_h` padded rows in whole tiles of `kernels`. AVX2's 16-position tiles stop
    /// short of [`Correlation::positions`]' rounding to [`MAX_TILE`] on such maps as 15 rows of
    /// 16 (240 positions: 15 tiles, not 16) or 8 rows of 9 (72: 5 tiles, not 6).
    fn padded(c: &Correlation, kernels: Kernels) -> Self {
        let end = (c.out_h * c.padded_w()).next_multiple_of(kernels.tile());
        Sweep {
            plane: c.channel_stride(),
            padded_w: c.padded_w(),
            positions: 0..end,
            dst_stride: c.positions(),
            ahead: false,
            channels: kernels.padded_channels(c.c_in),
        }
    }
}

/// Writes `dst[o * dst_stride + q]` for `q` in the sweep's positions: the sum of the parts'
/// correlations at position `q` plus `bias[o]`, one tile of positions × a block of output
/// channels at a time, the parts' channels taken in order as if they were one input's.
///
/// Bounds: a tile at `q0 ≤ end - tile` (`end` the positions' end) reads a part's channel `i` at
/// `i * plane + q0 + tile - 1 + (kh - 1) * padded_w + kw - 1` from the part's start, at most
/// `(c_in - 1) * plane + end + (kh - 1) * padded_w + kw - 2`, inside `src` (asserted; for
/// [`Sweep::padded`], a part of `c`'s size and `end < out_h * padded_w + MAX_TILE`, `plane =
/// (out_h + kh - 1) * padded_w`, that is below `c.padded_len()`); it reads the block's packed
/// kernel, `rows × channels × taps` values from the block's offset in the part's kernel, and
/// writes `dst` rows `o < c_out` at `q0..q0 + tile`, inside `(c_out - 1) * dst_stride + end`
/// (asserted).
fn accumulate(
    c: &Correlation,
    kernels: Kernels,
    parts: &[Part],
    bias: Option<&[f32]>,
    sweep: &Sweep,
    dst: &mut [MaybeUninit<f32>],
) {
    let (plane, padded_w, dst_stride) = (sweep.plane, sweep.padded_w, sweep.dst_stride);
    let (start, end) = (sweep.positions.start, sweep.positions.end);
    assert!((end - start) % kernels.tile() == 0 && end <= dst_stride);
    assert!(dst.len() >= (c.c_out - 1) * dst_stride + end);
    assert!(bias.is_none_or(|b| b.len() == c.c_out));
    for (k, part) in parts.iter().enumerate() {
        let taps = part.kh * part.kw;
        assert!(part.kh >= 1 && part.kw >= 1 && part.kh <= c.kh && part.kw <= c.kw);
        assert_eq!(part.kernel.len(), c.c_out * c.c_in * taps);
        let reach = (c.c_in - 1) * plane + end + (part.kh - 1) * padded_w + part.kw - 1;
        assert!(part.src.len() >= reach);
        // (first channel, channels, first position) of each tile, channel block by block.
        let blocks = (0..c.c_in).step_by(sweep.channels);
        let blocks = blocks.map(|i0| (i0, sweep.channels.min(c.c_in - i0)));
        let tiles = blocks.flat_map(|(i0, channels)| {
            let starts = (start..end).step_by(kernels.tile());
            starts.map(move |q0| (i0, channels, q0))
        });
        let mut tiles = tiles.peekable();
        while let Some((i0, channels, q0)) = tiles.next() {
            let first = k == 0 && i0 == 0;
            if let (true, Some(&(i1, next_channels, q1))) = (sweep.ahead, tiles.peek()) {
                let next = &part.src[i1 * plane + q1..];
                prefetch_tile(next, next_channels, plane, kernels.tile());
            }
            for rows in kernels.row_blocks(c.c_out) {
                if sweep.ahead && first && q0 + (OUTPUT_AHEAD + 1) * kernels.tile() <= end {
                    let next = rows.start * dst_stride + q0 + OUTPUT_AHEAD * kernels.tile();
                    prefetch_rows(&dst[next..], rows.len(), dst_stride, kernels.tile());
                }
                let block = rows.start * c.c_in * taps;
                let tile = Tile {
                    src: part.src[i0 * plane + q0..].as_ptr(),
                    plane,
                    channels,
                    kh: part.kh,
                    kw: part.kw,
                    padded_w,
                    kernel: part.kernel[block + i0 * taps * rows.len()..].as_ptr(),
                    dst: dst[rows.start * dst_stride + q0..].as_mut_ptr().cast(),
                    dst_stride,
                    start: match bias {
                        _ if !first => Start::Sums,
                        Some(b) => Start::Bias(b[rows.start..].as_ptr()),
                        None => Start::Zero,
                    },
                };
                // SAFETY: the CPU has the kernels' features (`kernels` was detected); the
                // tile stays inside the buffers (bounds above).
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    match kernels {
                        Kernels::Avx2 => avx2::tile(&tile, rows.len()),
                        Kernels::Avx512 => avx512::tile(&tile, rows.len()),
                    }
                }
            }
        }
    }
}

/// Asks for the next tile's input — `len` values from the start of each of `channels` channels
/// `plane` apart in `src` — to be brought into L1 while the current tile runs. An input read in
/// place comes from memory as one short stream per channel, a few to each 4 KiB page, which the
/// hardware prefetchers do not follow; prefetched a tile ahead, 96 → 32 on 32×32 maps ran a
/// third faster than without (AVX-512, one thread), MiniGoogLeNet's 1×1 convolutions on 15×15
/// and 7×7 maps within a few per cent. Inputs padded into scratch are in L2 already, and
/// prefetching them measured slower.
fn prefetch_tile(src: &[f32], channels: usize, plane: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for i in 0..channels {
        let row = &src[i * plane..][..len];
        // Every cache line the row touches: one per 16 values, and the line of its last value.
        for at in (0..len).step_by(16).chain([len - 1]) {
            use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            // SAFETY: a prefetch only hints; the address is inside `row`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(row[at..].as_ptr().cast()) };
        }
    }
}

/// Brings into L1 the first `len` values of `rows` rows `stride` apart from the start of
/// `dst`: the outputs a tile [`OUTPUT_AHEAD`] tiles on will write, when the tiles write the
/// output where it lies in memory. Each output channel's row there is a store stream of its own,
/// more than the hardware prefetchers follow; without this, each first store to a line waited
/// for memory.
fn prefetch_rows(dst: &[MaybeUninit<f32>], rows: usize, stride: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for r in 0..rows {
        // Every cache line of the row's `len` values: one per 16 values, and that of the last.
        for at in (0..len).step_by(16).chain([len - 1]) {
            use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let line = dst.as_ptr().wrapping_add(r * stride + at);
            // SAFETY: a prefetch only hints; it does not fault on any address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.cast()) };
        }
    }
}

/// Adds the kernel gradient to `dk`: for [`DOT_ROWS`] output channels × [`DOT_COLS`] kernel
/// columns (consecutive `(i, ky, kx)`) at a time, dot products over every image's positions,
/// then one horizontal sum each.
///
/// Bounds: image `n`'s gradient rows are `flat[(n * c_out + o) * grad_positions..]`, read for
/// `grad_positions` values; its input is read at `n * padded_len + i * channel_stride + ky *
/// padded_w + kx + q` for `q < grad_positions < out_h * padded_w + 16`, at most
/// `n * padded_len + (c_in - 1) * channel_stride + plane + 14 + kw`, inside `padded_len =
/// c_in * channel_stride + MAX_TILE + kw`.
fn add_weight_gradient(
    c: &Correlation,
    kernels: Kernels,
    images: usize,
    padded: &[f32],
    flat: &[f32],
    dk: &mut [f32],
) {
    let (positions, taps) = (c.grad_positions(), c.taps());
    assert!(padded.len() >= images * c.padded_len());
    assert!(flat.len() >= images * c.c_out * positions && dk.len() == c.kernel_len());
    let columns = c.c_in * taps;
    // Input offset of kernel column `j` (`[i][ky][kx]` flattened, as `dk` stores it).
    let offset = |j: usize| {
        let (i, t) = (j / taps, j % taps);
        i * c.channel_stride() + (t / c.kw) * c.padded_w() + t % c.kw
    };
    for rows in blocks(c.c_out, DOT_ROWS) {
        let (o0, rows) = (rows.start, rows.len());
        for cols in blocks(columns, DOT_COLS) {
            let (j0, cols) = (cols.start, cols.len());
            let dot = Dot {
                images,
                positions,
                x: padded.as_ptr(),
                offsets: core::array::from_fn(|k| offset((j0 + k).min(columns - 1))),
                x_stride: c.padded_len(),
                dy: flat[o0 * positions..].as_ptr(),
                dy_stride: c.c_out * positions,
                dy_row: positions,
            };
            let mut sums = [[0.0f32; DOT_COLS]; DOT_ROWS];
            // SAFETY: the CPU has the kernels' features (`kernels` was detected); the dot
            // products read inside the buffers (bounds above).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                match kernels {
                    Kernels::Avx2 => avx2::dot(&dot, [rows, cols], &mut sums),
                    Kernels::Avx512 => avx512::dot(&dot, [rows, cols], &mut sums),
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

/// One forward micro-kernel call: `rows` output channels × one tile of positions, over
/// `channels` input channels and every tap.
struct Tile {
    src: *const f32,
    plane: usize,
    channels: usize,
    kh: usize,
    kw: usize,
    padded_w: usize,
    /// The block's packed kernel, from its first channel: `[i][ky][kx][row]`.
    kernel: *const f32,
    dst: *mut f32,
    dst_stride: usize,
    start: Start,
}

/// What a tile's sums start from: the sums in `dst` (a later channel block or part), the bias
/// (`Bias(b)`: `b[r]` for the tile's row `r`), or zero.
#[derive(Clone, Copy)]
enum Start {
    Sums,
    Bias(*const f32),
    Zero,
}

/// One dot product call's results: `[row][column]`.
type Sums = [[f32; DOT_COLS]; DOT_ROWS];

/// Dot products of `R` output-gradient rows with `C` shifted input rows over every image.
struct Dot {
    images: usize,
    positions: usize,
    x: *const f32,
    /// Offsets of the `C` input runs from `x`.
    offsets: [usize; DOT_COLS],
    x_stride: usize,
    dy: *const f32,
    dy_stride: usize,
    dy_row: usize,
}

/// Expands one micro-kernel module per instruction set (`$features`): vectors of `$lanes` lanes,
/// zeroed, loaded, stored, multiplied-added, broadcast and summed by the given intrinsics. Forward
/// tiles take the set's [`Kernels::row_blocks`]: `rows` (the full block, then those of its rest
/// that get a 3×3 variant) and 2 or 1; dot products 4, 2 or 1 rows × 3, 2 or 1 columns (the
/// [`blocks`] of those sizes).
macro_rules! micro_kernels {
    (
        $name:ident, $features:literal, $lanes:literal, rows: [$($rows:literal),*],
        $zero:ident, $load:ident, $store:ident, $fmadd:ident, $broadcast:ident, $sum:path
    ) => {
        #[cfg(target_arch = "x86_64")]
        mod $name {
            use super::{Dot, Start, Sums, Tile};
            use core::arch::x86_64::*;

            /// # Safety
            /// The CPU must have the module's features; `t` must point into buffers that hold
            /// what its fields say (see `accumulate`'s bounds).
            #[target_feature(enable = $features)]
            pub(super) unsafe fn tile(t: &Tile, rows: usize) {
                // A compile-time kernel size lets the taps be immediate offsets: 3×3, and the
                // 2×2, 2×1, 1×2 and 1×1 of pointwise convolutions and of stride-2 phases
                // (`conv_phases`).
                unsafe {
                    match (rows, t.kh, t.kw) {
                        $(
                            ($rows, 3, 3) => run_tile::<$rows, 3, 3>(t),
                            ($rows, 2, 2) => run_tile::<$rows, 2, 2>(t),
                            ($rows, 2, 1) => run_tile::<$rows, 2, 1>(t),
                            ($rows, 1, 2) => run_tile::<$rows, 1, 2>(t),
                            ($rows, 1, 1) => run_tile::<$rows, 1, 1>(t),
                            ($rows, _, _) => run_tile::<$rows, 0, 0>(t),
                        )*
                        (2, _, _) => run_tile::<2, 0, 0>(t),
                        (1, _, _) => run_tile::<1, 0, 0>(t),
                        _ => unreachable!("row block of {rows}"),
                    }
                }
            }

            /// `KH × KW` is the kernel size, or 0 × 0 to read it from `t`.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn run_tile<const R: usize, const KH: usize, const KW: usize>(t: &Tile) {
                let kw = if KW > 0 { KW } else { t.kw };
                let kh = if KH > 0 { KH } else { t.kh };
                unsafe {
                    let mut acc = [[$zero(); 2]; R];
                    for (r, a) in acc.iter_mut().enumerate() {
                        match t.start {
                            Start::Sums => {
                                let d = t.dst.add(r * t.dst_stride);
                                *a = [$load(d), $load(d.add($lanes))];
                            }
                            Start::Bias(b) => *a = [$broadcast(*b.add(r)); 2],
                            Start::Zero => {}
                        }
                    }
                    let mut w = t.kernel;
                    for i in 0..t.channels {
                        let s = t.src.add(i * t.plane);
                        for ky in 0..kh {
                            let row = s.add(ky * t.padded_w);
                            for kx in 0..kw {
                                let x0 = $load(row.add(kx));
                                let x1 = $load(row.add(kx + $lanes));
                                for (r, a) in acc.iter_mut().enumerate() {
                                    let k = $broadcast(*w.add(r));
                                    a[0] = $fmadd(x0, k, a[0]);
                                    a[1] = $fmadd(x1, k, a[1]);
                                }
                                w = w.add(R);
                            }
                        }
                    }
                    for (r, a) in acc.iter().enumerate() {
                        let d = t.dst.add(r * t.dst_stride);
                        $store(d, a[0]);
                        $store(d.add($lanes), a[1]);
                    }
                }
            }

            /// # Safety
            /// The CPU must have the module's features; `d` must point into buffers that hold
            /// what its fields say (see `add_weight_gradient`'s bounds).
            #[target_feature(enable = $features)]
            pub(super) unsafe fn dot(d: &Dot, [rows, cols]: [usize; 2], sums: &mut Sums) {
                unsafe {
                    match (rows, cols) {
                        (4, 3) => run_dot::<4, 3>(d, sums),
                        (4, 2) => run_dot::<4, 2>(d, sums),
                        (4, 1) => run_dot::<4, 1>(d, sums),
                        (2, 3) => run_dot::<2, 3>(d, sums),
                        (2, 2) => run_dot::<2, 2>(d, sums),
                        (2, 1) => run_dot::<2, 1>(d, sums),
                        (1, 3) => run_dot::<1, 3>(d, sums),
                        (1, 2) => run_dot::<1, 2>(d, sums),
                        (1, 1) => run_dot::<1, 1>(d, sums),
                        _ => unreachable!("dot block of {rows} × {cols}"),
                    }
                }
            }

            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn run_dot<const R: usize, const C: usize>(d: &Dot, sums: &mut Sums) {
                unsafe {
                    let mut acc = [[$zero(); C]; R];
                    for n in 0..d.images {
                        let x = d.x.add(n * d.x_stride);
                        let dy = d.dy.add(n * d.dy_stride);
                        for q in (0..d.positions).step_by($lanes) {
                            let mut xs = [$zero(); C];
                            for (v, &off) in xs.iter_mut().zip(&d.offsets) {
                                *v = $load(x.add(off + q));
                            }
                            for (r, a) in acc.iter_mut().enumerate() {
                                let g = $load(dy.add(r * d.dy_row + q));
                                for (a, &v) in a.iter_mut().zip(&xs) {
                                    *a = $fmadd(g, v, *a);
                                }
                            }
                        }
                    }
                    for (row, a) in sums.iter_mut().zip(&acc) {
                        for (s, &v) in row.iter_mut().zip(a) {
                            *s = $sum(v);
                        }
                    }
                }
            }
        }
    };
}

micro_kernels!(
    avx2,
    "avx2,fma",
    8,
    rows: [6, 4],
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps,
    _mm256_set1_ps,
    super::horizontal_sum_256
);
micro_kernels!(
    avx512,
    "avx512f",
    16,
    rows: [12, 8, 4],
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_fmadd_ps,
    _mm512_set1_ps,
    core::arch::x86_64::_mm512_reduce_add_ps
);

/// One weight-gradient tap tile: `vectors` × [`TAP_LANES`] output channels × the 9 taps of one
/// input channel, summed over the positions of `images` images.
struct TapTile {
    images: usize,
    /// The input channel's padded plane (first image; image `n` at `n * x_stride`).
    x: *const f32,
    x_stride: usize,
    padded_w: usize,
    /// The convolution's stride: output position `(y, x)` reads input `(s·y + ky, s·x + kx)`.
    stride: usize,
    out_h: usize,
    out_w: usize,
    /// The transposed output gradient from the block's first output channel (first image; image
    /// `n` at `n * dy_stride`).
    dy: *const f32,
    dy_row: usize,
    dy_stride: usize,
    /// The sums of tap 0 from the block's first output channel; tap `t` at `t * sums_row`.
    sums: *mut f32,
    sums_row: usize,
}

/// One weight-gradient tile of a 1×1 convolution: `vectors` × [`TAP_LANES`] output channels ×
/// `channels` (in a tile that runs, at most [`POINT_CHANNELS`]; [`point_tiles`] cuts larger
/// ones) input channels, summed over the positions of `images` images.
#[derive(Clone, Copy)]
struct PointTile {
    images: usize,
    channels: usize,
    /// The first input channel's `positions` values (first image; image `n` at `n * x_stride`,
    /// channel `j` at `j * x_row`).
    x: *const f32,
    x_row: usize,
    x_stride: usize,
    positions: usize,
    /// The transposed output gradient, as in [`TapTile`].
    dy: *const f32,
    dy_row: usize,
    dy_stride: usize,
    /// The sums of the first input channel from the block's first output channel; channel `j` at
    /// `j * sums_row`.
    sums: *mut f32,
    sums_row: usize,
}

/// One AVX2 weight-gradient tile: 16 output channels (two 8-lane halves) × up to
/// [`AVX2_POINT_CHANNELS`] columns of sums — input channels of a 1×1 kernel, or (input channel,
/// tap) pairs of a 3×3 one — column `k` reading the input at `offsets[k]`, summed over the
/// `rows × cols` positions of `images` images.
struct ColumnTile {
    images: usize,
    /// The first image's input (image `n` at `n * x_stride`).
    x: *const f32,
    x_stride: usize,
    /// Each column's offset from an image's input; those past `own` repeat the last own one.
    offsets: [usize; AVX2_POINT_CHANNELS],
    own: usize,
    /// Position `(y, x)` reads `y * row_step + x * col_step` past each column's offset.
    rows: usize,
    cols: usize,
    row_step: usize,
    col_step: usize,
    /// The transposed output gradient, as in [`TapTile`] (position `(y, x)` at row `y * cols + x`).
    dy: *const f32,
    dy_row: usize,
    dy_stride: usize,
    /// The sums of the first column from the block's first output channel; column `k` at
    /// `k * sums_row`.
    sums: *mut f32,
    sums_row: usize,
}

impl ColumnTile {
    /// A point tile's columns: its input channels, `x_row` apart, over one row of positions.
    fn points(t: &PointTile) -> Self {
        let own = t.channels;
        ColumnTile {
            images: t.images,
            x: t.x,
            x_stride: t.x_stride,
            offsets: core::array::from_fn(|j| j.min(own - 1) * t.x_row),
            own,
            rows: 1,
            cols: t.positions,
            row_step: 0,
            col_step: 1,
            dy: t.dy,
            dy_row: t.dy_row,
            dy_stride: t.dy_stride,
            sums: t.sums,
            sums_row: t.sums_row,
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512_taps {
    use super::{POINT_CHANNELS, PointTile, TAP_LANES, TapTile};
    use core::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX-512F; `t` must point into buffers that hold what its fields say
    /// (see `add_tap_tiles`' bounds).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile(t: &TapTile, vectors: usize) {
        unsafe {
            match vectors {
                2 => run::<2>(t),
                1 => run::<1>(t),
                _ => unreachable!("tap tile of {vectors} vectors"),
            }
        }
    }

    /// For each position: `R` vectors of output gradient, each multiplied by the 9 input values
    /// under the kernel's taps (broadcast) into `R × 9` accumulators.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run<const R: usize>(t: &TapTile) {
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 9]; R];
            for (r, a) in acc.iter_mut().enumerate() {
                for (tap, v) in a.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(t.sums.add(tap * t.sums_row + r * TAP_LANES));
                }
            }
            let (pw, s) = (t.padded_w, t.stride);
            for n in 0..t.images {
                let (xs, dy) = (t.x.add(n * t.x_stride), t.dy.add(n * t.dy_stride));
                for y in 0..t.out_h {
                    let row = xs.add(s * y * pw);
                    let g = dy.add(y * t.out_w * t.dy_row);
                    for x in 0..t.out_w {
                        let mut d = [_mm512_setzero_ps(); R];
                        for (r, v) in d.iter_mut().enumerate() {
                            *v = _mm512_loadu_ps(g.add(x * t.dy_row + r * TAP_LANES));
                        }
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let b = _mm512_set1_ps(*row.add(ky * pw + s * x + kx));
                                for (a, &v) in acc.iter_mut().zip(&d) {
                                    a[ky * 3 + kx] = _mm512_fmadd_ps(v, b, a[ky * 3 + kx]);
                                }
                            }
                        }
                    }
                }
            }
            for (r, a) in acc.iter().enumerate() {
                for (tap, &v) in a.iter().enumerate() {
                    _mm512_storeu_ps(t.sums.add(tap * t.sums_row + r * TAP_LANES), v);
                }
            }
        }
    }

    /// # Safety
    /// The CPU must have AVX-512F; `t` must point into buffers that hold what its fields say
    /// (see `PointSums::add_to`'s bounds), with `1 ≤ t.channels ≤ POINT_CHANNELS`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn point_tile(t: &PointTile, vectors: usize) {
        unsafe {
            match vectors {
                3 => run_points::<3>(t),
                2 => run_points::<2>(t),
                1 => run_points::<1>(t),
                _ => unreachable!("1×1 tile of {vectors} vectors"),
            }
        }
    }

    /// For each position: `R` vectors of output gradient, each multiplied by the
    /// [`POINT_CHANNELS`] input channels' values there (broadcast) into `R × POINT_CHANNELS`
    /// accumulators. A tile of fewer channels reads its last channel in the missing ones' place
    /// and stores only its own sums.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run_points<const R: usize>(t: &PointTile) {
        unsafe {
            let own = t.channels;
            let offsets: [usize; POINT_CHANNELS] =
                core::array::from_fn(|j| j.min(own - 1) * t.x_row);
            let mut acc = [[_mm512_setzero_ps(); POINT_CHANNELS]; R];
            for (r, a) in acc.iter_mut().enumerate() {
                for (j, v) in a.iter_mut().enumerate().take(own) {
                    *v = _mm512_loadu_ps(t.sums.add(j * t.sums_row + r * TAP_LANES));
                }
            }
            for n in 0..t.images {
                let (xs, dy) = (t.x.add(n * t.x_stride), t.dy.add(n * t.dy_stride));
                for p in 0..t.positions {
                    let mut d = [_mm512_setzero_ps(); R];
                    for (r, v) in d.iter_mut().enumerate() {
                        *v = _mm512_loadu_ps(dy.add(p * t.dy_row + r * TAP_LANES));
                    }
                    for (j, &offset) in offsets.iter().enumerate() {
                        let b = _mm512_set1_ps(*xs.add(offset + p));
                        for (a, &v) in acc.iter_mut().zip(&d) {
                            a[j] = _mm512_fmadd_ps(v, b, a[j]);
                        }
                    }
                }
            }
            for (r, a) in acc.iter().enumerate() {
                for (j, &v) in a.iter().enumerate().take(own) {
                    _mm512_storeu_ps(t.sums.add(j * t.sums_row + r * TAP_LANES), v);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2_transpose {
    use core::arch::x86_64::*;

    /// Writes the 8 × 8 square of `src` (rows `src_row` apart) transposed into `dst` (rows
    /// `dst_row` apart): `dst[k · dst_row + j] = src[j · src_row + k]`.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn square(src: &[f32], src_row: usize, dst: &mut [f32], dst_row: usize) {
        assert!(src.len() >= 7 * src_row + 8 && dst.len() >= 7 * dst_row + 8);
        // SAFETY: every load and store is inside the slices (asserted above).
        unsafe {
            let r: [__m256; 8] =
                core::array::from_fn(|j| _mm256_loadu_ps(src[j * src_row..].as_ptr()));
            // Pairs of rows interleaved, then quarters gathered: `q[k]` holds column `k` of rows
            // 0–3 in its low half and column `k + 4` in its high half, `q[k + 4]` the same for
            // rows 4–7.
            let t: [__m256; 8] = core::array::from_fn(|j| {
                let (a, b) = (r[j / 2 * 2], r[j / 2 * 2 + 1]);
                if j % 2 == 0 {
                    _mm256_unpacklo_ps(a, b)
                } else {
                    _mm256_unpackhi_ps(a, b)
                }
            });
            let q: [__m256; 8] = core::array::from_fn(|k| {
                let base = k / 4 * 4;
                let (lo, hi) = (t[base + (k % 4) / 2], t[base + 2 + (k % 4) / 2]);
                if k % 2 == 0 {
                    _mm256_shuffle_ps::<0x44>(lo, hi)
                } else {
                    _mm256_shuffle_ps::<0xEE>(lo, hi)
                }
            });
            for k in 0..4 {
                let low = _mm256_permute2f128_ps::<0x20>(q[k], q[k + 4]);
                let high = _mm256_permute2f128_ps::<0x31>(q[k], q[k + 4]);
                _mm256_storeu_ps(dst[k * dst_row..].as_mut_ptr(), low);
                _mm256_storeu_ps(dst[(k + 4) * dst_row..].as_mut_ptr(), high);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2_points {
    use super::{AVX2_POINT_CHANNELS, ColumnTile};
    use core::arch::x86_64::*;

    /// For each position: the two 8-lane halves of one [`super::TAP_LANES`] vector of output
    /// gradient, each multiplied by the [`AVX2_POINT_CHANNELS`] columns' input values there
    /// (broadcast) into 12 accumulators. A tile of fewer columns reads its last column in the
    /// missing ones' place and stores only its own sums.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `t` must point into buffers that hold what its fields say,
    /// with `1 ≤ t.own ≤ AVX2_POINT_CHANNELS`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile(t: &ColumnTile) {
        // A compile-time column step for the 1×1 products and stride-1 taps, and stride 2.
        unsafe {
            match t.col_step {
                1 => run::<1>(t),
                2 => run::<2>(t),
                _ => run::<0>(t),
            }
        }
    }

    /// `S` is the column step, or 0 to read it from `t`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run<const S: usize>(t: &ColumnTile) {
        const HALF: usize = 8;
        let step = if S > 0 { S } else { t.col_step };
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); AVX2_POINT_CHANNELS]; 2];
            for (r, a) in acc.iter_mut().enumerate() {
                for (j, v) in a.iter_mut().enumerate().take(t.own) {
                    *v = _mm256_loadu_ps(t.sums.add(j * t.sums_row + r * HALF));
                }
            }
            for n in 0..t.images {
                let (xs, dy) = (t.x.add(n * t.x_stride), t.dy.add(n * t.dy_stride));
                for y in 0..t.rows {
                    let row = xs.add(y * t.row_step);
                    let g_row = dy.add(y * t.cols * t.dy_row);
                    for x in 0..t.cols {
                        let g = g_row.add(x * t.dy_row);
                        let d = [_mm256_loadu_ps(g), _mm256_loadu_ps(g.add(HALF))];
                        let at = row.add(x * step);
                        for (j, &offset) in t.offsets.iter().enumerate() {
                            let b = _mm256_broadcast_ss(&*at.add(offset));
                            for (a, &v) in acc.iter_mut().zip(&d) {
                                a[j] = _mm256_fmadd_ps(v, b, a[j]);
                            }
                        }
                    }
                }
            }
            for (r, a) in acc.iter().enumerate() {
                for (j, &v) in a.iter().enumerate().take(t.own) {
                    _mm256_storeu_ps(t.sums.add(j * t.sums_row + r * HALF), v);
                }
            }
        }
    }
}

/// The sum of a vector's 8 lanes, pairwise.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn horizontal_sum_256(v: core::arch::x86_64::__m256) -> f32 {
    use core::arch::x86_64::*;
    let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
    _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1)))
}
