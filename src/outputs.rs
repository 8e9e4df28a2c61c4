//! The files a run writes into its output folder. Every file is written to a temporary name and
//! renamed, so an interrupted run never leaves a half-written file under a final name.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Resolved configuration of the run.
pub const CONFIG: &str = "config.toml";
/// Per-epoch metrics.
pub const HISTORY_CSV: &str = "history.csv";
/// Learning rate per iteration.
pub const LR_CSV: &str = "lr.csv";
/// True and predicted label per test example.
pub const PREDICTIONS_CSV: &str = "predictions.csv";
/// Classification report, scikit-learn text layout.
pub const REPORT_TXT: &str = "report.txt";
/// Classification report, JSON.
pub const REPORT_JSON: &str = "report.json";
/// Loss and accuracy per epoch.
pub const TRAINING_PNG: &str = "training.png";
/// Learning rate per iteration.
pub const LR_PNG: &str = "lr.png";
/// The trained model: weights, classes, input size, mean image ([`crate::saved_model`]).
pub const MODEL: &str = crate::saved_model::FILE;
/// Confusion matrix counts, true class per row.
pub const CONFUSION_CSV: &str = "confusion_matrix.csv";
/// Confusion matrix picture.
pub const CONFUSION_PNG: &str = "confusion_matrix.png";
/// Learning-rate range test: `iteration,lr,loss,smoothed_loss`.
pub const LR_FIND_CSV: &str = "lr_find.csv";
/// Learning-rate range test plot.
pub const LR_FIND_PNG: &str = "lr_find.png";

/// A run's output folder.
#[derive(Debug, Clone)]
pub struct OutputDir {
    dir: PathBuf,
}

impl OutputDir {
    /// Create the folder if needed and check that it can be written.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io("cannot create output folder", dir, e))?;
        let out = Self {
            dir: dir.to_path_buf(),
        };
        out.write(".write-test", "")?;
        let probe = out.path(".write-test");
        std::fs::remove_file(&probe).map_err(|e| Error::io("cannot write", &probe, e))?;
        Ok(out)
    }

    /// Path of `name` inside the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write `content` to `name` atomically.
    pub fn write(&self, name: &str, content: &str) -> Result<()> {
        self.write_with(name, |tmp| {
            std::fs::write(tmp, content).map_err(|e| Error::io("cannot write", tmp, e))
        })
    }

    /// Let `write` produce the file under a temporary name, then rename it to `name`.
    pub fn write_with(&self, name: &str, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        let final_path = self.path(name);
        let tmp = self.path(&tmp_name(name));
        write(&tmp)?;
        std::fs::rename(&tmp, &final_path).map_err(|e| Error::io("cannot write", &final_path, e))
    }
}

/// `.NAME.tmp.EXT`: keeps the extension, which some writers (the PNG encoder) go by.
fn tmp_name(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!(".{stem}.tmp.{ext}"),
        None => format!(".{name}.tmp"),
    }
}
