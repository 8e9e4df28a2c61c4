//! Runs side by side: what a run folder holds (its config, history, learning rates and, when it
//! finished, its report), one table row per run, and the table as CSV and text, best run first.
//! Plain numbers: the picture is drawn by [`crate::plot::plot_comparison`].

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::{Config, StepUnit};
use crate::error::{Error, Result};
use crate::history::{self, EpochRecord};
use crate::outputs::{CONFIG, HISTORY_CSV, LR_CSV, REPORT_JSON};

/// What a run folder holds, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// The folder's name, as the table and the legend call the run.
    pub name: String,
    pub dir: PathBuf,
    pub config: Config,
    pub epochs: Vec<EpochRecord>,
    /// Learning rate of every trained iteration.
    pub lrs: Vec<f64>,
    /// Class names and macro-averaged F1 from `report.json`: only a finished run has one.
    pub report: Option<ReportSummary>,
}

/// The part of a finished run's report the comparison uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSummary {
    pub classes: Vec<String>,
    pub macro_f1: f64,
}

/// Keys of `report.json` that are not classes.
const AVERAGES: [&str; 3] = ["accuracy", "macro avg", "weighted avg"];

impl RunRecord {
    /// Read the run in `dir`: `config.toml` and `history.csv` must be there (an interrupted run
    /// has them after its first checkpoint), `lr.csv` and `report.json` are read when present.
    pub fn read(dir: &Path) -> Result<Self> {
        let not_a_run = |why: String| {
            Error::data(
                dir,
                format!("not a clrtrain run folder ({why}; `clrtrain train` writes one)"),
            )
        };
        for needed in [CONFIG, HISTORY_CSV] {
            if !dir.join(needed).is_file() {
                return Err(not_a_run(format!("no {needed}")));
            }
        }
        let config = Config::from_file(&dir.join(CONFIG))?;
        let epochs = history::parse_history_csv(&read(&dir.join(HISTORY_CSV))?)
            .map_err(|e| not_a_run(format!("{HISTORY_CSV}: {e}")))?;
        let lr_path = dir.join(LR_CSV);
        let lrs = if lr_path.is_file() {
            history::parse_lr_csv(&read(&lr_path)?)
                .map_err(|e| not_a_run(format!("{LR_CSV}: {e}")))?
        } else {
            Vec::new()
        };
        let report_path = dir.join(REPORT_JSON);
        let report = if report_path.is_file() {
            let summary = report_summary(&read(&report_path)?);
            Some(summary.ok_or_else(|| {
                not_a_run(format!("{REPORT_JSON} is not a classification report"))
            })?)
        } else {
            None
        };
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string());
        Ok(Self {
            name,
            dir: dir.to_path_buf(),
            config,
            epochs,
            lrs,
            report,
        })
    }

    /// `folder (method)`, for legends; the folder alone when it is named for the method.
    pub fn label(&self) -> String {
        let method = self.config.schedule.method.name();
        if self.name == method {
            self.name.clone()
        } else {
            format!("{} ({method})", self.name)
        }
    }

    /// What the run was trained on: data folder (resolved when it exists), format and subset.
    pub fn dataset(&self) -> String {
        let d = &self.config.data;
        let path = d.path.canonicalize().unwrap_or_else(|_| d.path.clone());
        let per_class = |n: Option<usize>| n.map_or("all".to_string(), |n| n.to_string());
        format!(
            "{} ({}, train per class: {}, test per class: {})",
            path.display(),
            d.format,
            per_class(d.train_per_class),
            per_class(d.test_per_class)
        )
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))
}

/// Classes (in the report's order) and macro F1 of a `report.json`.
fn report_summary(text: &str) -> Option<ReportSummary> {
    let json: Value = serde_json::from_str(text).ok()?;
    let object = json.as_object()?;
    let macro_f1 = object.get("macro avg")?.get("f1-score")?.as_f64()?;
    let classes = object
        .keys()
        .filter(|k| !AVERAGES.contains(&k.as_str()))
        .cloned()
        .collect();
    Some(ReportSummary { classes, macro_f1 })
}

/// One row of the comparison table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub run: String,
    pub method: String,
    pub base_lr: f64,
    pub max_lr: f64,
    pub step_size: u64,
    pub step_unit: StepUnit,
    pub epochs_done: usize,
    /// Best validation accuracy and its epoch (the first of equals).
    pub best: Option<(f64, usize)>,
    pub final_val_accuracy: Option<f64>,
    pub final_train_loss: Option<f64>,
    /// Only for finished runs.
    pub macro_f1: Option<f64>,
    pub seconds_per_epoch: Option<f64>,
    pub total_seconds: f64,
}

impl Row {
    /// The row of `run`.
    pub fn new(run: &RunRecord) -> Self {
        let s = &run.config.schedule;
        let mut best: Option<(f64, usize)> = None;
        for e in &run.epochs {
            if best.is_none_or(|(accuracy, _)| e.val_accuracy > accuracy) {
                best = Some((e.val_accuracy, e.epoch));
            }
        }
        let last = run.epochs.last();
        let total_seconds = run.epochs.iter().fold(0.0, |sum, e| sum + e.seconds);
        Self {
            run: run.name.clone(),
            method: s.method.to_string(),
            base_lr: s.base_lr,
            max_lr: s.max_lr,
            step_size: s.step_size,
            step_unit: s.step_unit,
            epochs_done: run.epochs.len(),
            best,
            final_val_accuracy: last.map(|e| e.val_accuracy),
            final_train_loss: last.map(|e| e.train_loss),
            macro_f1: run.report.as_ref().map(|r| r.macro_f1),
            seconds_per_epoch: last.map(|_| total_seconds / run.epochs.len() as f64),
            total_seconds,
        }
    }
}

/// Rows best first: by best validation accuracy, runs without an epoch last, ties in the given
/// order.
pub fn ranked(mut rows: Vec<Row>) -> Vec<Row> {
    let key = |r: &Row| r.best.map_or(f64::NEG_INFINITY, |(accuracy, _)| accuracy);
    rows.sort_by(|a, b| key(b).total_cmp(&key(a)));
    rows
}

/// Header of `comparison.csv`.
pub const CSV_HEADER: &str = "run,method,base_lr,max_lr,step_size,step_unit,epochs_done,\
best_val_accuracy,best_epoch,final_val_accuracy,final_train_loss,macro_f1,seconds_per_epoch,\
total_seconds";

/// `comparison.csv`: one row per run, empty fields where a run has no value.
pub fn to_csv(rows: &[Row]) -> String {
    let opt = |v: Option<f64>, digits: usize| v.map_or(String::new(), |v| format!("{v:.digits$}"));
    let mut out = format!("{CSV_HEADER}\n");
    for r in rows {
        out += &format!(
            "{},{},{:e},{:e},{},{},{},{},{},{},{},{},{},{:.3}\n",
            csv_field(&r.run),
            r.method,
            r.base_lr,
            r.max_lr,
            r.step_size,
            r.step_unit,
            r.epochs_done,
            opt(r.best.map(|b| b.0), 6),
            r.best.map_or(String::new(), |b| b.1.to_string()),
            opt(r.final_val_accuracy, 6),
            opt(r.final_train_loss, 6),
            opt(r.macro_f1, 6),
            opt(r.seconds_per_epoch, 3),
            r.total_seconds
        );
    }
    out
}

/// A CSV field, quoted when it holds a comma or a quote.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The table for a terminal: aligned columns, the rows as given.
pub fn to_text(rows: &[Row]) -> String {
    let header = [
        "run",
        "method",
        "base_lr",
        "max_lr",
        "step",
        "epochs",
        "best val acc",
        "final val acc",
        "final train loss",
        "macro F1",
        "s/epoch",
        "total s",
    ];
    let dash = || "-".to_string();
    let opt = |v: Option<f64>, digits: usize| v.map_or_else(dash, |v| format!("{v:.digits$}"));
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.run.clone(),
                r.method.clone(),
                format!("{:.1e}", r.base_lr),
                format!("{:.1e}", r.max_lr),
                step(r.step_size, r.step_unit),
                r.epochs_done.to_string(),
                r.best
                    .map_or_else(dash, |(a, e)| format!("{a:.4} (epoch {e})")),
                opt(r.final_val_accuracy, 4),
                opt(r.final_train_loss, 4),
                opt(r.macro_f1, 4),
                opt(r.seconds_per_epoch, 1),
                format!("{:.0}", r.total_seconds),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: Vec<String>| -> String {
        let padded: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| match c {
                0 | 1 => format!("{cell:<w$}"),
                _ => format!("{cell:>w$}"),
            })
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in cells {
        out += &line(row);
    }
    out
}

/// "1 epoch", "8 epochs".
fn step(size: u64, unit: StepUnit) -> String {
    let unit = unit.name();
    match size {
        1 => format!("1 {}", unit.trim_end_matches('s')),
        n => format!("{n} {unit}"),
    }
}

/// Warnings for runs that were not trained on the same data or classes as the first one.
pub fn mismatches(runs: &[RunRecord]) -> Vec<String> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    // each dataset description resolves a path on disk: once per run
    let first_data = first.dataset();
    let classes = |r: &RunRecord| r.report.as_ref().map(|s| s.classes.clone());
    for run in &runs[1..] {
        let data = run.dataset();
        if data != first_data {
            warnings.push(format!(
                "{} was trained on {data}, {} on {first_data}: their accuracies are not directly \
                 comparable",
                run.name, first.name
            ));
        }
        if let (Some(a), Some(b)) = (classes(first), classes(run))
            && a != b
        {
            warnings.push(format!(
                "{} has the classes [{}], {} has [{}]",
                run.name,
                b.join(", "),
                first.name,
                a.join(", ")
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, accuracies: &[f64]) -> RunRecord {
        let epochs = accuracies
            .iter()
            .enumerate()
            .map(|(i, &val_accuracy)| EpochRecord {
                epoch: i + 1,
                train_loss: 2.0 - i as f64 * 0.5,
                train_accuracy: 0.5,
                val_loss: 1.0,
                val_accuracy,
                seconds: 10.0 + i as f64,
            })
            .collect();
        RunRecord {
            name: name.into(),
            dir: PathBuf::from(name),
            config: Config::default(),
            epochs,
            lrs: vec![1e-7, 1e-2],
            report: None,
        }
    }

    #[test]
    fn rows_take_best_and_final_values_and_rank_best_first() {
        let a = Row::new(&record("a", &[0.3, 0.6, 0.6, 0.5]));
        assert_eq!(a.best, Some((0.6, 2)));
        assert_eq!(a.final_val_accuracy, Some(0.5));
        assert_eq!(a.final_train_loss, Some(0.5));
        assert_eq!(a.epochs_done, 4);
        assert_eq!(a.total_seconds, 46.0);
        assert_eq!(a.seconds_per_epoch, Some(11.5));
        let b = Row::new(&record("b", &[0.7]));
        let none = Row::new(&record("none", &[]));
        assert_eq!((none.best, none.seconds_per_epoch), (None, None));
        let order: Vec<String> = ranked(vec![none.clone(), a.clone(), b.clone()])
            .into_iter()
            .map(|r| r.run)
            .collect();
        assert_eq!(order, ["b", "a", "none"]);
        let csv = to_csv(&[b, none]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(
            lines[1],
            "b,triangular,1e-7,1e-2,8,epochs,1,0.700000,1,0.700000,2.000000,,10.000,10.000"
        );
        assert_eq!(lines[2], "none,triangular,1e-7,1e-2,8,epochs,0,,,,,,,0.000");
        let text = to_text(&[a]);
        assert!(text.contains("0.6000 (epoch 2)"), "{text}");
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn report_summary_reads_classes_and_macro_f1() {
        let json = r#"{"cat": {"precision": 1.0}, "dog": {"precision": 0.5},
            "accuracy": 0.75, "macro avg": {"f1-score": 0.7}, "weighted avg": {}}"#;
        let s = report_summary(json).unwrap();
        assert_eq!(s.classes, ["cat", "dog"]);
        assert_eq!(s.macro_f1, 0.7);
        assert_eq!(report_summary("[]"), None);
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }

    #[test]
    fn other_data_or_classes_are_warned_about() {
        let a = record("a", &[0.5]);
        let mut b = record("b", &[0.5]);
        assert!(mismatches(&[a.clone(), b.clone()]).is_empty());
        b.config.data.train_per_class = Some(10);
        let warnings = mismatches(&[a.clone(), b.clone()]);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("train per class: 10"), "{warnings:?}");
        let report = |classes: &[&str]| ReportSummary {
            classes: classes.iter().map(|c| c.to_string()).collect(),
            macro_f1: 0.5,
        };
        let (mut c, mut d) = (a.clone(), a);
        c.report = Some(report(&["cat", "dog"]));
        d.report = Some(report(&["cat", "frog"]));
        let warnings = mismatches(&[c, d]);
        assert!(warnings[0].contains("[cat, frog]"), "{warnings:?}");
    }
}
