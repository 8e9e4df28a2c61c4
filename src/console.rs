//! Everything clrtrain tells a person goes through a [`Console`], which `--quiet` silences
//! (errors are printed by the binary, always).
//!
//! Streams: the run's story (what was loaded, the schedule, warnings, one line per epoch), its
//! progress bars and its results go to stdout; errors to stderr. A command whose stdout is data
//! for other tools (`--json`) sends its story and bars to stderr instead ([`Console::on_stderr`]).
//! Bars are drawn only on a terminal; elsewhere the training run prints one line per epoch.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::history::EpochRecord;

/// Where messages and progress go, and whether at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Console {
    quiet: bool,
    stderr: bool,
}

impl Console {
    /// Messages on stdout unless `quiet`.
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            stderr: false,
        }
    }

    /// Nothing at all (library use, tests).
    pub fn silent() -> Self {
        Self::new(true)
    }

    /// The same console, writing to stderr (stdout carries data).
    pub fn on_stderr(self) -> Self {
        Self {
            stderr: true,
            ..self
        }
    }

    /// Print a line of the run's story, unless quiet.
    pub fn say(self, message: &str) {
        match (self.quiet, self.stderr) {
            (true, _) => {}
            (false, false) => println!("{message}"),
            (false, true) => eprintln!("{message}"),
        }
    }

    /// A warning: part of the story, marked as such.
    pub fn warn(self, message: &str) {
        self.say(&format!("warning: {message}"));
    }

    /// An error that does not end the command's story by itself (a second failure while
    /// saving what a failed run recorded): printed on stderr even when quiet.
    pub fn error(self, message: &str) {
        eprintln!("error: {message}");
    }

    /// Whether bars can be drawn: not quiet, and the stream is a terminal.
    fn draws_bars(self) -> bool {
        !self.quiet
            && if self.stderr {
                std::io::stderr().is_terminal()
            } else {
                std::io::stdout().is_terminal()
            }
    }

    fn target(self) -> ProgressDrawTarget {
        if self.stderr {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::stdout()
        }
    }

    /// A single bar of `len` steps for shorter jobs (loading, downloading, the range test):
    /// drawn on a terminal, hidden otherwise.
    pub fn bar(self, len: u64, template: &str) -> ProgressBar {
        if self.draws_bars() {
            ProgressBar::with_draw_target(Some(len), self.target()).with_style(style(template))
        } else {
            ProgressBar::hidden()
        }
    }
}

/// Progress display of a training run.
pub struct TrainProgress {
    bars: Option<(MultiProgress, ProgressBar, ProgressBar)>,
    /// Without bars, one line per epoch goes through the console.
    console: Console,
    epochs: usize,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl TrainProgress {
    /// Start the display for `epochs` epochs.
    pub fn new(console: Console, epochs: usize) -> Self {
        let bars = console.draws_bars().then(|| {
            let multi = MultiProgress::with_draw_target(console.target());
            let run = multi.add(ProgressBar::new(epochs as u64));
            run.set_style(style("run   {bar:30.cyan} epoch {pos}/{len}  elapsed {elapsed_precise}  eta {eta_precise}  {msg}"));
            let epoch = multi.add(ProgressBar::new(0));
            epoch.set_style(style("epoch {bar:30.green} {pos}/{len} batches  {per_sec}  {msg}"));
            (multi, run, epoch)
        });
        Self {
            bars,
            console,
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
            None => self.console.say(&line),
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
