//! The GPU code path (wgpu) against flex, on a software adapter (Mesa's lavapipe) so that it runs
//! without a GPU: training steps, evaluation, class probabilities, the model file and
//! checkpoints crossing between the two devices.
//!
//! Compiled into the untuned GPU build only (`cargo test --release --no-default-features
//! --features flex,wgpu-runtime --test all wgpu`, as `.ci/run` does): with `wgpu`'s fusion and autotune,
//! lavapipe spends ~30 s compiling each tuned matmul kernel and one step takes over 20 minutes.
//! Fusion and autotune change which kernels run, not what the code above them does: the
//! device, the autodiff graph, the optimiser, the bulk reads and the files are the same.

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use clrtrain::backend::{self, BackendKind};
use clrtrain::data::loader::{self, Batch};
use clrtrain::data::mean::mean_image;
use clrtrain::inference::{evaluate, probabilities};
use clrtrain::model::MiniGoogLeNet;
use clrtrain::saved_model::{self, ModelInfo};
use clrtrain::schedule::{Clr, Method};
use clrtrain::trainer::Trainer;

use crate::support::*;

/// Agreement bounds between lavapipe and flex, both f32 summing in other orders. Figures
/// measured here are in the README ("The GPU path without a GPU").
///
/// Same weights, forward only: losses and probabilities agree to ~1e-7 from the initial weights
/// (running statistics 0 and 1), relative for losses.
const FORWARD_TOLERANCE: f64 = 1e-5;
/// Inference on trained weights: the running statistics of two steps are far from the batch
/// statistics: probabilities 5e-7 apart, losses ~1e-7 (relative; the log of small probabilities
/// magnifies their differences).
const INFERENCE_TOLERANCE: f64 = 1e-3;
/// One SGD step from the same weights: each parameter tensor's update agrees within this share
/// of its size (measured ≤ 0.34 %; BatchNorm's backward subtracts nearly equal sums in the early
/// layers, so f32 rounding shows there first). A wrong gradient is off by ~100 %.
const UPDATE_TOLERANCE: f64 = 0.01;
/// The loss after that step, relative: measured 3e-5 (2e-5 on Burn's ndarray backend); inputs
/// perturbed by 1e-7 relative move flex's own by 4e-5–7e-5.
const SECOND_LOSS_TOLERANCE: f64 = 1e-3;
/// Two steps (the second carries the first's momentum) from the same weights: the shares of
/// the summed updates. Rounding differences fed back through a step already spread them:
/// measured worst 4.3 % and median 1.0 % (ndarray 4.1 % / 0.7 %; flex against itself with
/// inputs perturbed by 1e-7 relative, 5.3 % / 1.0 %). A second step without momentum is off by
/// 60 % / 41 %, one at 0.9× its rate by 8.9 % / 8.4 %. Later steps are not compared: by the
/// third, rounding-level perturbations alone move the loss by 0.2–1 % and tensors by 20 %.
const TWO_STEP_WORST: f64 = 0.25;
const TWO_STEP_MEDIAN: f64 = 0.03;
/// A checkpoint resumed for one epoch (2 steps) on each device: epoch 2's losses and accuracies,
/// relative (measured within 0.17 %, at lower rates than above).
const RESUMED_EPOCH_TOLERANCE: f64 = 0.01;

fn software_gpu() -> Device {
    match backend::select(BackendKind::WgpuSoftware) {
        Ok(selected) => selected.device,
        Err(e) => panic!("{e} (.ci/run installs it)"),
    }
}

/// Every float parameter tensor of a model (BatchNorm's running statistics included), flattened.
/// Read through `valid()`: a training model's running statistics lag one update behind until
/// Burn syncs them (as saving and evaluation do).
fn parameters(model: &MiniGoogLeNet) -> Vec<Vec<f32>> {
    let model = model.valid();
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().into_data().iter::<f32>().collect());
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

/// Euclidean distance between two tensors' values.
fn distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// For each tensor: |gpu − flex| / |flex − start|, the disagreement as a share of the update.
fn update_disagreement(start: &[Vec<f32>], flex: &[Vec<f32>], gpu: &[Vec<f32>]) -> Vec<f64> {
    let mut shares = Vec::new();
    for ((s, f), g) in start.iter().zip(flex).zip(gpu) {
        let update = distance(f, s);
        let apart = distance(f, g);
        // tensors the step leaves alone (conv biases before BatchNorm get a zero gradient)
        if update > 1e-6 {
            shares.push(apart / update);
        } else {
            assert!(
                apart < 1e-6,
                "a tensor flex left alone moved on wgpu by {apart}"
            );
        }
    }
    shares
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-12)
}

/// The largest difference between two tables of probabilities.
fn worst(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn wgpu_trains_evaluates_and_predicts_as_flex_does_from_the_same_weights() {
    const CLASSES: usize = 4;
    let (train, test) = (synthetic_set(CLASSES, 3, 21), synthetic_set(CLASSES, 2, 22));
    let mean = mean_image(&train);
    let batches: Vec<Batch> = loader::eval_batches(&train, &mean, 6).collect();
    let (_guard, tmp) = tempdir();
    for dir in ["start", "trained", "from-wgpu"] {
        std::fs::create_dir_all(tmp.join(dir)).unwrap();
    }
    let info = ModelInfo::of_training_set(&train, &mean);
    let gpu_device = software_gpu();

    // the same starting weights on both: flex's, through the model file
    let mut flex = Trainer::new(CLASSES, &Device::flex(), 7);
    let start = parameters(flex.model());
    flex.save(&tmp.join("start"), &info).unwrap();
    let mut gpu = Trainer::new(CLASSES, &gpu_device, 7);
    assert_ne!(
        parameters(gpu.model()),
        start,
        "another device, other random weights"
    );
    gpu.load(&tmp.join("start")).unwrap();
    assert_eq!(parameters(gpu.model()), start);

    // two SGD steps (momentum 0.9) at the rates of a triangular cycle of 2 iterations up
    let clr = Clr::symmetric(Method::Triangular, 1e-3, 4e-3, 2, 1.0);
    for it in 0..2u64 {
        let batch = batches[it as usize % batches.len()].clone();
        let lr = clr.lr(it);
        let (f, g) = (
            flex.step(batch.clone(), it, lr, 0.9),
            gpu.step(batch, it, lr, 0.9),
        );
        let (lf, lg) = (f.loss.into_scalar::<f64>(), g.loss.into_scalar::<f64>());
        eprintln!("step {it} at lr {lr:.2e}: loss flex {lf:.7}, wgpu {lg:.7}");
        let bound = [FORWARD_TOLERANCE, SECOND_LOSS_TOLERANCE][it as usize];
        assert!(relative(lf, lg) < bound, "step {it}: loss {lf} vs {lg}");
        if it == 0 {
            assert_eq!(
                f.correct.into_scalar::<i64>(),
                g.correct.into_scalar::<i64>()
            );
        }
        let mut shares =
            update_disagreement(&start, &parameters(flex.model()), &parameters(gpu.model()));
        shares.sort_by(f64::total_cmp);
        let (worst, median) = (shares[shares.len() - 1], shares[shares.len() / 2]);
        eprintln!(
            "after {} update(s): {} tensors, disagreement at most {:.2} %, median {:.2} %",
            it + 1,
            shares.len(),
            worst * 100.0,
            median * 100.0
        );
        assert!(shares.len() > 50);
        if it == 0 {
            assert!(worst < UPDATE_TOLERANCE);
        } else {
            assert!(worst < TWO_STEP_WORST && median < TWO_STEP_MEDIAN);
        }
    }

    // evaluation (running BatchNorm statistics, no dropout) and class probabilities, on the
    // same trained weights: flex's, moved into the GPU trainer
    flex.save(&tmp.join("trained"), &info).unwrap();
    gpu.load(&tmp.join("trained")).unwrap();
    let (ef, eg) = (
        evaluate(flex.model(), &test, &mean, 4),
        evaluate(gpu.model(), &test, &mean, 4),
    );
    eprintln!("evaluation: loss flex {:.7}, wgpu {:.7}", ef.loss, eg.loss);
    assert!(relative(ef.loss, eg.loss) < INFERENCE_TOLERANCE);
    assert_eq!(ef.predictions, eg.predictions);
    let (pf, pg) = (
        probabilities(flex.model(), &test, &mean, 4),
        probabilities(gpu.model(), &test, &mean, 4),
    );
    eprintln!("probabilities: max difference {:.2e}", worst(&pf, &pg));
    assert_eq!(pf.len(), test.len());
    assert!(worst(&pf, &pg) < INFERENCE_TOLERANCE);

    // a model file written from GPU memory reads back on the CPU, every value as it was
    let trained_on_gpu = parameters(gpu.model());
    gpu.save(&tmp.join("from-wgpu"), &info).unwrap();
    let path = tmp.join("from-wgpu").join(clrtrain::outputs::MODEL);
    let on_flex = saved_model::load(&path, &Device::flex()).unwrap();
    assert_eq!(on_flex.info, info);
    let read = parameters(&on_flex.model);
    assert_eq!(read, trained_on_gpu);
}

/// Copy the folder `from` (recursively) to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// History rows as numbers: epoch, train loss, train accuracy, val loss, val accuracy (seconds
/// left out).
fn metrics(run: &Path) -> Vec<Vec<f64>> {
    csv_rows(&run.join("history.csv"))
        .iter()
        .map(|row| row[..5].iter().map(|x| x.parse().unwrap()).collect())
        .collect()
}

#[test]
fn wgpu_checkpoints_resume_on_flex_and_flex_checkpoints_on_wgpu() {
    const GPU: &str = "wgpu-software";
    let (_guard, tmp) = tempdir();
    // 2 classes of 4 images, batches of 4: 2 iterations an epoch
    let data = data_folder(&tmp, 2, 4, 2, 61);
    let train = |out: &Path, backend: &str| {
        Clrtrain::train(&data, out)
            .args(&["--epochs", "1", "--batch-size", "4", "--step-size", "1"])
            .args(&["--base-lr", "0.0001", "--max-lr", "0.002"])
            .args(&["--backend", backend])
            .ok();
    };
    let resume = |out: &Path, backend: &str| {
        Clrtrain::new("train")
            .flag("--resume", out)
            .args(&["--epochs", "2", "--backend", backend])
            .ok();
    };
    for (first, other) in [(GPU, "flex"), ("flex", GPU)] {
        let run = tmp.join(first);
        train(&run, first);
        // the same checkpoint, resumed on its own device and on the other one
        let (same, crossed) = (
            tmp.join(format!("{first}-{first}")),
            tmp.join(format!("{first}-{other}")),
        );
        copy_dir(&run, &same);
        copy_dir(&run, &crossed);
        resume(&same, first);
        resume(&crossed, other);

        let (a, b) = (metrics(&same), metrics(&crossed));
        eprintln!("{first} then {first}: {a:?}\n{first} then {other}: {b:?}");
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], metrics(&run)[0], "epoch 1 comes from the checkpoint");
        assert_eq!(a[0], b[0]);
        for (x, y) in a[1].iter().zip(&b[1]) {
            assert!(
                relative(*x, *y) < RESUMED_EPOCH_TOLERANCE,
                "epoch 2: {a:?} vs {b:?}"
            );
        }
        let lrs = |dir: &Path| csv_rows(&dir.join("lr.csv"));
        assert_eq!(lrs(&same).len(), 4);
        assert_eq!(lrs(&same), lrs(&crossed));
        assert_eq!(
            csv_rows(&same.join("predictions.csv")),
            csv_rows(&crossed.join("predictions.csv"))
        );
    }

    // predict on wgpu with the model trained there, against flex
    let image = data.join("test/class1/0001.png");
    let predict = |backend: &str| -> serde_json::Value {
        let out = Clrtrain::new("predict")
            .flag("--model", tmp.join(GPU))
            .args(&["--json", "--top-k", "2", "--backend", backend])
            .arg(&image)
            .ok();
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    let (on_gpu, on_flex) = (predict(GPU), predict("flex"));
    let top = |v: &serde_json::Value, k: usize| {
        let p = &v[0]["predictions"][k];
        (p["class"].clone(), p["probability"].as_f64().unwrap())
    };
    for k in 0..2 {
        let ((cg, pg), (cf, pf)) = (top(&on_gpu, k), top(&on_flex, k));
        assert_eq!(cg, cf);
        assert!((pg - pf).abs() < INFERENCE_TOLERANCE, "{pg} vs {pf}");
    }
}
