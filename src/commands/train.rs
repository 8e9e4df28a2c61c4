//! `clrtrain train`: prepare (config, data, backend), start fresh or restore a checkpoint, fit
//! epoch after epoch with checkpoints and curves written as it goes, then finish (report,
//! confusion matrix, model file). Files appear in the output folder as the run goes and stay
//! there when it fails; Ctrl-C stops after the current batch with a checkpoint.

use std::path::PathBuf;

use clrtrain::checkpoint::{self, Checkpoint, Parts};
use clrtrain::config::Config;
use clrtrain::console::{Console, TrainProgress};
use clrtrain::data::loader::batches_per_epoch;
use clrtrain::fit::{self, FitEnd, TrainState, Watch};
use clrtrain::interrupt::Interrupt;
use clrtrain::outputs;
use clrtrain::resume;
use clrtrain::saved_model::{self, ModelInfo};
use clrtrain::schedule::{CycleSummary, CyclicLrScheduler, Schedule};
use clrtrain::session::Session;
use clrtrain::trainer::Trainer;
use clrtrain::{Error, Result};

use crate::cli::TrainArgs;

/// Run `clrtrain train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let console = Console::new(args.common.quiet);
    let interrupt = Interrupt::on_signals()?;
    let overrides = args.overrides();
    let (config, checkpoint) = match &args.resume {
        None => (
            Config::load(args.common.config.as_deref(), &overrides)?,
            None,
        ),
        Some(dir) => {
            let checkpoint = checkpoint::load(dir)?;
            (
                resume::config_for(&checkpoint, &overrides)?,
                Some(checkpoint),
            )
        }
    };
    let run = Run::prepare(&config, console)?;
    let mut state = run.start();
    if let Some(checkpoint) = &checkpoint {
        run.restore(checkpoint, &mut state)?;
    }
    let predictions = run.fit(&mut state, &interrupt)?;
    run.finish(&state, &predictions)
}

/// One training run, prepared.
struct Run<'a> {
    config: &'a Config,
    session: Session,
    schedule: Schedule,
    /// Classes, input size and mean image, saved with the weights.
    info: ModelInfo,
    lr_title: String,
}

impl<'a> Run<'a> {
    /// Config, data and backend checked and loaded; the config saved; the schedule described.
    fn prepare(config: &'a Config, console: Console) -> Result<Self> {
        let session = Session::prepare(config, console)?;
        session.out.write(outputs::CONFIG, &config.to_toml()?)?;
        let schedule = config.schedule(session.train_size());
        let run = Self {
            config,
            info: session.model_info(),
            lr_title: format!("Learning rate ({})", schedule.method()),
            schedule,
            session,
        };
        run.describe_schedule();
        Ok(run)
    }

    /// The schedule in a line, and a warning when the run would stop mid-cycle.
    fn describe_schedule(&self) {
        let (t, console) = (&self.config.training, self.session.console);
        let per_epoch = batches_per_epoch(self.session.train_size(), t.batch_size) as u64;
        console.say(&format!(
            "schedule: {}; {} epochs of {per_epoch} iterations, batch {}",
            self.schedule.describe(),
            t.epochs,
            t.batch_size
        ));
        let summary = CycleSummary::new(&self.schedule, t.epochs as u64 * per_epoch);
        if let Some(warning) = summary.mid_cycle_warning(per_epoch) {
            console.warn(&warning);
        }
    }

    /// A fresh model and scheduler at iteration 0.
    fn start(&self) -> TrainState {
        let trainer = Trainer::new(
            self.info.classes.len(),
            &self.session.backend.device,
            self.config.training.seed,
        );
        TrainState::new(trainer, CyclicLrScheduler::new(self.schedule))
    }

    /// Put a checkpoint's state back, after checking that the data and the epoch count still
    /// fit the saved run, and say so.
    fn restore(&self, checkpoint: &Checkpoint, state: &mut TrainState) -> Result<()> {
        let saved = checkpoint.restore(state)?;
        resume::check_same_data(&saved, &self.info, &self.config.data.path)?;
        resume::check_epochs(self.config.training.epochs, &state.position)?;
        checkpoint::remove_leftovers(self.session.out.dir())?;
        let position = &state.position;
        let within = match position.batches_done {
            0 => String::new(),
            b => format!(" and {b} batches"),
        };
        self.session.console.say(&format!(
            "resuming after epoch {}{within} (iteration {}) from {}",
            position.epochs_done,
            state.scheduler.iteration(),
            checkpoint.dir.display()
        ));
        Ok(())
    }

    /// Train to the configured epoch count, writing curves and a checkpoint after every epoch;
    /// returns the test-set predictions after the last one. On failure the curves recorded so
    /// far are written before the error is returned; on a stop request, [`Error::Interrupted`].
    fn fit(&self, state: &mut TrainState, interrupt: &Interrupt) -> Result<Vec<usize>> {
        let out = &self.session.out;
        let progress = TrainProgress::new(self.session.console, self.config.training.epochs);
        progress.resume_at(state.position.epochs_done);
        let watch = Watch {
            progress: &progress,
            interrupt,
        };
        let mut last_checkpoint: Option<PathBuf> = None;
        let data = self.session.fit_data();
        let result = fit::fit(state, &data, &self.session.settings, watch, |state| {
            out.write_history(&state.history, &self.lr_title)?;
            let parts = Parts {
                config: self.config,
                state,
                info: &self.info,
            };
            last_checkpoint = Some(checkpoint::save(out.dir(), &parts)?);
            Ok(())
        });
        progress.finish();
        let end = result.inspect_err(|_| {
            // keep what the run recorded up to the failure; the failure is what is reported
            if let Err(also) = out.write_history(&state.history, &self.lr_title) {
                self.session.console.error(&also.to_string());
            }
        })?;
        match end {
            FitEnd::Finished(eval) => Ok(eval.predictions),
            FitEnd::Interrupted { iteration } => Err(Error::Interrupted {
                iteration,
                checkpoint: last_checkpoint.unwrap_or_else(|| out.path(outputs::CHECKPOINTS)),
                output: out.dir().to_path_buf(),
            }),
        }
    }

    /// Curves, the evaluation files and the model file; the report on the console.
    fn finish(&self, state: &TrainState, predictions: &[usize]) -> Result<()> {
        let out = &self.session.out;
        // a run resumed after its last epoch has no history files written by this process yet
        out.write_history(&state.history, &self.lr_title)?;
        let report = out.write_evaluation(&self.session.test, predictions)?;
        out.write_with(outputs::MODEL, |p| {
            saved_model::save(p, state.trainer.model(), &self.info)
        })?;
        let console = self.session.console;
        console.say(&format!("\n{}", report.to_text()));
        console.say(&format!("outputs written to {}", out.dir().display()));
        Ok(())
    }
}
