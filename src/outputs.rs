//! The files a run writes: every file and folder name defined once, the output folder (each
//! file written to a temporary name and renamed, so an interrupted run never leaves a
//! half-written file under a final name), and the groups of files two commands both write.

use std::path::{Path, PathBuf};

use crate::data::ImageSet;
use crate::error::{Error, Result};
use crate::history::{self, History};
use crate::plot;
use crate::report::{ClassificationReport, ConfusionMatrix};

/// Resolved configuration of the run (also inside every checkpoint).
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
/// The trained model: weights, classes, input size, mean image ([`crate::saved_model`]); also
/// inside every checkpoint.
pub const MODEL: &str = "model.clrtrain";
/// Confusion matrix counts, true class per row.
pub const CONFUSION_CSV: &str = "confusion_matrix.csv";
/// Confusion matrix picture.
pub const CONFUSION_PNG: &str = "confusion_matrix.png";
/// Learning-rate range test: `iteration,lr,loss,smoothed_loss`.
pub const LR_FIND_CSV: &str = "lr_find.csv";
/// Learning-rate range test plot.
pub const LR_FIND_PNG: &str = "lr_find.png";
/// Folder of checkpoints inside an output folder.
pub const CHECKPOINTS: &str = "checkpoints";
/// Checkpoint: the optimiser's momentum buffers.
pub const OPTIMIZER: &str = "optimizer.bpk";
/// Checkpoint: the LR scheduler's Burn record.
pub const SCHEDULER: &str = "scheduler.bpk";
/// Checkpoint: position in the run and history so far.
pub const STATE: &str = "state.json";
/// `clrtrain compare`: one row per run.
pub const COMPARISON_CSV: &str = "comparison.csv";
/// `clrtrain compare`: validation curves and learning rates of every run.
pub const COMPARISON_PNG: &str = "comparison.png";
/// `clrtrain evaluate`'s folder next to the model file, unless told otherwise.
pub const EVALUATION: &str = "evaluation";

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
        self.write_with(name, |tmp| write_file(tmp, content))
    }

    /// Let `write` produce the file under a temporary name, then rename it to `name`.
    pub fn write_with(&self, name: &str, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        let final_path = self.path(name);
        let tmp = self.path(&tmp_name(name));
        write(&tmp)?;
        std::fs::rename(&tmp, &final_path).map_err(|e| Error::io("cannot write", &final_path, e))
    }

    /// History, learning rates and both plots; rewritten after every epoch, so an interrupted
    /// or failed run keeps its curves. `lr_title` heads the LR plot.
    pub fn write_history(&self, h: &History, lr_title: &str) -> Result<()> {
        self.write(HISTORY_CSV, &history::history_csv(&h.epochs))?;
        self.write(LR_CSV, &history::lr_csv(&h.lrs, &h.momenta))?;
        self.write_with(TRAINING_PNG, |p| plot::plot_training(&h.epochs, p))?;
        self.write_with(LR_PNG, |p| {
            plot::plot_lr(&h.lrs, history::cycling(&h.momenta), lr_title, p)
        })
    }

    /// `predictions.csv`, the report (text, JSON) and the confusion matrix (CSV, PNG) of
    /// `predictions` on `test`, as `train` and `evaluate` both write them.
    pub fn write_evaluation(
        &self,
        test: &ImageSet,
        predictions: &[usize],
    ) -> Result<ClassificationReport> {
        let classes = &test.classes;
        let y_true: Vec<usize> = test.labels.iter().map(|&l| l as usize).collect();
        let report = ClassificationReport::new(&y_true, predictions, classes);
        self.write(
            PREDICTIONS_CSV,
            &history::predictions_csv(&y_true, predictions, classes),
        )?;
        self.write(REPORT_TXT, &report.to_text())?;
        self.write(REPORT_JSON, &pretty_json(&report.to_json())?)?;
        let matrix = ConfusionMatrix::new(&y_true, predictions, classes.len());
        self.write(CONFUSION_CSV, &matrix.to_csv(classes))?;
        self.write_with(CONFUSION_PNG, |p| {
            plot::plot_confusion(&matrix.counts, classes, p)
        })?;
        Ok(report)
    }
}

/// Write `content` to `path`, naming the file on failure.
pub fn write_file(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content).map_err(|e| Error::io("cannot write", path, e))
}

/// `value` as indented JSON with a final newline.
pub fn pretty_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map(|text| text + "\n")
        .map_err(|e| Error::encode("JSON", e))
}

/// `.NAME.tmp.EXT`: keeps the extension, which some writers (the PNG encoder) go by.
fn tmp_name(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!(".{stem}.tmp.{ext}"),
        None => format!(".{name}.tmp"),
    }
}
