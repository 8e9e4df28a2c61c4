//! `clrtrain find-lr`: the learning-rate range test on the real model, data pipeline and
//! optimiser, from fresh weights that are thrown away afterwards (nothing carries over to a
//! later `train`).

use std::path::Path;
use std::sync::Arc;

use crate::backend;
use crate::config::Config;
use crate::data::{self, augment::Augment, loader, mean::mean_image};
use crate::error::{Error, Result};
use crate::lr_range::{self, Curve, RangeTest, Stop, Suggestions};
use crate::outputs::{self, OutputDir};
use crate::plot;
use crate::progress::{self, Verbosity};
use crate::train::Trainer;

/// What a range test found.
#[derive(Debug, Clone)]
pub struct FindLrOutcome {
    pub curve: Curve,
    pub suggestions: Suggestions,
    /// `(base_lr, max_lr, why)`, when the curve was long enough.
    pub recommended: Option<(f64, f64, String)>,
}

/// Run the range test with `config`'s data, model, batch size, momentum and augmentation; write
/// `lr_find.csv` and `lr_find.png` to the output folder and, if asked, a config with the
/// recommended bounds to `write_config`.
pub fn find_lr(
    config: &Config,
    test: &RangeTest,
    write_config: Option<&Path>,
    verbosity: Verbosity,
) -> Result<FindLrOutcome> {
    config.validate()?;
    test.validate().map_err(Error::Config)?;
    let out = OutputDir::create(&config.output.dir)?;
    let data = data::load(&config.data)?;
    let t = &config.training;
    crate::run::check_batch_size(config, data.train.len())?;
    let selected = backend::select(t.backend)?;
    verbosity.say(&format!("backend: {}", selected.description));
    verbosity.say(&format!("data: {}", data.description));

    let mean = Arc::new(mean_image(&data.train));
    let classes = data.train.classes.len();
    let train = Arc::new(data.train);
    let augment = Augment::new(
        config.augment.shift,
        config.augment.flip,
        train.height,
        train.width,
    );
    let mut trainer = Trainer::new(classes, &selected.device, t.seed);
    let spawn = |epoch| {
        loader::spawn_train_epoch(
            train.clone(),
            mean.clone(),
            augment,
            t.batch_size,
            t.seed,
            epoch,
            0,
        )
    };
    let (mut epoch, mut batches) = (0, spawn(0));
    let bar = progress::bar(
        verbosity,
        test.iterations as u64,
        "range test {bar:30.cyan} {pos}/{len}  {msg}",
    );
    let curve = test.run(|it, lr| {
        let batch = match batches.recv() {
            Ok(batch) => batch,
            Err(_) => {
                epoch += 1;
                batches = spawn(epoch);
                batches
                    .recv()
                    .map_err(|_| Error::Config("the training set yields no batch".into()))?
            }
        };
        let loss = trainer
            .step(batch, it as u64, lr, t.momentum)
            .loss
            .into_scalar::<f64>();
        bar.inc(1);
        bar.set_message(format!("lr {lr:.2e}  loss {loss:.4}"));
        Ok::<f64, Error>(loss)
    })?;
    bar.finish_and_clear();

    let suggestions = lr_range::suggest(&curve);
    let recommended = lr_range::recommend(&suggestions);
    write_outputs(&out, &curve, &suggestions)?;
    verbosity.say(&summary(&curve, &suggestions, recommended.as_ref(), test));
    if let (Some(path), Some((base_lr, max_lr, _))) = (write_config, &recommended) {
        let mut tuned = config.clone();
        tuned.schedule.base_lr = *base_lr;
        tuned.schedule.max_lr = *max_lr;
        let text = format!(
            "# Written by `clrtrain find-lr`: schedule bounds from the range test.\n{}",
            tuned.to_toml()
        );
        std::fs::write(path, text).map_err(|e| Error::io("cannot write", path, e))?;
        verbosity.say(&format!(
            "config with these bounds written to {}",
            path.display()
        ));
    }
    verbosity.say(&format!("outputs written to {}", out.dir().display()));
    Ok(FindLrOutcome {
        curve,
        suggestions,
        recommended,
    })
}

/// The suggestions with their names, for printing and plotting.
fn named(s: &Suggestions) -> Vec<(&'static str, f64)> {
    [
        ("steepest", s.steepest),
        ("minimum/10", s.minimum_div_10),
        ("valley", s.valley),
    ]
    .into_iter()
    .filter_map(|(name, lr)| lr.map(|lr| (name, lr)))
    .collect()
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
    let marks: Vec<(String, f64, f64)> = named(suggestions)
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
    for (name, lr) in named(s) {
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
