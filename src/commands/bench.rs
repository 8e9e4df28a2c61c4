//! `clrtrain bench`: what the machine does per second with the code `train` runs — the data
//! pipeline alone, the training loop, inference — on synthetic images (their content does not
//! change the cost). The device is synchronised before every clock read.

use std::sync::Arc;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use serde::Serialize;

use clrtrain::backend;
use clrtrain::config::Config;
use clrtrain::console::{Console, TrainProgress};
use clrtrain::data::cifar;
use clrtrain::data::loader::{self, Batch};
use clrtrain::data::mean::mean_image;
use clrtrain::data::{CHANNELS, INPUT_SIZE, ImageSet};
use clrtrain::fit::{self, EpochRun, EpochSums, FitSettings, TrainState, Watch};
use clrtrain::inference;
use clrtrain::interrupt::Interrupt;
use clrtrain::outputs::pretty_json;
use clrtrain::schedule::CyclicLrScheduler;
use clrtrain::trainer::Trainer;
use clrtrain::{Error, Result};

use crate::cli::BenchArgs;

/// Images the pipeline benchmark prepares.
const PIPELINE_IMAGES: usize = 20_000;

/// Run `clrtrain bench`: every figure, as lines or one JSON object (`--json`: the story then
/// goes to stderr, so stdout stays JSON).
pub fn run(args: &BenchArgs) -> Result<()> {
    let console = Console::new(args.quiet);
    let console = if args.json {
        console.on_stderr()
    } else {
        console
    };
    let report = bench(args, console)?;
    if args.json {
        print!("{}", pretty_json(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

/// One measured figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Throughput {
    pub images_per_s: f64,
    pub ms_per_batch: f64,
    pub batch_size: usize,
    pub batches: usize,
}

impl Throughput {
    fn new(batch_size: usize, batches: usize, seconds: f64) -> Self {
        let seconds = seconds.max(1e-9);
        Self {
            images_per_s: (batch_size * batches) as f64 / seconds,
            ms_per_batch: 1e3 * seconds / batches.max(1) as f64,
            batch_size,
            batches,
        }
    }
}

/// Every figure of a benchmark run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    pub backend: String,
    /// Threads the CPU backends and the loader may use.
    pub threads: usize,
    /// Mean subtraction, augmentation and batch assembly on one thread.
    pub pipeline_one_thread: Throughput,
    /// The training loader as `train` runs it: producer thread and bounded queue.
    pub loader: Throughput,
    /// Forward, backward and SGD step, batches from the loader, losses read back in bulk.
    pub train_step: Throughput,
    /// Forward pass in inference mode, as the per-epoch evaluation runs it.
    pub inference: Throughput,
    /// Time of a 10,000-image evaluation over a 50,000-image training epoch (CIFAR-10).
    pub eval_share_of_epoch: f64,
    /// Peak resident memory of the process (Linux), MiB.
    pub peak_rss_mib: Option<f64>,
}

/// `n` random 32×32 RGB images of 10 classes.
fn synthetic_images(n: usize, seed: u64) -> ImageSet {
    let mut set = ImageSet::empty((0..10).map(|c| format!("class{c}")).collect());
    let mut rng = SmallRng::seed_from_u64(seed);
    set.pixels = vec![0; n * INPUT_SIZE * INPUT_SIZE * CHANNELS];
    rng.fill_bytes(&mut set.pixels);
    set.labels = (0..n).map(|i| (i % 10) as u32).collect();
    set
}

/// Run every measurement.
fn bench(options: &BenchArgs, console: Console) -> Result<BenchReport> {
    let selected = backend::select(options.backend)?;
    let say = |m: &str| console.say(m);
    say(&format!("backend: {}", selected.description));
    let mut config = Config::default();
    config.training.batch_size = options.batch_size.max(1);
    let steps = options.steps.max(1);

    say("timing the data pipeline…");
    let set = Arc::new(synthetic_images(PIPELINE_IMAGES, 1));
    let mean = Arc::new(mean_image(&set));
    let settings = FitSettings::new(&config, &set);
    let pipeline_one_thread = time_pipeline(&set, &mean, &settings);
    let loader = time_loader(&set, &mean, &settings);

    say(&format!(
        "timing {} training steps after {} warm-up steps…",
        steps, options.warmup
    ));
    let train_set = Arc::new(synthetic_images(
        steps.max(options.warmup) * settings.batch_size,
        2,
    ));
    let trainer = Trainer::new(10, &selected.device, 3);
    let scheduler = CyclicLrScheduler::new(config.schedule(train_set.len()));
    let mut state = TrainState::new(trainer, scheduler);
    let mut timed = |batches: usize| -> Result<f64> {
        time_training(&mut state, &train_set, &mean, &settings, batches)
    };
    if options.warmup > 0 {
        timed(options.warmup)?;
    }
    let seconds = timed(steps)?;
    sync(&selected)?;
    let train_step = Throughput::new(settings.batch_size, steps, seconds);

    let eval_batches = (steps / 5).max(2);
    say(&format!("timing {eval_batches} inference batches…"));
    let eval_set = synthetic_images(eval_batches * options.eval_batch_size.max(1), 4);
    let warm = synthetic_images(options.eval_batch_size.max(1), 5);
    inference::evaluate(
        state.trainer.model(),
        &warm,
        &mean,
        options.eval_batch_size.max(1),
    );
    let started = Instant::now();
    inference::evaluate(
        state.trainer.model(),
        &eval_set,
        &mean,
        options.eval_batch_size.max(1),
    );
    sync(&selected)?;
    let inference = Throughput::new(
        options.eval_batch_size.max(1),
        eval_batches,
        started.elapsed().as_secs_f64(),
    );

    Ok(BenchReport {
        backend: selected.description,
        threads: backend::cpu_threads(),
        pipeline_one_thread,
        loader,
        train_step,
        inference,
        eval_share_of_epoch: (cifar::TEST_IMAGES as f64 / inference.images_per_s)
            / (cifar::TRAIN_IMAGES as f64 / train_step.images_per_s),
        peak_rss_mib: peak_rss_mib(),
    })
}

/// Wait until the device has finished everything queued, so the clock reads what it did.
fn sync(selected: &backend::Selected) -> Result<()> {
    selected
        .device
        .sync()
        .map_err(|e| Error::Backend(format!("{}: {e:?}", selected.kind)))
}

/// Augmented batches of the whole set, assembled on this thread.
fn time_pipeline(set: &ImageSet, mean: &[f32], settings: &FitSettings) -> Throughput {
    let mut rng = loader::epoch_rng(settings.seed, 0);
    let mut order: Vec<usize> = (0..set.len()).collect();
    order.shuffle(&mut rng);
    let started = Instant::now();
    let mut batches = 0;
    for indices in order.chunks_exact(settings.batch_size) {
        let batch = loader::assemble(set, mean, indices, || settings.augment.draw(&mut rng));
        std::hint::black_box(&batch);
        batches += 1;
    }
    Throughput::new(
        settings.batch_size,
        batches,
        started.elapsed().as_secs_f64(),
    )
}

/// One epoch of the training loader, drained as fast as it produces.
fn time_loader(set: &Arc<ImageSet>, mean: &Arc<Vec<f32>>, settings: &FitSettings) -> Throughput {
    let started = Instant::now();
    let receiver = loader::spawn_train_epoch(set.clone(), mean.clone(), settings.epoch_plan(0, 0));
    let batches = receiver
        .iter()
        .filter(|b: &Batch| !std::hint::black_box(b).is_empty())
        .count();
    Throughput::new(
        settings.batch_size,
        batches,
        started.elapsed().as_secs_f64(),
    )
}

/// Seconds of `batches` training steps through [`fit::train_epoch`], the loop `train` runs.
fn time_training(
    state: &mut TrainState,
    set: &Arc<ImageSet>,
    mean: &Arc<Vec<f32>>,
    settings: &FitSettings,
    batches: usize,
) -> Result<f64> {
    let per_epoch = loader::batches_per_epoch(set.len(), settings.batch_size);
    let (progress, interrupt) = (TrainProgress::new(Console::silent(), 1), Interrupt::new());
    let plan = settings.epoch_plan(0, per_epoch - batches.min(per_epoch));
    let run = EpochRun {
        batches: loader::spawn_train_epoch(set.clone(), mean.clone(), plan),
        per_epoch,
        settings,
        watch: Watch {
            progress: &progress,
            interrupt: &interrupt,
        },
    };
    let started = Instant::now();
    // ends with a read of the losses from the device: the steps have finished
    fit::train_epoch(state, run, &mut EpochSums::default())?;
    Ok(started.elapsed().as_secs_f64())
}

/// Peak resident set size from `/proc/self/status` (`VmHWM`), where there is one.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

impl BenchReport {
    /// One line per figure.
    pub fn to_text(&self) -> String {
        let line = |name: &str, t: &Throughput| {
            format!(
                "{name:<22} {:>10.1} images/s  {:>9.2} ms/batch  (batch {}, {} batches)\n",
                t.images_per_s, t.ms_per_batch, t.batch_size, t.batches
            )
        };
        let mut out = format!("backend: {}; threads: {}\n", self.backend, self.threads);
        out += &line("pipeline (1 thread)", &self.pipeline_one_thread);
        out += &line("loader (train's)", &self.loader);
        out += &line("training step", &self.train_step);
        out += &line("inference", &self.inference);
        out += &format!(
            "evaluation of 10,000 images = {:.1} % of a 50,000-image training epoch\n",
            100.0 * self.eval_share_of_epoch
        );
        out += &match self.peak_rss_mib {
            Some(mib) => format!("peak memory: {mib:.0} MiB resident\n"),
            None => "peak memory: not available on this system\n".into(),
        };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_is_images_over_seconds() {
        let t = Throughput::new(64, 10, 2.0);
        assert_eq!(t.images_per_s, 320.0);
        assert_eq!(t.ms_per_batch, 200.0);
        let set = synthetic_images(30, 1);
        assert_eq!(set.len(), 30);
        assert_eq!(set.pixels.len(), 30 * 3072);
        assert_eq!(set.class_counts(), vec![3; 10]);
    }
}
