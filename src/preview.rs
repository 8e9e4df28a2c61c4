//! `clrtrain schedule`: the learning rates a training run would use, without data or a model.
//! The rates come from [`schedule::lr_sequence`], which steps the same scheduler as training.

use std::path::Path;

use crate::config::Config;
use crate::data::loader::batches_per_epoch;
use crate::error::{Error, Result};
use crate::plot;
use crate::schedule::{self, CycleSummary, Schedule};

/// CIFAR-10's training set: the train size a preview assumes unless told otherwise.
pub const CIFAR10_TRAIN_SIZE: usize = 50_000;

/// A previewed schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub schedule: Schedule,
    pub iterations_per_epoch: u64,
    /// LR of every iteration, iteration 0 first.
    pub lrs: Vec<f64>,
    /// SGD momentum of every iteration.
    pub momenta: Vec<f64>,
    pub summary: CycleSummary,
}

/// The schedule of `config` for a training set of `train_size` images, over `iterations`
/// iterations or, when `None`, over the configured epochs.
pub fn preview(config: &Config, train_size: usize, iterations: Option<u64>) -> Result<Preview> {
    config.validate()?;
    let batch_size = config.training.batch_size;
    let iterations_per_epoch = batches_per_epoch(train_size, batch_size) as u64;
    if iterations_per_epoch == 0 {
        return Err(Error::Config(format!(
            "a training set of {train_size} images gives no batch of training.batch_size = {batch_size}"
        )));
    }
    let total = iterations.unwrap_or(config.training.epochs as u64 * iterations_per_epoch);
    let schedule = config.schedule(train_size);
    let momentum = config.momentum();
    Ok(Preview {
        schedule,
        iterations_per_epoch,
        lrs: schedule::lr_sequence(schedule, total),
        momenta: (0..total).map(|it| momentum.at(&schedule, it)).collect(),
        summary: CycleSummary::new(&schedule, total),
    })
}

impl Preview {
    /// `iteration,lr,momentum`, one row per iteration (the layout of a run's `lr.csv`).
    pub fn csv(&self) -> String {
        crate::history::lr_csv(&self.lrs, &self.momenta)
    }

    /// What the schedule does, with a warning when the run stops mid-cycle.
    pub fn describe(&self) -> String {
        let s = &self.summary;
        let mut text = format!(
            "{} ({} iterations per epoch)\n{} iterations: {} full cycle(s) of {} iterations",
            self.schedule.describe(),
            self.iterations_per_epoch,
            self.lrs.len(),
            s.full_cycles,
            s.cycle_length
        );
        if let Some(warning) = s.mid_cycle_warning(self.iterations_per_epoch) {
            text += &format!("\nwarning: {warning}");
        }
        text
    }

    /// Write the CSV and/or the plot.
    pub fn write(&self, csv: Option<&Path>, png: Option<&Path>) -> Result<()> {
        if let Some(path) = csv {
            std::fs::write(path, self.csv()).map_err(|e| Error::io("cannot write", path, e))?;
        }
        if let Some(path) = png {
            plot::plot_lr(
                &self.lrs,
                crate::history::cycling(&self.momenta),
                &format!("Learning rate ({})", self.schedule.method()),
                path,
            )?;
        }
        Ok(())
    }
}
