//! CIFAR-10 binary batches: `data_batch_1..5.bin` and `test_batch.bin`, each a run of records of
//! one label byte and 3072 pixel bytes (1024 red, then 1024 green, then 1024 blue, row-major).

use std::path::{Path, PathBuf};

use super::image_set::{CHANNELS, INPUT_SIZE, ImageSet};
use crate::error::{Error, Result};

/// Bytes per record: label + 32·32·3 pixels.
/// Images in CIFAR-10's training split.
pub const TRAIN_IMAGES: usize = 50_000;
/// Images in CIFAR-10's test split.
pub const TEST_IMAGES: usize = 10_000;
pub const RECORD_LEN: usize = 1 + INPUT_SIZE * INPUT_SIZE * CHANNELS;
/// The folder the official archive unpacks to.
pub const DIR_NAME: &str = "cifar-10-batches-bin";
/// Training batch files, in order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// Test batch file.
pub const TEST_FILE: &str = "test_batch.bin";
/// Class names file.
pub const META_FILE: &str = "batches.meta.txt";
/// Class names when `batches.meta.txt` is absent.
pub const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// The folder holding the batch files: `root/cifar-10-batches-bin`, or `root` itself.
pub fn batches_dir(root: &Path) -> PathBuf {
    let nested = root.join(DIR_NAME);
    if nested.is_dir() {
        nested
    } else {
        root.to_path_buf()
    }
}

/// Whether `root` holds the test batch (the rest is checked when loading).
pub fn is_present(root: &Path) -> bool {
    batches_dir(root).join(TEST_FILE).is_file()
}

/// Load the five training batches and the test batch.
pub fn load(root: &Path) -> Result<(ImageSet, ImageSet)> {
    let dir = batches_dir(root);
    let classes = class_names(&dir)?;
    let mut train = ImageSet::empty(classes.clone());
    for file in TRAIN_FILES {
        read_batch(&dir.join(file), &mut train)?;
    }
    let mut test = ImageSet::empty(classes);
    read_batch(&dir.join(TEST_FILE), &mut test)?;
    Ok((train, test))
}

/// Read one batch file into `set`.
pub fn read_batch(path: &Path, set: &mut ImageSet) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
    parse_records(&bytes, set).map_err(|message| Error::data(path, message))
}

/// Append every record of `bytes` to `set`, converting planes (CHW) to interleaved HWC.
pub fn parse_records(bytes: &[u8], set: &mut ImageSet) -> std::result::Result<(), String> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD_LEN) {
        return Err(format!(
            "{} bytes is not a whole number of {RECORD_LEN}-byte records (truncated or not a CIFAR-10 batch)",
            bytes.len()
        ));
    }
    let plane = INPUT_SIZE * INPUT_SIZE;
    let mut hwc = vec![0u8; plane * CHANNELS];
    for (index, record) in bytes.chunks_exact(RECORD_LEN).enumerate() {
        let label = record[0] as usize;
        if label >= set.classes.len() {
            return Err(format!(
                "record {index} has label {label}, but there are only {} classes",
                set.classes.len()
            ));
        }
        for (p, px) in hwc.chunks_exact_mut(CHANNELS).enumerate() {
            for (c, v) in px.iter_mut().enumerate() {
                *v = record[1 + c * plane + p];
            }
        }
        set.push(&hwc, label as u32);
    }
    Ok(())
}

fn class_names(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join(META_FILE);
    if !path.is_file() {
        return Ok(CLASSES.iter().map(|s| s.to_string()).collect());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("cannot read", &path, e))?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.is_empty() || names.len() > 256 {
        return Err(Error::data(&path, "expected one class name per line"));
    }
    Ok(names)
}

/// Encode images as CIFAR-10 records (for tests and for writing small datasets).
pub fn encode_records(set: &ImageSet) -> Vec<u8> {
    let plane = set.height * set.width;
    let mut out = Vec::with_capacity(set.len() * RECORD_LEN);
    for i in 0..set.len() {
        out.push(set.labels[i] as u8);
        let image = set.image(i);
        for c in 0..set.channels {
            out.extend((0..plane).map(|p| image[p * set.channels + c]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<String> {
        CLASSES.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn record_planes_become_interleaved_pixels() {
        let mut record = vec![7u8];
        record.extend(std::iter::repeat_n(1u8, 1024)); // R
        record.extend((0..1024).map(|i| (i % 256) as u8)); // G
        record.extend(std::iter::repeat_n(3u8, 1024)); // B
        let mut set = ImageSet::empty(classes());
        parse_records(&record, &mut set).unwrap();
        assert_eq!(set.labels, vec![7]);
        let img = set.image(0);
        assert_eq!(&img[..6], &[1, 0, 3, 1, 1, 3]);
        // pixel 300 = row 9, column 12
        assert_eq!(&img[300 * 3..301 * 3], &[1, (300 % 256) as u8, 3]);
    }

    #[test]
    fn encode_and_parse_round_trip() {
        let mut set = ImageSet::empty(classes());
        let a: Vec<u8> = (0..3072).map(|i| (i * 7 % 251) as u8).collect();
        let b: Vec<u8> = (0..3072).map(|i| (i * 3 % 256) as u8).collect();
        set.push(&a, 2);
        set.push(&b, 9);
        let mut back = ImageSet::empty(classes());
        parse_records(&encode_records(&set), &mut back).unwrap();
        assert_eq!(back, set);
    }

    #[test]
    fn truncated_and_bad_labels_are_rejected() {
        let mut set = ImageSet::empty(classes());
        let err = parse_records(&vec![0u8; RECORD_LEN + 5], &mut set).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        let mut bad = vec![0u8; RECORD_LEN * 2];
        bad[RECORD_LEN] = 10;
        let err = parse_records(&bad, &mut set).unwrap_err();
        assert!(err.contains("record 1 has label 10"), "{err}");
    }
}
