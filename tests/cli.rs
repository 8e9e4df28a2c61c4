//! End-to-end runs of the `clrtrain` binary on tiny datasets the tests write, and its answers
//! to bad input: one clear message, a non-zero exit code, never a panic.

mod common;

use std::path::Path;

use burn::tensor::Device;
use clrtrain::config::{Config, DataConfig};
use clrtrain::schedule::{Clr, Method};
use common::*;

const CLASSES: usize = 4;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

/// Train 2 epochs of 4 batches of 8 on `data`, then check every output file.
fn train_and_check_outputs(data: &Path, out: &Path, method: Method) {
    let result = clrtrain_ok(&[
        "train",
        "--data",
        &arg(data),
        "--output",
        &arg(out),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--step-size",
        "1",
        "--base-lr",
        "1e-4",
        "--max-lr",
        "2e-2",
        "--method",
        method.name(),
        "--backend",
        "flex",
        "--seed",
        "3",
    ]);
    let text = stdout(&result);
    // not a terminal: one plain line per epoch, then the report
    assert!(
        text.contains("epoch 1/2: loss") && text.contains("epoch 2/2: loss"),
        "{text}"
    );
    assert!(text.contains("weighted avg"), "{text}");

    // the resolved config parses back with the flags in it
    let config = Config::from_file(&out.join("config.toml")).unwrap();
    assert_eq!(config.training.epochs, 2);
    assert_eq!(config.schedule.method, method);

    // history: one row per epoch, finite numbers, accuracies in [0, 1]
    let history = csv_rows(&out.join("history.csv"));
    assert_eq!(history.len(), 2);
    for (i, row) in history.iter().enumerate() {
        assert_eq!(row.len(), 6);
        assert_eq!(row[0], (i + 1).to_string());
        let v: Vec<f64> = row[1..].iter().map(|x| x.parse().unwrap()).collect();
        assert!(v.iter().all(|x| x.is_finite()));
        assert!((0.0..=1.0).contains(&v[1]) && (0.0..=1.0).contains(&v[3]));
    }

    // learning rates: 32 images / 8 = 4 iterations per epoch, step size 1 epoch = 4 iterations
    let clr = Clr::symmetric(method, 1e-4, 2e-2, 4, 0.99994);
    let lrs = csv_rows(&out.join("lr.csv"));
    assert_eq!(lrs.len(), 8);
    for (it, row) in lrs.iter().enumerate() {
        assert_eq!(row[0], it.to_string());
        let lr: f64 = row[1].parse().unwrap();
        assert!(
            (lr - clr.lr(it as u64)).abs() <= 1e-12,
            "iteration {it}: {lr}"
        );
    }
    assert_eq!(lrs[4][1].parse::<f64>().unwrap(), 2e-2);

    // predictions and report agree
    let predictions = csv_rows(&out.join("predictions.csv"));
    assert_eq!(predictions.len(), 4 * CLASSES);
    let correct = predictions.iter().filter(|r| r[1] == r[2]).count();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let accuracy = report["accuracy"].as_f64().unwrap();
    assert!((accuracy - correct as f64 / predictions.len() as f64).abs() < 1e-12);
    assert_eq!(report["weighted avg"]["support"], 16);
    for c in 0..CLASSES {
        let class = format!("class{c}");
        let true_c = predictions.iter().filter(|r| r[3] == class).count();
        assert_eq!(report[&class]["support"], true_c);
        let predicted_c = predictions.iter().filter(|r| r[4] == class).count();
        let hits = predictions
            .iter()
            .filter(|r| r[3] == class && r[4] == class)
            .count();
        let precision = if predicted_c == 0 {
            0.0
        } else {
            hits as f64 / predicted_c as f64
        };
        assert!((report[&class]["precision"].as_f64().unwrap() - precision).abs() < 1e-12);
    }
    let report_txt = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(report_txt.contains(&format!("{accuracy:.2}")) && report_txt.contains("macro avg"));

    // plots are real PNGs of the documented sizes
    assert_eq!(
        image::image_dimensions(out.join("training.png")).unwrap(),
        (1200, 500)
    );
    assert_eq!(
        image::image_dimensions(out.join("lr.png")).unwrap(),
        (900, 500)
    );

    // the confusion matrix: counts of (true, predicted) pairs from predictions.csv
    let matrix = csv_rows(&out.join("confusion_matrix.csv"));
    assert_eq!(matrix.len(), CLASSES);
    for (t, row) in matrix.iter().enumerate() {
        assert_eq!(row[0], format!("class{t}"));
        for p in 0..CLASSES {
            let pairs = predictions
                .iter()
                .filter(|r| r[1] == t.to_string() && r[2] == p.to_string())
                .count();
            assert_eq!(row[p + 1], pairs.to_string());
        }
    }
    let side = image::image_dimensions(out.join("confusion_matrix.png")).unwrap();
    assert_eq!(side, (150 + 4 * 72 + 40, 70 + 4 * 72 + 80));

    // the model file carries classes and mean image, and reproduces predictions.csv
    let saved = clrtrain::saved_model::load(&out.join("model.clrtrain"), &Device::flex()).unwrap();
    assert_eq!(saved.info.classes.len(), CLASSES);
    assert_eq!(saved.info.architecture, "MiniGoogLeNet");
    let data = clrtrain::data::load(&DataConfig {
        path: data.to_path_buf(),
        download: false,
        ..Default::default()
    })
    .unwrap();
    let mean = clrtrain::data::mean::mean_image(&data.train);
    assert_eq!(saved.info.mean_image_hwc, mean);
    let eval = clrtrain::train::evaluate(&saved.model, &data.test, &mean, 5);
    let saved_predictions: Vec<usize> = predictions.iter().map(|r| r[2].parse().unwrap()).collect();
    assert_eq!(eval.predictions, saved_predictions);
    assert!((eval.accuracy - accuracy).abs() < 1e-12);

    // one checkpoint per epoch
    for epoch in ["epoch-0001", "epoch-0002"] {
        assert!(
            out.join("checkpoints")
                .join(epoch)
                .join("model.clrtrain")
                .is_file()
        );
    }
}

/// `evaluate` and `predict` with the model a run in `out` saved, on the dataset in `data`.
fn evaluate_and_predict(data: &Path, out: &Path) {
    // evaluate reproduces the run's own evaluation, from the run folder or a checkpoint
    let eval_dir = out.join("eval");
    clrtrain_ok(&[
        "evaluate",
        "--model",
        &arg(out),
        "--data",
        &arg(data),
        "--backend",
        "flex",
        "--output",
        &arg(&eval_dir),
    ]);
    for file in [
        "predictions.csv",
        "report.json",
        "report.txt",
        "confusion_matrix.csv",
    ] {
        assert_eq!(
            std::fs::read_to_string(eval_dir.join(file)).unwrap(),
            std::fs::read_to_string(out.join(file)).unwrap(),
            "{file}"
        );
    }
    assert!(image::image_dimensions(eval_dir.join("confusion_matrix.png")).is_ok());
    let checkpoint = out.join("checkpoints/epoch-0002");
    clrtrain_ok(&[
        "evaluate",
        "--model",
        &arg(&checkpoint),
        "--data",
        &arg(data),
        "-q",
    ]);
    assert_eq!(
        std::fs::read_to_string(checkpoint.join("evaluation/predictions.csv")).unwrap(),
        std::fs::read_to_string(out.join("predictions.csv")).unwrap()
    );

    // predict: a test image as saved, and the same image enlarged to 64×48
    let predictions = csv_rows(&out.join("predictions.csv"));
    let first = data.join("test/class0/0000.png");
    let big = tmp_image(out, &first);
    let json = clrtrain_ok(&[
        "predict",
        "--model",
        &arg(out),
        "--backend",
        "flex",
        "--json",
        "--top-k",
        "2",
        &arg(&first),
        &arg(&big),
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    let top = &v[0]["predictions"];
    assert_eq!(top.as_array().unwrap().len(), 2);
    // the top class is the one predictions.csv has for this test image (index 0)
    assert_eq!(top[0]["class"], predictions[0][4].as_str());
    let (p0, p1) = (
        top[0]["probability"].as_f64().unwrap(),
        top[1]["probability"].as_f64().unwrap(),
    );
    assert!(p0 >= p1 && p1 >= 0.0 && p0 + p1 <= 1.0 + 1e-6);
    let text = stdout(&clrtrain_ok(&["predict", "--model", &arg(out), &arg(&big)]));
    assert!(
        text.starts_with(&arg(&big)) && text.lines().count() == 4,
        "{text}"
    );

    // files that are not models, truncated models: one clear message each
    assert_fails(
        &[
            "predict",
            "--model",
            &arg(&out.join("lr.png")),
            &arg(&first),
        ],
        "not a clrtrain model file",
    );
    let model = std::fs::read(out.join("model.clrtrain")).unwrap();
    let cut = out.join("cut.clrtrain");
    std::fs::write(&cut, &model[..model.len() / 3]).unwrap();
    assert_fails(
        &["evaluate", "--model", &arg(&cut), "--data", &arg(data)],
        "truncated: the file ends inside its weights",
    );
    assert_fails(
        &[
            "predict",
            "--model",
            &arg(out),
            &arg(&out.join("history.csv")),
        ],
        "cannot decode image",
    );
}

/// `source` resized to 64×48, next to `dir`'s files.
fn tmp_image(dir: &Path, source: &Path) -> std::path::PathBuf {
    let big = dir.join("big.png");
    let image = image::open(source).unwrap();
    image
        .resize_exact(64, 48, image::imageops::FilterType::Nearest)
        .save(&big)
        .unwrap();
    big
}

#[test]
fn trains_on_an_image_folder_and_writes_every_output() {
    let (_guard, tmp) = tempdir();
    let data = tmp.join("folder");
    write_image_folder(
        &data,
        &synthetic_set(CLASSES, 8, 1),
        &synthetic_set(CLASSES, 4, 2),
    );
    // one larger JPEG: resized to 32x32 on load
    let big = image::RgbImage::from_pixel(48, 40, image::Rgb([220, 30, 30]));
    big.save(data.join("train/class0/zzzz.jpg")).unwrap();
    let loaded = clrtrain::data::load(&DataConfig {
        path: data.clone(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(loaded.train.len(), 33);
    std::fs::remove_file(data.join("train/class0/zzzz.jpg")).unwrap();
    train_and_check_outputs(&data, &tmp.join("out"), Method::Triangular);
    evaluate_and_predict(&data, &tmp.join("out"));
}

#[test]
fn trains_on_cifar_binary_batches_with_triangular2() {
    let (_guard, tmp) = tempdir();
    let data = tmp.join("cifar");
    write_cifar_batches(
        &data.join("cifar-10-batches-bin"),
        &synthetic_set(CLASSES, 8, 3),
        &synthetic_set(CLASSES, 4, 4),
    );
    train_and_check_outputs(&data, &tmp.join("out"), Method::Triangular2);
}

/// Runs that must fail: exit code 1 (2 for clap's usage errors), a message with `needle`, no
/// panic.
fn assert_fails(args: &[&str], needle: &str) -> std::process::Output {
    let out = clrtrain(args);
    let err = stderr(&out);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        err.contains(needle),
        "{args:?}: expected '{needle}' in:\n{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{args:?} panicked:\n{err}"
    );
    out
}

fn tiny_folder(root: &Path) {
    write_image_folder(root, &synthetic_set(2, 4, 5), &synthetic_set(2, 2, 6));
}

#[test]
fn bad_configs_name_the_key_or_value() {
    let (_guard, tmp) = tempdir();
    let data = tmp.join("data");
    tiny_folder(&data);
    let config = tmp.join("bad.toml");
    let base = |cfg: &Path| -> Vec<String> {
        [
            "train",
            "--config",
            &arg(cfg),
            "--data",
            &arg(&data),
            "--output",
            &arg(&tmp.join("o")),
            "--no-download",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let cases = [
        ("[training]\nepochz = 3\n", "epochz"),
        ("[schedule]\nmethod = \"cosine\"\n", "cosine"),
        (
            "[schedule]\nbase_lr = 0.1\nmax_lr = 0.01\n",
            "schedule.base_lr",
        ),
        ("[schedule]\nstep_size = 0\n", "schedule.step_size"),
        (
            "[training]\nbatch_size = 64\n",
            "training.batch_size = 64 is larger than the 8 training images",
        ),
        ("[training]\nbackend = \"tpu\"\n", "tpu"),
        ("this is not toml", "bad.toml"),
    ];
    for (text, needle) in cases {
        std::fs::write(&config, text).unwrap();
        let args = base(&config);
        let out = assert_fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), needle);
        assert_eq!(out.status.code(), Some(1));
    }
    assert_fails(
        &["train", "--config", &arg(&tmp.join("missing.toml"))],
        "missing.toml",
    );
    let usage = assert_fails(&["train", "--method", "cosine"], "cosine");
    assert_eq!(usage.status.code(), Some(2));
    assert_fails(&["train", "--backend", "tpu"], "tpu");
}

#[test]
fn bad_data_is_reported_with_the_file() {
    let (_guard, tmp) = tempdir();
    let out = arg(&tmp.join("out"));
    // nothing there and no download
    assert_fails(
        &[
            "train",
            "--data",
            &arg(&tmp.join("none")),
            "--output",
            &out,
            "--no-download",
        ],
        "downloading is disabled",
    );
    // nothing there and the download address does not answer
    assert_fails(
        &[
            "train",
            "--data",
            &arg(&tmp.join("none2")),
            "--output",
            &out,
            "--data-url",
            "http://127.0.0.1:9/cifar.tar.gz",
        ],
        "download failed",
    );
    // truncated batch file
    let cifar = tmp.join("cifar/cifar-10-batches-bin");
    write_cifar_batches(&cifar, &synthetic_set(2, 5, 1), &synthetic_set(2, 2, 2));
    let bytes = std::fs::read(cifar.join("data_batch_3.bin")).unwrap();
    std::fs::write(cifar.join("data_batch_3.bin"), &bytes[..bytes.len() - 100]).unwrap();
    assert_fails(
        &[
            "train",
            "--data",
            &arg(&tmp.join("cifar")),
            "--output",
            &out,
        ],
        "data_batch_3.bin",
    );
    // an image that does not decode
    let folder = tmp.join("folder");
    tiny_folder(&folder);
    std::fs::write(folder.join("test/class1/broken.jpg"), b"not a jpeg").unwrap();
    assert_fails(
        &["train", "--data", &arg(&folder), "--output", &out],
        "broken.jpg",
    );
    // an output folder that cannot be created (its parent is a file)
    std::fs::remove_file(folder.join("test/class1/broken.jpg")).unwrap();
    let file = tmp.join("file");
    std::fs::write(&file, "x").unwrap();
    assert_fails(
        &[
            "train",
            "--data",
            &arg(&folder),
            "--output",
            &arg(&file.join("out")),
        ],
        "cannot create output folder",
    );
}

#[test]
fn a_diverging_loss_stops_with_a_message_and_keeps_what_was_written() {
    let (_guard, tmp) = tempdir();
    let data = tmp.join("data");
    write_image_folder(&data, &synthetic_set(2, 16, 7), &synthetic_set(2, 2, 8));
    let out = tmp.join("out");
    assert_fails(
        &[
            "train",
            "--data",
            &arg(&data),
            "--output",
            &arg(&out),
            "--epochs",
            "3",
            "--batch-size",
            "8",
            "--base-lr",
            "1e6",
            "--max-lr",
            "1e8",
            "--step-size",
            "1",
            "--backend",
            "flex",
        ],
        "training diverged",
    );
    assert!(out.join("config.toml").is_file());
    let lrs = csv_rows(&out.join("lr.csv"));
    assert!(!lrs.is_empty());
    assert!(
        std::fs::read_to_string(out.join("history.csv"))
            .unwrap()
            .starts_with("epoch,")
    );
}

fn assert_flags_explained(command: &str, flags: &[&str]) {
    let out = clrtrain(&[command, "--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    for flag in flags {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(flag) || l.contains(&format!(" {flag} ")));
        assert!(
            line.is_some_and(|l| l.len() > flag.len() + 20),
            "{command} {flag} is not explained:\n{help}"
        );
    }
}

#[test]
fn help_explains_every_flag() {
    let common = [
        "--config",
        "--backend",
        "--batch-size",
        "--data",
        "--output",
        "--seed",
        "--train-per-class",
        "--test-per-class",
        "--data-url",
        "--no-download",
        "--quiet",
    ];
    let train = [
        "--method",
        "--epochs",
        "--base-lr",
        "--max-lr",
        "--step-size",
        "--step-size-down",
        "--gamma",
        "--cycle-momentum",
    ];
    assert_flags_explained("train", &[&common[..], &train[..]].concat());
    let find_lr = [
        "--start-lr",
        "--end-lr",
        "--iterations",
        "--mode",
        "--beta",
        "--stop-factor",
        "--write-config",
    ];
    assert_flags_explained("find-lr", &[&common[..], &find_lr[..]].concat());
    let preview = [
        "--config",
        "--batch-size",
        "--train-size",
        "--iterations",
        "--csv",
        "--plot",
    ];
    assert_flags_explained("schedule", &[&train[..], &preview[..]].concat());
    assert_flags_explained("train", &["--resume"]);
    let evaluate = [
        "--model",
        "--data",
        "--test-per-class",
        "--backend",
        "--batch-size",
        "--output",
        "--no-download",
        "--quiet",
    ];
    assert_flags_explained("evaluate", &evaluate);
    assert_flags_explained("predict", &["--model", "--top-k", "--json", "--backend"]);
    let bench = [
        "--backend",
        "--batch-size",
        "--steps",
        "--warmup",
        "--eval-batch-size",
        "--json",
    ];
    assert_flags_explained("bench", &bench);
}

/// `clrtrain bench` prints every figure, as one JSON object with --json.
#[test]
fn bench_reports_every_figure() {
    let out = clrtrain_ok(&[
        "bench",
        "--backend",
        "flex",
        "--batch-size",
        "4",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--eval-batch-size",
        "4",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(v["backend"].as_str().unwrap().starts_with("flex"));
    for figure in ["pipeline_one_thread", "loader", "train_step", "inference"] {
        let images_per_s = v[figure]["images_per_s"].as_f64().unwrap();
        assert!(images_per_s.is_finite() && images_per_s > 0.0, "{figure}");
    }
    assert_eq!(v["train_step"]["batches"], 2);
    assert_eq!(v["inference"]["batches"], 2);
    assert_eq!(v["loader"]["batch_size"], 4);
    // 20,000 pipeline images in batches of 4
    assert_eq!(v["loader"]["batches"], 5000);
    let share = v["eval_share_of_epoch"].as_f64().unwrap();
    assert!(share > 0.0 && share.is_finite());
}

#[test]
fn find_lr_writes_curve_plot_and_a_config_that_trains() {
    let (_guard, tmp) = tempdir();
    let data = tmp.join("data");
    write_image_folder(
        &data,
        &synthetic_set(CLASSES, 8, 21),
        &synthetic_set(CLASSES, 2, 22),
    );
    let out = tmp.join("find");
    let tuned = tmp.join("tuned.toml");
    let result = clrtrain_ok(&[
        "find-lr",
        "--data",
        &arg(&data),
        "--output",
        &arg(&out),
        "--batch-size",
        "8",
        "--iterations",
        "12",
        "--start-lr",
        "1e-5",
        "--end-lr",
        "1",
        "--write-config",
        &arg(&tuned),
        "--backend",
        "flex",
        "--seed",
        "4",
    ]);
    let text = stdout(&result);
    assert!(
        text.contains("recommended: base_lr") && text.contains("valley"),
        "{text}"
    );

    let rows = csv_rows(&out.join("lr_find.csv"));
    assert!(!rows.is_empty() && rows.len() <= 12);
    let first_lr: f64 = rows[0][1].parse().unwrap();
    assert_eq!(first_lr, 1e-5);
    if rows.len() == 12 {
        assert!((rows[11][1].parse::<f64>().unwrap() - 1.0).abs() < 1e-9);
    }
    assert!(
        rows.iter()
            .all(|r| r.len() == 4 && r[3].parse::<f64>().unwrap().is_finite())
    );
    assert_eq!(
        image::image_dimensions(out.join("lr_find.png")).unwrap(),
        (900, 550)
    );
    assert!(
        !out.join("model.clrtrain").exists() && !out.join("checkpoints").exists(),
        "the range test keeps no weights"
    );

    // the written config carries the recommended bounds and trains
    let config = Config::from_file(&tuned).unwrap();
    assert!(config.schedule.base_lr < config.schedule.max_lr);
    assert!(
        text.contains(&format!("max_lr = {:.3e}", config.schedule.max_lr)),
        "{text}"
    );
    clrtrain_ok(&[
        "train",
        "--config",
        &arg(&tuned),
        "--epochs",
        "1",
        "--output",
        &arg(&tmp.join("train")),
        "--backend",
        "flex",
        "--batch-size",
        "8",
        "--step-size",
        "1",
    ]);
}

#[test]
fn find_lr_stops_once_the_loss_diverges_and_leaves_no_trace_on_training() {
    let (_guard, tmp) = tempdir();
    let data = tmp.join("data");
    write_image_folder(&data, &synthetic_set(2, 16, 31), &synthetic_set(2, 2, 32));
    let out = tmp.join("run");
    let result = clrtrain_ok(&[
        "find-lr",
        "--data",
        &arg(&data),
        "--output",
        &arg(&out),
        "--batch-size",
        "8",
        "--iterations",
        "40",
        "--start-lr",
        "1",
        "--end-lr",
        "1e8",
        "--backend",
        "flex",
    ]);
    assert!(
        stdout(&result).contains("stopped at iteration"),
        "{}",
        stdout(&result)
    );
    assert!(csv_rows(&out.join("lr_find.csv")).len() < 40);

    // training in the same folder afterwards equals training in a fresh one
    let train = |dir: &Path| {
        clrtrain_ok(&[
            "train",
            "--data",
            &arg(&data),
            "--output",
            &arg(dir),
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--step-size",
            "1",
            "--backend",
            "flex",
            "--seed",
            "9",
        ]);
        csv_rows(&dir.join("history.csv"))
            .into_iter()
            .map(|row| row[..5].to_vec())
            .collect::<Vec<_>>()
    };
    assert_eq!(train(&out), train(&tmp.join("fresh")));
}

#[test]
fn schedule_preview_equals_what_training_used() {
    let (_guard, tmp) = tempdir();
    let data = tmp.join("data");
    write_image_folder(
        &data,
        &synthetic_set(CLASSES, 5, 41),
        &synthetic_set(CLASSES, 1, 42),
    );
    let flags = [
        "--epochs",
        "3",
        "--batch-size",
        "6",
        "--step-size",
        "1",
        "--base-lr",
        "1e-3",
        "--max-lr",
        "5e-2",
        "--method",
        "triangular2",
    ];
    let out = tmp.join("train");
    let (data_str, out_str) = (arg(&data), arg(&out));
    let mut train = vec![
        "train",
        "--data",
        &data_str,
        "--output",
        &out_str,
        "--backend",
        "flex",
    ];
    train.extend(flags);
    let trained = clrtrain_ok(&train);
    // 20 images / batch 6 = 3 iterations per epoch; 3 epochs end mid-cycle (cycle = 6)
    assert!(
        stdout(&trained).contains("warning: the run stops 3 iterations into cycle 2"),
        "{}",
        stdout(&trained)
    );

    let csv = tmp.join("preview.csv");
    let png = tmp.join("preview.png");
    let (csv_str, png_str) = (arg(&csv), arg(&png));
    let mut preview = vec![
        "schedule",
        "--train-size",
        "20",
        "--csv",
        &csv_str,
        "--plot",
        &png_str,
    ];
    preview.extend(flags);
    let previewed = clrtrain_ok(&preview);
    let text = stdout(&previewed);
    assert!(
        text.contains("9 iterations: 1 full cycle(s) of 6 iterations") && text.contains("warning:"),
        "{text}"
    );

    let trained_lrs: Vec<String> = csv_rows(&out.join("lr.csv"))
        .into_iter()
        .map(|r| r[1].clone())
        .collect();
    let rows = csv_rows(&csv);
    let previewed_lrs: Vec<String> = rows.iter().map(|r| r[1].clone()).collect();
    assert_eq!(trained_lrs.len(), 9);
    assert_eq!(trained_lrs, previewed_lrs);
    assert!(rows.iter().all(|r| r[2] == "0.9"), "momentum column");
    assert_eq!(image::image_dimensions(&png).unwrap(), (900, 500));

    // a run that ends with its cycle gets no warning; a train size below one batch is an error
    let whole = clrtrain(&[
        "schedule",
        "--train-size",
        "20",
        "--batch-size",
        "6",
        "--step-size",
        "1",
        "--epochs",
        "4",
    ]);
    assert!(!stdout(&whole).contains("warning"), "{}", stdout(&whole));
    assert_fails(
        &["schedule", "--train-size", "5", "--batch-size", "6"],
        "gives no batch",
    );
}

#[test]
fn one_cycle_preview_ends_exactly_at_the_minimum_on_the_last_iteration() {
    let (_guard, tmp) = tempdir();
    let csv = tmp.join("one_cycle.csv");
    let out = clrtrain_ok(&[
        "schedule",
        "--method",
        "one_cycle",
        "--max-lr",
        "0.1",
        "--train-size",
        "640",
        "--batch-size",
        "64",
        "--epochs",
        "5",
        "--csv",
        &arg(&csv),
    ]);
    assert!(!stdout(&out).contains("warning"), "{}", stdout(&out));
    let lrs: Vec<f64> = csv_rows(&csv)
        .iter()
        .map(|r| r[1].parse().unwrap())
        .collect();
    assert_eq!(lrs.len(), 50);
    assert!((lrs[0] - 0.1 / 25.0).abs() < 1e-15);
    assert!(
        (lrs[14] - 0.1).abs() < 1e-12,
        "peak at 0.3 * 50 - 1 = 14: {}",
        lrs[14]
    );
    assert_eq!(lrs[49], 0.1 / 25.0 / 1e4);
    assert!(
        lrs.windows(2).skip(14).all(|w| w[1] <= w[0]),
        "annealing only goes down"
    );
}

#[test]
fn a_resumed_run_continues_exactly_where_the_checkpoint_left_off() {
    let (_guard, tmp) = tempdir();
    let data = data_folder(&tmp, CLASSES, 4, 1, 51);
    let data_arg = arg(&data);
    let run = |out: &Path, epochs: &str| {
        let out_arg = arg(out);
        clrtrain_ok(&[
            "train",
            "--data",
            &data_arg,
            "--output",
            &out_arg,
            "--epochs",
            epochs,
            "--batch-size",
            "5",
            "--step-size",
            "2",
            "--method",
            "triangular2",
            "--cycle-momentum",
            "--backend",
            "flex",
            "--seed",
            "8",
        ]);
    };
    // uninterrupted: 4 epochs of 3 iterations
    let whole = tmp.join("whole");
    run(&whole, "4");
    // interrupted after epoch 2 (iteration 6), resumed for 2 more
    let parts = tmp.join("parts");
    run(&parts, "2");
    assert!(parts.join("checkpoints/epoch-0002/state.json").is_file());
    let resumed = clrtrain_ok(&["train", "--resume", &arg(&parts), "--epochs", "4"]);
    assert!(
        stdout(&resumed).contains("resuming after epoch 2 (iteration 6)"),
        "{}",
        stdout(&resumed)
    );

    // identical learning rates and momenta, iteration by iteration
    let lrs = |dir: &Path| csv_rows(&dir.join("lr.csv"));
    assert_eq!(lrs(&whole).len(), 12);
    assert_eq!(lrs(&parts), lrs(&whole));
    // and the same training: weights, momentum buffers and data order came back
    let metrics = |dir: &Path| -> Vec<Vec<String>> {
        csv_rows(&dir.join("history.csv"))
            .into_iter()
            .map(|r| r[..5].to_vec())
            .collect()
    };
    assert_eq!(metrics(&parts), metrics(&whole));
    assert_eq!(
        std::fs::read_to_string(parts.join("predictions.csv")).unwrap(),
        std::fs::read_to_string(whole.join("predictions.csv")).unwrap()
    );

    // flags that would change the run are refused; so is a folder without a checkpoint
    assert_fails(
        &["train", "--resume", &arg(&parts), "--max-lr", "0.5"],
        "--max-lr cannot change on --resume",
    );
    assert_fails(
        &["train", "--resume", &arg(&tmp.join("nothing"))],
        "no checkpoint to resume from",
    );
    assert_fails(
        &["train", "--resume", &arg(&parts), "--epochs", "3"],
        "the run is already past training.epochs = 3 (4 epochs done)",
    );
    // another dataset (here: fewer images, so another mean image) is refused
    assert_fails(
        &["train", "--resume", &arg(&parts), "--train-per-class", "2"],
        "--train-per-class cannot change on --resume",
    );
    let other = tmp.join("other");
    write_image_folder(
        &other,
        &synthetic_set(CLASSES, 4, 99),
        &synthetic_set(CLASSES, 1, 52),
    );
    assert_fails(
        &[
            "train",
            "--resume",
            &arg(&parts),
            "--data",
            &arg(&other),
            "--epochs",
            "5",
        ],
        "is not the one the checkpoint was trained on",
    );
    // resuming a finished run only rewrites its results, identically
    clrtrain_ok(&["train", "--resume", &arg(&parts)]);
    assert_eq!(
        std::fs::read_to_string(parts.join("predictions.csv")).unwrap(),
        std::fs::read_to_string(whole.join("predictions.csv")).unwrap()
    );
}
