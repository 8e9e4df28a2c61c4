//! `clrtrain find-lr`: the learning-rate range test on the real model, data pipeline and
//! optimiser, from fresh weights that are thrown away afterwards (nothing carries over to a
//! later `train`).

use std::path::Path;

use clrtrain::config::Config;
use clrtrain::console::Console;
use clrtrain::data::loader::{self, Batch};
use clrtrain::lr_range::{self, Curve, RangeTest, Stop, Suggestions};
use clrtrain::outputs::{self, OutputDir, write_file};
use clrtrain::plot;
use clrtrain::session::Session;
use clrtrain::trainer::Trainer;
use clrtrain::{Error, Result};

use crate::cli::FindLrArgs;

/// Run `clrtrain find-lr`: the range test with the config's data, model, batch size, momentum
/// and augmentation; `lr_find.csv` and `lr_find.png` in the output folder and, if asked, a
/// config with the recommended bounds.
pub fn run(args: &FindLrArgs) -> Result<()> {
    let console = Console::new(args.common.quiet);
    let config = Config::load(args.common.config.as_deref(), &args.common.overrides())?;
    let test = args.range_test();
    test.validate().map_err(Error::Argument)?;
    let session = Session::prepare(&config, console)?;
    let curve = sweep(&session, &config, &test)?;
    let suggestions = lr_range::suggest(&curve);
    let recommended = lr_range::recommend(&suggestions);
    write_outputs(&session.out, &curve, &suggestions)?;
    console.say(&summary(&curve, &suggestions, recommended.as_ref(), &test));
    if let (Some(path), Some((base_lr, max_lr, _))) = (&args.write_config, &recommended) {
        write_tuned_config(&config, (*base_lr, *max_lr), path)?;
        console.say(&format!(
            "config with these bounds written to {}",
            path.display()
        ));
    }
    console.say(&format!(
        "outputs written to {}",
        session.out.dir().display()
    ));
    Ok(())
}

/// Train batch after batch (epoch after epoch, as `train` would) while the LR grows.
fn sweep(session: &Session, config: &Config, test: &RangeTest) -> Result<Curve> {
    let t = &config.training;
    let classes = session.train.classes.len();
    let mut trainer = Trainer::new(classes, &session.backend.device, t.seed);
    let spawn = |epoch| {
        let plan = session.settings.epoch_plan(epoch, 0);
        loader::spawn_train_epoch(session.train.clone(), session.mean.clone(), plan)
    };
    let (mut epoch, mut batches) = (0, spawn(0));
    let mut next_batch = || -> Result<Batch> {
        if let Ok(batch) = batches.recv() {
            return Ok(batch);
        }
        epoch += 1;
        batches = spawn(epoch);
        batches
            .recv()
            .map_err(|_| Error::data(&config.data.path, "the training set yields no batch"))
    };
    let bar = session.console.bar(
        test.iterations as u64,
        "range test {bar:30.cyan} {pos}/{len}  {msg}",
    );
    let curve = test.run(|it, lr| {
        let loss = trainer
            .step(next_batch()?, it as u64, lr, t.momentum)
            .loss
            .into_scalar::<f64>();
        bar.inc(1);
        bar.set_message(format!("lr {lr:.2e}  loss {loss:.4}"));
        Ok::<f64, Error>(loss)
    })?;
    bar.finish_and_clear();
    Ok(curve)
}

/// A copy of `config` with the recommended bounds, saying where it came from.
fn write_tuned_config(config: &Config, (base_lr, max_lr): (f64, f64), path: &Path) -> Result<()> {
    let mut tuned = config.clone();
    tuned.schedule.base_lr = base_lr;
    tuned.schedule.max_lr = max_lr;
    let text = format!(
        "# Written by `clrtrain find-lr`: schedule bounds from the range test.\n{}",
        tuned.to_toml()?
    );
    write_file(path, &text)
}

fn write_outputs(out: &OutputDir, curve: &Curve, suggestions: &Suggestions) -> Result<()> {
    let mut csv = String::from("iteration,lr,loss,smoothed_loss\n");
    for p in &curve.points {
        csv += &format!(
            "{},{:e},{:.6},{:.6}\n",
            p.iteration, p.lr, p.loss, p.smoothed
        );
    }
    out.write(outputs::LR_FIND_CSV, &csv)?;
    let lrs: Vec<f64> = curve.points.iter().map(|p| p.lr).collect();
    let smoothed: Vec<f64> = curve.points.iter().map(|p| p.smoothed).collect();
    let marks: Vec<(String, f64, f64)> = suggestions
        .named()
        .into_iter()
        .map(|(name, lr)| (name.to_string(), lr, smoothed_at(curve, lr)))
        .collect();
    out.write_with(outputs::LR_FIND_PNG, |p| {
        plot::plot_lr_find(&lrs, &smoothed, &marks, p)
    })
}

/// The smoothed loss at the recorded LR nearest to `lr` (minimum/10 lies between points).
fn smoothed_at(curve: &Curve, lr: f64) -> f64 {
    curve
        .points
        .iter()
        .min_by(|a, b| {
            (a.lr.ln() - lr.ln())
                .abs()
                .total_cmp(&(b.lr.ln() - lr.ln()).abs())
        })
        .map_or(f64::NAN, |p| p.smoothed)
}

fn summary(
    curve: &Curve,
    s: &Suggestions,
    recommended: Option<&(f64, f64, String)>,
    test: &RangeTest,
) -> String {
    let ran = curve.points.len();
    let mut text = match curve.stop {
        Stop::Completed => format!(
            "range test: {ran} iterations, {:.1e} → {:.1e}\n",
            test.start_lr, test.end_lr
        ),
        Stop::Diverged { iteration } => format!(
            "range test: stopped at iteration {iteration} (lr {:.2e}): smoothed loss above {}× the best\n",
            test.lr(iteration),
            test.stop_factor
        ),
        Stop::NonFinite { iteration } => format!(
            "range test: stopped at iteration {iteration} (lr {:.2e}): the loss is not finite\n",
            test.lr(iteration)
        ),
    };
    for (name, lr) in s.named() {
        text += &format!("  {name:<11} {lr:.3e}\n");
    }
    match recommended {
        Some((base, max, why)) => {
            text += &format!("recommended: base_lr = {base:.3e}, max_lr = {max:.3e}\n  ({why})")
        }
        None => {
            text += "no recommendation: the curve is too short (raise --iterations or --end-lr)"
        }
    }
    text
}
