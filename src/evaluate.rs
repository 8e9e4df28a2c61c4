//! `clrtrain evaluate`: a saved model on a labelled test set — the classification report,
//! predictions and the confusion matrix (CSV and picture). Training writes the same files
//! through [`write_evaluation`].

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::backend::{self, BackendKind};
use crate::config::DataConfig;
use crate::data::{self, ImageSet};
use crate::error::Result;
use crate::history;
use crate::outputs::{self, OutputDir};
use crate::plot;
use crate::progress::Verbosity;
use crate::report::{ClassificationReport, ConfusionMatrix};
use crate::saved_model;
use crate::train;

/// What to evaluate, on what, where to.
#[derive(Debug, Clone)]
pub struct EvaluateOptions {
    /// A model file, or a folder holding `model.clrtrain` (a run's output or a checkpoint).
    pub model: PathBuf,
    /// The dataset; its test split is used.
    pub data: DataConfig,
    pub backend: BackendKind,
    pub batch_size: usize,
    /// Where the files go; `None`: `evaluation/` next to the model file.
    pub output: Option<PathBuf>,
}

/// Evaluate a saved model and write its report, predictions and confusion matrix.
pub fn evaluate(options: &EvaluateOptions, verbosity: Verbosity) -> Result<ClassificationReport> {
    let path = saved_model::resolve(&options.model);
    let selected = backend::select(options.backend)?;
    let saved = saved_model::load(&path, &selected.device)?;
    let test = data::load_test(&options.data, &saved.info.classes)?;
    let out_dir = options.output.clone().unwrap_or_else(|| {
        let folder = path.parent().unwrap_or(Path::new("."));
        folder.join("evaluation")
    });
    let out = OutputDir::create(&out_dir)?;
    verbosity.say(&format!("backend: {}", selected.description));
    let classes = saved.info.classes.len();
    verbosity.say(&format!("model: {} ({classes} classes)", path.display()));
    let data = options.data.path.display();
    verbosity.say(&format!(
        "evaluating {} test images from {data}…",
        test.len()
    ));
    let mean = &saved.info.mean_image_hwc;
    let eval = train::evaluate(&saved.model, &test, mean, options.batch_size);
    let report = write_evaluation(&out, &test, &eval.predictions)?;
    verbosity.say(&format!("\n{}", report.to_text()));
    let dir = out.dir().display();
    verbosity.say(&format!("loss {:.4}; outputs written to {dir}", eval.loss));
    Ok(report)
}

/// `predictions.csv`, the report (text, JSON) and the confusion matrix (CSV, PNG) of
/// `predictions` on `test`.
pub fn write_evaluation(
    out: &OutputDir,
    test: &ImageSet,
    predictions: &[usize],
) -> Result<ClassificationReport> {
    let classes = &test.classes;
    let y_true: Vec<usize> = test.labels.iter().map(|&l| l as usize).collect();
    let report = ClassificationReport::new(&y_true, predictions, classes);
    out.write(
        outputs::PREDICTIONS_CSV,
        &history::predictions_csv(&y_true, predictions, classes),
    )?;
    out.write(outputs::REPORT_TXT, &report.to_text())?;
    out.write(outputs::REPORT_JSON, &pretty(&report.to_json()))?;
    let matrix = ConfusionMatrix::new(&y_true, predictions, classes.len());
    out.write(outputs::CONFUSION_CSV, &matrix.to_csv(classes))?;
    out.write_with(outputs::CONFUSION_PNG, |p| {
        plot::plot_confusion(&matrix.counts, classes, p)
    })?;
    Ok(report)
}

/// JSON with indentation and a final newline.
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}
