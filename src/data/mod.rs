//! Datasets on disk → images in memory as bytes, plus the preprocessing every batch gets.
//!
//! [`source`] reads the configured data folder ([`cifar`] binary batches, [`download`]ed when
//! missing, or an image [`folder`]) into [`ImageSet`]s. Images stay `u8` in memory (CIFAR-10 is
//! 150 MB that way) and are turned into `f32` per batch by [`loader`], which subtracts the
//! [`mean`] image and applies the [`augment`] transform.

pub mod augment;
pub mod cifar;
pub mod download;
pub mod folder;
pub mod image_set;
pub mod loader;
pub mod mean;
pub mod source;

pub use image_set::{CHANNELS, INPUT_SIZE, ImageSet};
pub use source::{
    CIFAR10_MD5, CIFAR10_URL, DataConfig, DataFormat, Datasets, detect, load, load_test,
};
