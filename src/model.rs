//! MiniGoogLeNet (Zhang et al., 2017, as in the Keras reference), built from Burn modules.
//!
//! ```text
//! conv_module(K, k×k, stride) = Conv2d → BatchNorm → ReLU
//! inception(K1, K3)           = concat[conv_module(K1, 1×1), conv_module(K3, 3×3, same)]
//! downsample(K)               = concat[conv_module(K, 3×3, stride 2, valid), MaxPool 3×3/2]
//!
//! conv_module(96, 3×3) → inception(32,32) → inception(32,48) → downsample(80)        32×32 → 15×15
//! → inception(112,48) → inception(96,64) → inception(80,80) → inception(48,96)
//! → downsample(96)                                                                  15×15 → 7×7
//! → inception(176,160) → inception(176,160) → AvgPool 7×7 → Dropout 0.5 → Linear(classes)
//! ```
//!
//! Weights start as Keras' do (Glorot-uniform kernels); BatchNorm uses Keras' defaults
//! (running-stat momentum 0.99, i.e. Burn momentum 0.01; epsilon 1e-3).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d, Relu,
};
use burn::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Name stored with saved weights.
pub const ARCHITECTURE: &str = "MiniGoogLeNet";
/// Version stored with saved weights: changes when the weights' layout does.
pub const ARCHITECTURE_VERSION: u32 = 1;
/// Dropout rate before the classifier.
pub const DROPOUT: f64 = 0.5;

fn glorot() -> Initializer {
    Initializer::XavierUniform { gain: 1.0 }
}

/// Conv2d → BatchNorm → ReLU.
#[derive(Module, Debug)]
pub struct ConvModule {
    conv: Conv2d,
    norm: BatchNorm,
    activation: Relu,
}

impl ConvModule {
    /// `filters` k×k filters over `channels` inputs.
    pub fn new(
        channels: usize,
        filters: usize,
        kernel: usize,
        stride: usize,
        padding: PaddingConfig2d,
        device: &Device,
    ) -> Self {
        Self {
            conv: Conv2dConfig::new([channels, filters], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(padding)
                .with_initializer(glorot())
                .init(device),
            norm: BatchNormConfig::new(filters)
                .with_momentum(0.01)
                .with_epsilon(1e-3)
                .init(device),
            activation: Relu::new(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.activation
            .forward(self.norm.forward(self.conv.forward(x)))
    }
}

/// A 1×1 and a 3×3 branch, concatenated on channels.
#[derive(Module, Debug)]
pub struct Inception {
    branch1: ConvModule,
    branch3: ConvModule,
}

impl Inception {
    pub fn new(channels: usize, k1: usize, k3: usize, device: &Device) -> Self {
        Self {
            branch1: ConvModule::new(channels, k1, 1, 1, PaddingConfig2d::Same, device),
            branch3: ConvModule::new(channels, k3, 3, 1, PaddingConfig2d::Same, device),
        }
    }

    /// Output channels: `k1 + k3`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        Tensor::cat(
            vec![self.branch1.forward(x.clone()), self.branch3.forward(x)],
            1,
        )
    }
}

/// A strided 3×3 convolution and a 3×3 max pool, concatenated on channels.
#[derive(Module, Debug)]
pub struct Downsample {
    conv: ConvModule,
    pool: MaxPool2d,
}

impl Downsample {
    pub fn new(channels: usize, filters: usize, device: &Device) -> Self {
        Self {
            conv: ConvModule::new(channels, filters, 3, 2, PaddingConfig2d::Valid, device),
            pool: MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init(),
        }
    }

    /// Output channels: `channels + filters`; size `(s − 3) / 2 + 1`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        Tensor::cat(vec![self.conv.forward(x.clone()), self.pool.forward(x)], 1)
    }
}

/// The whole network.
#[derive(Module, Debug)]
pub struct MiniGoogLeNet {
    stem: ConvModule,
    stage1: Vec<Inception>,
    down1: Downsample,
    stage2: Vec<Inception>,
    down2: Downsample,
    stage3: Vec<Inception>,
    pool: AvgPool2d,
    classifier: Linear,
}

impl MiniGoogLeNet {
    /// A freshly initialised network for `classes` classes on 32×32 RGB input.
    pub fn new(classes: usize, device: &Device) -> Self {
        let stage = |mut channels: usize, widths: &[(usize, usize)]| {
            let blocks = widths
                .iter()
                .map(|&(k1, k3)| {
                    let block = Inception::new(channels, k1, k3, device);
                    channels = k1 + k3;
                    block
                })
                .collect::<Vec<_>>();
            (blocks, channels)
        };
        let (stage1, c) = stage(96, &[(32, 32), (32, 48)]);
        let down1 = Downsample::new(c, 80, device);
        let (stage2, c) = stage(c + 80, &[(112, 48), (96, 64), (80, 80), (48, 96)]);
        let down2 = Downsample::new(c, 96, device);
        let (stage3, c) = stage(c + 96, &[(176, 160), (176, 160)]);
        Self {
            stem: ConvModule::new(3, 96, 3, 1, PaddingConfig2d::Same, device),
            stage1,
            down1,
            stage2,
            down2,
            stage3,
            pool: AvgPool2dConfig::new([7, 7]).init(),
            classifier: LinearConfig::new(c, classes)
                .with_initializer(glorot())
                .init(device),
        }
    }

    /// Logits `[batch, classes]` for images `[batch, 3, 32, 32]`, without dropout (inference).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.classifier.forward(self.features(images))
    }

    /// Logits for training: the pooled features are multiplied by `keep`, a dropout mask
    /// `[batch, features]` from [`dropout_mask`]. The mask comes from the host so that a run's
    /// random numbers depend on (seed, iteration) only, on every backend, and an interrupted run
    /// can resume at any batch.
    pub fn forward_train(&self, images: Tensor<4>, keep: Tensor<2>) -> Tensor<2> {
        self.classifier.forward(self.features(images) * keep)
    }

    /// Width of the features entering the classifier.
    pub fn feature_width(&self) -> usize {
        self.classifier.weight.dims()[0]
    }

    /// Pooled features `[batch, 336]`.
    fn features(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward(images);
        x = self.stage1.iter().fold(x, |x, block| block.forward(x));
        x = self.down1.forward(x);
        x = self.stage2.iter().fold(x, |x, block| block.forward(x));
        x = self.down2.forward(x);
        x = self.stage3.iter().fold(x, |x, block| block.forward(x));
        self.pool.forward(x).flatten::<2>(1, 3)
    }
}

/// Inverted-dropout mask for iteration `iteration` of a run seeded with `seed`: each value is
/// 0 (dropped, probability [`DROPOUT`]) or 1 / (1 − DROPOUT), `batch × features` values.
pub fn dropout_mask(batch: usize, features: usize, seed: u64, iteration: u64) -> Vec<f32> {
    let mut rng = SmallRng::seed_from_u64(seed ^ iteration.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let kept = (1.0 / (1.0 - DROPOUT)) as f32;
    (0..batch * features)
        .map(|_| if rng.random_bool(DROPOUT) { 0.0 } else { kept })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trainable parameters of conv_module: kernel + bias + BatchNorm gamma and beta.
    fn conv_module(k: usize, cin: usize, kout: usize) -> usize {
        k * k * cin * kout + kout + 2 * kout
    }

    fn inception(cin: usize, k1: usize, k3: usize) -> usize {
        conv_module(1, cin, k1) + conv_module(3, cin, k3)
    }

    #[test]
    fn parameter_count_matches_the_hand_count() {
        let by_hand = conv_module(3, 3, 96)
            + inception(96, 32, 32)
            + inception(64, 32, 48)
            + conv_module(3, 80, 80)
            + inception(160, 112, 48)
            + inception(160, 96, 64)
            + inception(160, 80, 80)
            + inception(160, 48, 96)
            + conv_module(3, 144, 96)
            + inception(240, 176, 160)
            + inception(336, 176, 160)
            + (336 * 10 + 10);
        // The same sum written out, so a wrong helper cannot hide a wrong model.
        assert_eq!(by_hand, 1_652_826);
        // Burn counts BatchNorm's running mean and variance as Keras' total does (1,656,250):
        // 2 x 1,712 BatchNorm channels on top of the trainable parameters.
        let model = MiniGoogLeNet::new(10, &Device::flex());
        assert_eq!(model.num_params(), by_hand + 2 * 1_712);
        assert_eq!(model.num_params(), 1_656_250);
    }

    #[test]
    fn output_shapes_follow_the_architecture() {
        let device = Device::flex();
        let model = MiniGoogLeNet::new(7, &device);
        let x = Tensor::<4>::zeros([2, 3, 32, 32], &device);
        let stem = model.stem.forward(x.clone());
        assert_eq!(stem.dims(), [2, 96, 32, 32]);
        let s1 = model.stage1.iter().fold(stem, |x, b| b.forward(x));
        assert_eq!(s1.dims(), [2, 80, 32, 32]);
        let d1 = model.down1.forward(s1);
        assert_eq!(d1.dims(), [2, 160, 15, 15]);
        let s2 = model.stage2.iter().fold(d1, |x, b| b.forward(x));
        let d2 = model.down2.forward(s2);
        assert_eq!(d2.dims(), [2, 240, 7, 7]);
        assert_eq!(model.forward(x).dims(), [2, 7]);
        assert_eq!(model.feature_width(), 336);
    }

    #[test]
    fn dropout_masks_drop_half_and_depend_on_seed_and_iteration_only() {
        let mask = dropout_mask(64, 336, 7, 11);
        assert_eq!(mask, dropout_mask(64, 336, 7, 11));
        assert_ne!(mask, dropout_mask(64, 336, 7, 12));
        assert_ne!(mask, dropout_mask(64, 336, 8, 11));
        assert!(mask.iter().all(|&v| v == 0.0 || v == 2.0));
        let dropped = mask.iter().filter(|&&v| v == 0.0).count() as f64 / mask.len() as f64;
        assert!((dropped - 0.5).abs() < 0.02, "{dropped}");
    }
}
