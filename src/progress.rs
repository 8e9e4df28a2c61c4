//! Live progress: a bar for the whole run and one per epoch (loss, accuracy, learning rate) on a
//! terminal; one plain line per epoch otherwise, so logs stay readable.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::history::EpochRecord;

/// How much to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Bars on a terminal, plain lines otherwise.
    Auto,
    /// Nothing (library use, tests).
    Quiet,
}

impl Verbosity {
    /// `Quiet` when asked to be, else `Auto`.
    pub fn from_quiet(quiet: bool) -> Self {
        if quiet { Self::Quiet } else { Self::Auto }
    }

    /// Print a line of the run's story, unless quiet.
    pub fn say(self, message: &str) {
        if self != Self::Quiet {
            println!("{message}");
        }
    }
}

/// Progress display of a training run.
pub struct TrainProgress {
    bars: Option<(MultiProgress, ProgressBar, ProgressBar)>,
    plain: bool,
    epochs: usize,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl TrainProgress {
    /// Start the display for `epochs` epochs.
    pub fn new(verbosity: Verbosity, epochs: usize) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let bars = (verbosity == Verbosity::Auto && terminal).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let run = multi.add(ProgressBar::new(epochs as u64));
            run.set_style(style("run   {bar:30.cyan} epoch {pos}/{len}  elapsed {elapsed_precise}  eta {eta_precise}  {msg}"));
            let epoch = multi.add(ProgressBar::new(0));
            epoch.set_style(style("epoch {bar:30.green} {pos}/{len} batches  {per_sec}  {msg}"));
            (multi, run, epoch)
        });
        Self {
            bars,
            plain: verbosity == Verbosity::Auto && !terminal,
            epochs,
        }
    }

    /// A resumed run starts with `epochs_done` epochs behind it.
    pub fn resume_at(&self, epochs_done: usize) {
        if let Some((_, run, _)) = &self.bars {
            run.set_position(epochs_done as u64);
        }
    }

    /// A new epoch of `batches` batches begins.
    pub fn start_epoch(&self, batches: usize) {
        if let Some((_, _, epoch)) = &self.bars {
            epoch.reset();
            epoch.set_length(batches as u64);
            epoch.set_message("");
        }
    }

    /// `done` batches of the epoch are trained; running means so far.
    pub fn batch(&self, done: usize, loss: f64, accuracy: f64, lr: f64) {
        if let Some((_, _, epoch)) = &self.bars {
            epoch.set_position(done as u64);
            epoch.set_message(format!("loss {loss:.4}  acc {accuracy:.4}  lr {lr:.3e}"));
        }
    }

    /// What the run is doing between batches (evaluating, saving), shown on the epoch bar;
    /// plain logs keep to one line per epoch.
    pub fn note(&self, message: &str) {
        if let Some((_, _, epoch)) = &self.bars {
            epoch.set_message(message.to_string());
        }
    }

    /// The epoch ended with these metrics; `lr` is the last learning rate used.
    pub fn end_epoch(&self, record: &EpochRecord, lr: f64) {
        let line = format!(
            "epoch {}/{}: loss {:.4} acc {:.4} | val_loss {:.4} val_acc {:.4} | lr {:.3e} | {:.1}s",
            record.epoch,
            self.epochs,
            record.train_loss,
            record.train_accuracy,
            record.val_loss,
            record.val_accuracy,
            lr,
            record.seconds
        );
        match &self.bars {
            Some((multi, run, _)) => {
                run.inc(1);
                run.set_message(format!("val_acc {:.4}", record.val_accuracy));
                let _ = multi.println(line);
            }
            None if self.plain => println!("{line}"),
            None => {}
        }
    }

    /// Remove the bars.
    pub fn finish(&self) {
        if let Some((multi, run, epoch)) = &self.bars {
            epoch.finish_and_clear();
            run.finish_and_clear();
            let _ = multi.clear();
        }
    }
}

/// A single bar for shorter jobs (the LR range test): drawn on a terminal, hidden otherwise.
pub fn bar(verbosity: Verbosity, len: u64, template: &str) -> ProgressBar {
    if verbosity == Verbosity::Auto && std::io::stdout().is_terminal() {
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stdout())
            .with_style(style(template))
    } else {
        ProgressBar::hidden()
    }
}
