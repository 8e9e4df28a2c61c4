//! Where the images come from and how they are read: the data settings, the layout of the data
//! folder (CIFAR-10 binary batches, downloaded when missing, or an image folder), and loading
//! both splits or the test split alone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::image_set::ImageSet;
use super::{cifar, download, folder};
use crate::console::Console;
use crate::error::{Error, Result};

/// Official CIFAR-10 binary archive.
pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// MD5 of [`CIFAR10_URL`], as published on the CIFAR-10 page.
pub const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

/// Where the images come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// CIFAR-10 root (holding `cifar-10-batches-bin/`) or image folder (`train/`, `test/`).
    pub path: PathBuf,
    /// `auto`, `cifar-binary` or `image-folder`.
    pub format: DataFormat,
    /// Download CIFAR-10 into `path` when no dataset is found there.
    pub download: bool,
    /// Archive address for the download.
    pub url: String,
    /// Expected MD5 of the archive.
    pub md5: String,
    /// Keep only the first N training images of each class.
    pub train_per_class: Option<usize>,
    /// Keep only the first N test images of each class.
    pub test_per_class: Option<usize>,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data"),
            format: DataFormat::Auto,
            download: true,
            url: CIFAR10_URL.to_string(),
            md5: CIFAR10_MD5.to_string(),
            train_per_class: None,
            test_per_class: None,
        }
    }
}

crate::named_enum! {
    /// How the data folder is laid out.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub enum DataFormat("data format") {
        /// Detect from the folder's content; download CIFAR-10 when nothing is there.
        Auto = "auto",
        /// CIFAR-10 binary batches (`cifar-10-batches-bin/`).
        CifarBinary = "cifar-binary",
        /// `train/<class>/*` and `test/<class>/*` image files.
        ImageFolder = "image-folder",
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
pub fn load(config: &DataConfig, console: Console) -> Result<Datasets> {
    let root = &config.path;
    let format = match config.format {
        DataFormat::Auto => detect(root).unwrap_or(DataFormat::CifarBinary),
        explicit => explicit,
    };
    let (train, test) = match format {
        DataFormat::ImageFolder => folder::load(
            root,
            (config.train_per_class, config.test_per_class),
            console,
        )?,
        _ => {
            if !cifar::is_present(root) {
                fetch_cifar(config, console)?;
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
pub fn load_test(config: &DataConfig, classes: &[String], console: Console) -> Result<ImageSet> {
    let root = &config.path;
    let format = match config.format {
        DataFormat::Auto => detect_test(root).unwrap_or(DataFormat::CifarBinary),
        explicit => explicit,
    };
    let test = if format == DataFormat::ImageFolder {
        folder::load_test(root, classes, config.test_per_class, console)?
    } else {
        if !cifar::is_present(root) {
            fetch_cifar(config, console)?;
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

fn fetch_cifar(config: &DataConfig, console: Console) -> Result<()> {
    if !config.download {
        return Err(Error::data(
            &config.path,
            "no dataset found (expected cifar-10-batches-bin/ or train/ and test/ folders) and \
             downloading is disabled",
        ));
    }
    download::download_cifar10(&config.url, &config.md5, &config.path, console)
}

fn subset(set: ImageSet, per_class: Option<usize>) -> ImageSet {
    match per_class {
        Some(n) => set.first_per_class(n),
        None => set,
    }
}
