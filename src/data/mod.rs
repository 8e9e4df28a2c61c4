//! Datasets on disk → images in memory as bytes, plus the preprocessing every batch gets.
//!
//! Images stay `u8` in memory (CIFAR-10 is 150 MB that way) and are turned into `f32` per batch
//! by [`loader`], which subtracts the [`mean`] image and applies the [`augment`] transform.

pub mod augment;
pub mod cifar;
pub mod download;
pub mod folder;
pub mod loader;
pub mod mean;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::DataConfig;
use crate::error::{Error, Result};

/// Side of the square images the model takes. Folder images of another size are resized to it.
pub const INPUT_SIZE: usize = 32;
/// Colour channels (RGB).
pub const CHANNELS: usize = 3;

/// How the data folder is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataFormat {
    /// Detect from the folder's content; download CIFAR-10 when nothing is there.
    Auto,
    /// CIFAR-10 binary batches (`cifar-10-batches-bin/`).
    CifarBinary,
    /// `train/<class>/*` and `test/<class>/*` image files.
    ImageFolder,
}

/// Images of one split as bytes, height × width × channel per image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// Class names, index = label.
    pub classes: Vec<String>,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    /// All images back to back, HWC order.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u32>,
}

impl ImageSet {
    /// An empty set of `INPUT_SIZE` RGB images.
    pub fn empty(classes: Vec<String>) -> Self {
        Self {
            classes,
            height: INPUT_SIZE,
            width: INPUT_SIZE,
            channels: CHANNELS,
            pixels: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// The bytes of image `i` (HWC).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Append one image.
    pub fn push(&mut self, pixels: &[u8], label: u32) {
        debug_assert_eq!(pixels.len(), self.image_len());
        self.pixels.extend_from_slice(pixels);
        self.labels.push(label);
    }

    /// The first `n` images of each class, in their original order.
    pub fn first_per_class(&self, n: usize) -> ImageSet {
        let mut kept = vec![0usize; self.classes.len()];
        let mut out = ImageSet {
            pixels: Vec::new(),
            labels: Vec::new(),
            ..self.clone_meta()
        };
        for i in 0..self.len() {
            let label = self.labels[i] as usize;
            if kept[label] < n {
                kept[label] += 1;
                out.push(self.image(i), self.labels[i]);
            }
        }
        out
    }

    /// Images per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    fn clone_meta(&self) -> ImageSet {
        ImageSet {
            classes: self.classes.clone(),
            height: self.height,
            width: self.width,
            channels: self.channels,
            pixels: Vec::new(),
            labels: Vec::new(),
        }
    }
}

/// Train and test splits.
#[derive(Debug, Clone)]
pub struct Datasets {
    pub train: ImageSet,
    pub test: ImageSet,
    /// What was loaded, for the start-of-run message.
    pub description: String,
}

/// Load the configured dataset (downloading CIFAR-10 when allowed and nothing is there), then
/// keep the requested number of images per class.
pub fn load(config: &DataConfig) -> Result<Datasets> {
    let root = &config.path;
    let format = match config.format {
        DataFormat::Auto => detect(root).unwrap_or(DataFormat::CifarBinary),
        explicit => explicit,
    };
    let (train, test) = match format {
        DataFormat::ImageFolder => {
            folder::load(root, config.train_per_class, config.test_per_class)?
        }
        _ => {
            if !cifar::is_present(root) {
                fetch_cifar(config)?;
            }
            let (train, test) = cifar::load(root)?;
            (
                subset(train, config.train_per_class),
                subset(test, config.test_per_class),
            )
        }
    };
    if train.is_empty() || test.is_empty() {
        return Err(Error::data(
            root,
            "the training or test split holds no images",
        ));
    }
    let description = format!(
        "{} ({}): {} training and {} test images, {} classes",
        root.display(),
        if format == DataFormat::ImageFolder {
            "image folder"
        } else {
            "CIFAR-10 binary"
        },
        train.len(),
        test.len(),
        train.classes.len()
    );
    Ok(Datasets {
        train,
        test,
        description,
    })
}

/// The test split of the configured dataset, labelled by `classes` (a saved model's): image
/// folders are read by class name; CIFAR-10 must have the same classes.
pub fn load_test(config: &DataConfig, classes: &[String]) -> Result<ImageSet> {
    let root = &config.path;
    let format = match config.format {
        DataFormat::Auto => detect_test(root).unwrap_or(DataFormat::CifarBinary),
        explicit => explicit,
    };
    let test = if format == DataFormat::ImageFolder {
        folder::load_test(root, classes, config.test_per_class)?
    } else {
        if !cifar::is_present(root) {
            fetch_cifar(config)?;
        }
        let (_, test) = cifar::load(root)?;
        if test.classes != classes {
            return Err(Error::data(
                root,
                format!(
                    "the model's classes ({}) are not this dataset's ({})",
                    classes.join(", "),
                    test.classes.join(", ")
                ),
            ));
        }
        subset(test, config.test_per_class)
    };
    if test.is_empty() {
        return Err(Error::data(root, "the test split holds no images"));
    }
    Ok(test)
}

/// Like [`detect`], for a folder that may hold only `test/`.
fn detect_test(root: &Path) -> Option<DataFormat> {
    detect(root).or_else(|| {
        root.join("test")
            .is_dir()
            .then_some(DataFormat::ImageFolder)
    })
}

/// The layout found at `root`, if any.
pub fn detect(root: &Path) -> Option<DataFormat> {
    if cifar::is_present(root) {
        Some(DataFormat::CifarBinary)
    } else if root.join("train").is_dir() && root.join("test").is_dir() {
        Some(DataFormat::ImageFolder)
    } else {
        None
    }
}

fn fetch_cifar(config: &DataConfig) -> Result<()> {
    if !config.download {
        return Err(Error::data(
            &config.path,
            "no dataset found (expected cifar-10-batches-bin/ or train/ and test/ folders) and \
             downloading is disabled",
        ));
    }
    download::download_cifar10(&config.url, &config.md5, &config.path)
}

fn subset(set: ImageSet, per_class: Option<usize>) -> ImageSet {
    match per_class {
        Some(n) => set.first_per_class(n),
        None => set,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_per_class_keeps_order_and_balance() {
        let mut set = ImageSet::empty(vec!["a".into(), "b".into()]);
        let img = vec![0u8; set.image_len()];
        for label in [0, 1, 0, 0, 1, 1, 1] {
            set.push(&img, label);
        }
        let sub = set.first_per_class(2);
        assert_eq!(sub.labels, vec![0, 1, 0, 1]);
        assert_eq!(sub.class_counts(), vec![2, 2]);
        assert_eq!(sub.pixels.len(), 4 * set.image_len());
    }
}
