//! `clrtrain schedule`: the learning rates a training run would use, without data or a model.
//! The rates come from [`schedule::lr_sequence`], which steps the same scheduler as training.

use std::path::Path;

use clrtrain::config::Config;
use clrtrain::data::loader::batches_per_epoch;
use clrtrain::history;
use clrtrain::outputs::write_file;
use clrtrain::plot;
use clrtrain::schedule::{self, CycleSummary, Schedule};
use clrtrain::{Error, Result};

use crate::cli::ScheduleArgs;

/// Run `clrtrain schedule`: the summary on stdout, the CSV and plot where asked.
pub fn run(args: &ScheduleArgs) -> Result<()> {
    let config = Config::load(args.config.as_deref(), &args.overrides())?;
    let preview = preview(&config, args.train_size, args.iterations)?;
    preview.write(args.csv.as_deref(), args.plot.as_deref())?;
    println!("{}", preview.describe());
    Ok(())
}

/// A previewed schedule.
#[derive(Debug, Clone, PartialEq)]
struct Preview {
    schedule: Schedule,
    iterations_per_epoch: u64,
    /// LR of every iteration, iteration 0 first.
    lrs: Vec<f64>,
    /// SGD momentum of every iteration.
    momenta: Vec<f64>,
    summary: CycleSummary,
}

/// The schedule of `config` for a training set of `train_size` images, over `iterations`
/// iterations or, when `None`, over the configured epochs.
fn preview(config: &Config, train_size: usize, iterations: Option<u64>) -> Result<Preview> {
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
    fn csv(&self) -> String {
        history::lr_csv(&self.lrs, &self.momenta)
    }

    /// What the schedule does, with a warning when the run stops mid-cycle.
    fn describe(&self) -> String {
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
    fn write(&self, csv: Option<&Path>, png: Option<&Path>) -> Result<()> {
        if let Some(path) = csv {
            write_file(path, &self.csv())?;
        }
        if let Some(path) = png {
            plot::plot_lr(
                &self.lrs,
                history::cycling(&self.momenta),
                &format!("Learning rate ({})", self.schedule.method()),
                path,
            )?;
        }
        Ok(())
    }
}
