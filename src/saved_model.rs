//! The model file, `model.clrtrain`: the weights and everything needed to use them — class
//! names, input size, the training set's mean image, the architecture's name and version — in
//! one file, so a model cannot be separated from its preprocessing.
//!
//! ```text
//! b"CLRTRAIN" | format version: u32 LE | header length: u64 LE | header (JSON, ModelInfo)
//! | weights length: u64 LE | weights (Burn burnpack) | SHA-256 of everything before: 32 bytes
//! ```
//!
//! Reading checks each part, so another file, a truncated one or a damaged one is named as such.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::ImageSet;
use crate::error::{Error, Result};
use crate::model::{ARCHITECTURE, ARCHITECTURE_VERSION, MiniGoogLeNet};
use crate::outputs::MODEL;
const MAGIC: &[u8; 8] = b"CLRTRAIN";
const FORMAT_VERSION: u32 = 1;
const DIGEST_LEN: usize = 32;

/// Input the model takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputSize {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

/// What travels with the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub architecture: String,
    pub architecture_version: u32,
    /// Class names, index = output unit.
    pub classes: Vec<String>,
    pub input: InputSize,
    /// Mean image of the training set (HWC), subtracted from every input.
    pub mean_image_hwc: Vec<f32>,
}

impl ModelInfo {
    /// Info for a MiniGoogLeNet trained on `classes` with `mean` subtracted.
    pub fn new(classes: Vec<String>, input: InputSize, mean: Vec<f32>) -> Self {
        Self {
            architecture: ARCHITECTURE.into(),
            architecture_version: ARCHITECTURE_VERSION,
            classes,
            input,
            mean_image_hwc: mean,
        }
    }
}

impl ModelInfo {
    /// Info for a MiniGoogLeNet trained on `train` with `mean` (its mean image) subtracted.
    pub fn of_training_set(train: &ImageSet, mean: &[f32]) -> Self {
        let input = InputSize {
            height: train.height,
            width: train.width,
            channels: train.channels,
        };
        Self::new(train.classes.clone(), input, mean.to_vec())
    }
}

/// A model read back: its info and the network on a device.
#[derive(Debug, Clone)]
pub struct SavedModel {
    pub info: ModelInfo,
    pub model: MiniGoogLeNet,
}

/// The model file a path names: the file itself, or [`MODEL`] inside a folder.
pub fn resolve(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(MODEL)
    } else {
        path.to_path_buf()
    }
}

/// Write `model` and `info` to `path` (not atomically: callers write to a temporary name).
pub fn save(path: &Path, model: &MiniGoogLeNet, info: &ModelInfo) -> Result<()> {
    let fail = |message: String| Error::model(path, message);
    let header = serde_json::to_vec(info).map_err(|e| fail(e.to_string()))?;
    // `valid()` folds BatchNorm's pending running-stat updates in; the record alone would
    // miss the last batch's (Burn's RunningState keeps it aside until the next sync).
    let weights = model
        .valid()
        .into_record()
        .into_bytes()
        .map_err(|e| fail(e.to_string()))?;
    let mut file = Vec::with_capacity(weights.len() + header.len() + 64);
    file.extend_from_slice(MAGIC);
    file.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    file.extend_from_slice(&(header.len() as u64).to_le_bytes());
    file.extend_from_slice(&header);
    file.extend_from_slice(&(weights.len() as u64).to_le_bytes());
    file.extend_from_slice(&weights);
    let digest = Sha256::digest(&file);
    file.extend_from_slice(&digest);
    std::fs::write(path, file).map_err(|e| Error::io("cannot write", path, e))
}

/// Read and check a model file, and put its weights into a MiniGoogLeNet on `device`.
pub fn load(path: &Path, device: &Device) -> Result<SavedModel> {
    let (info, record) = read(path)?;
    let model = MiniGoogLeNet::new(info.classes.len(), device)
        .try_load_record(record)
        .map_err(|e| Error::model(path, format!("the weights do not fit {ARCHITECTURE}: {e}")))?;
    Ok(SavedModel { info, model })
}

/// Read and check a model file: its info and the weights as a Burn record.
pub fn read(path: &Path) -> Result<(ModelInfo, ModuleRecord)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("cannot read model", path, e))?;
    parse(&bytes).map_err(|message| Error::model(path, message))
}

/// The parts of a model file, each checked; the message says what is wrong.
fn parse(bytes: &[u8]) -> std::result::Result<(ModelInfo, ModuleRecord), String> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a clrtrain model file (it does not start with CLRTRAIN)".into());
    }
    let mut cursor = Cursor {
        bytes,
        at: MAGIC.len(),
    };
    let version = u32::from_le_bytes(
        cursor
            .take(4, "format version")?
            .try_into()
            .unwrap_or([0; 4]),
    );
    if version != FORMAT_VERSION {
        return Err(format!(
            "model file format {version}; this clrtrain reads format {FORMAT_VERSION}"
        ));
    }
    let header_len = cursor.length("header")?;
    let header = cursor.take(header_len, "header")?;
    let weights_len = cursor.length("weights")?;
    let weights = cursor.take(weights_len, "weights")?.to_vec();
    let body_end = cursor.at;
    let digest = cursor.take(DIGEST_LEN, "checksum")?;
    if cursor.at != bytes.len() {
        return Err(format!(
            "{} unexpected bytes after the checksum",
            bytes.len() - cursor.at
        ));
    }
    if Sha256::digest(&bytes[..body_end]).as_slice() != digest {
        return Err("damaged: the checksum does not match the content".into());
    }
    let info: ModelInfo =
        serde_json::from_slice(header).map_err(|e| format!("unreadable header: {e}"))?;
    check_info(&info)?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(weights))
        .map_err(|e| format!("unreadable weights: {e}"))?;
    Ok((info, record))
}

fn check_info(info: &ModelInfo) -> std::result::Result<(), String> {
    if info.architecture != ARCHITECTURE || info.architecture_version != ARCHITECTURE_VERSION {
        return Err(format!(
            "architecture {} v{}; this clrtrain builds {ARCHITECTURE} v{ARCHITECTURE_VERSION}",
            info.architecture, info.architecture_version
        ));
    }
    let i = info.input;
    if info.classes.is_empty() || info.mean_image_hwc.len() != i.height * i.width * i.channels {
        return Err("inconsistent header: no classes, or a mean image of the wrong size".into());
    }
    Ok(())
}

/// Reads length-prefixed parts, naming the part a truncated file ends in.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        let end = self.at.checked_add(len).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!(
                "truncated: the file ends inside its {what} ({} bytes in all)",
                self.bytes.len()
            ));
        };
        let part = &self.bytes[self.at..end];
        self.at = end;
        Ok(part)
    }

    fn length(&mut self, what: &str) -> std::result::Result<usize, String> {
        let raw = self.take(8, &format!("{what} length"))?;
        let len = u64::from_le_bytes(raw.try_into().unwrap_or([0; 8]));
        usize::try_from(len).map_err(|_| format!("impossible {what} length {len}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(classes: usize) -> ModelInfo {
        let input = InputSize {
            height: 32,
            width: 32,
            channels: 3,
        };
        let names = (0..classes).map(|c| format!("c{c}")).collect();
        ModelInfo::new(names, input, (0..3072).map(|i| i as f32 / 7.0).collect())
    }

    fn saved(dir: &Path) -> (PathBuf, Vec<u8>) {
        let path = dir.join(MODEL);
        let model = MiniGoogLeNet::new(3, &Device::flex());
        save(&path, &model, &info(3)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        (path, bytes)
    }

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "clrtrain-saved-model-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn round_trip_keeps_info_and_weights() {
        let dir = tmp("round");
        let device = Device::flex();
        let model = MiniGoogLeNet::new(3, &device);
        let path = dir.join(MODEL);
        save(&path, &model, &info(3)).unwrap();
        let back = load(&resolve(&dir), &device).unwrap();
        assert_eq!(back.info, info(3));
        let x = burn::tensor::Tensor::<4>::ones([1, 3, 32, 32], &device);
        let a: Vec<f32> = model.forward(x.clone()).into_data().iter::<f32>().collect();
        let b: Vec<f32> = back.model.forward(x).into_data().iter::<f32>().collect();
        assert_eq!(a, b);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn other_truncated_and_damaged_files_are_named_as_such() {
        let dir = tmp("bad");
        let (_, bytes) = saved(&dir);
        let message = |content: &[u8]| match parse(content) {
            Err(m) => m,
            Ok(_) => panic!("accepted a bad file"),
        };
        assert!(message(b"\x89PNG\r\n\x1a\n....").contains("not a clrtrain model"));
        assert!(
            message(&bytes[..bytes.len() / 2])
                .contains("truncated: the file ends inside its weights")
        );
        assert!(message(&bytes[..30]).contains("truncated"));
        assert!(message(&bytes[..bytes.len() - 1]).contains("inside its checksum"));
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 1;
        assert!(message(&flipped).contains("damaged"));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(message(&longer).contains("unexpected bytes"));
        assert!(parse(&bytes).is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }
}
