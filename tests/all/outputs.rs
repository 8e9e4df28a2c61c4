//! End-to-end training runs of the binary on tiny datasets in both formats, checking every
//! output file against the others and against independent definitions.

use std::path::Path;

use burn::tensor::Device;
use clrtrain::config::Config;
use clrtrain::console::Console;
use clrtrain::data::DataConfig;
use clrtrain::schedule::{Clr, Method};

use crate::evaluate_predict;
use crate::support::*;

pub const CLASSES: usize = 4;

/// Train 2 epochs of 4 batches of 8 on `data`, then check every output file.
fn train_and_check_outputs(data: &Path, out: &Path, method: Method) {
    let result = Clrtrain::train(data, out)
        .args(&["--epochs", "2", "--batch-size", "8", "--step-size", "1"])
        .args(&[
            "--base-lr",
            "1e-4",
            "--max-lr",
            "2e-2",
            "--method",
            method.name(),
        ])
        .args(&["--seed", "3"])
        .ok();
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
    let data = clrtrain::data::load(
        &DataConfig {
            path: data.to_path_buf(),
            download: false,
            ..Default::default()
        },
        Console::silent(),
    )
    .unwrap();
    let mean = clrtrain::data::mean::mean_image(&data.train);
    assert_eq!(saved.info.mean_image_hwc, mean);
    let eval = clrtrain::inference::evaluate(&saved.model, &data.test, &mean, 5);
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
    let loaded = clrtrain::data::load(
        &DataConfig {
            path: data.clone(),
            ..Default::default()
        },
        Console::silent(),
    )
    .unwrap();
    assert_eq!(loaded.train.len(), 33);
    std::fs::remove_file(data.join("train/class0/zzzz.jpg")).unwrap();
    train_and_check_outputs(&data, &tmp.join("out"), Method::Triangular);
    evaluate_predict::evaluate_and_predict(&data, &tmp.join("out"));
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
