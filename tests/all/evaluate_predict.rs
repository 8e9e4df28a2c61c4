//! `evaluate` and `predict` on the model a training run saved.

use std::path::Path;

use crate::support::*;

/// `evaluate` and `predict` with the model a run in `out` saved, on the dataset in `data`.
pub fn evaluate_and_predict(data: &Path, out: &Path) {
    // evaluate reproduces the run's own evaluation, from the run folder or a checkpoint
    let eval_dir = out.join("eval");
    Clrtrain::new("evaluate")
        .flag("--model", out)
        .flag("--data", data)
        .flag("--output", &eval_dir)
        .ok();
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
    Clrtrain::new("evaluate")
        .flag("--model", &checkpoint)
        .flag("--data", data)
        .arg("-q")
        .ok();
    assert_eq!(
        std::fs::read_to_string(checkpoint.join("evaluation/predictions.csv")).unwrap(),
        std::fs::read_to_string(out.join("predictions.csv")).unwrap()
    );

    // predict: a test image as saved, and the same image enlarged to 64×48
    let predictions = csv_rows(&out.join("predictions.csv"));
    let first = data.join("test/class0/0000.png");
    let big = tmp_image(out, &first);
    let json = Clrtrain::new("predict")
        .flag("--model", out)
        .args(&["--json", "--top-k", "2"])
        .arg(&first)
        .arg(&big)
        .ok();
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
    let text = stdout(&Clrtrain::new("predict").flag("--model", out).arg(&big).ok());
    assert!(
        text.starts_with(&arg(&big)) && text.lines().count() == 4,
        "{text}"
    );

    // files that are not models, truncated models: one clear message each
    Clrtrain::new("predict")
        .flag("--model", out.join("lr.png"))
        .arg(&first)
        .fails("not a clrtrain model file");
    let model = std::fs::read(out.join("model.clrtrain")).unwrap();
    let cut = out.join("cut.clrtrain");
    std::fs::write(&cut, &model[..model.len() / 3]).unwrap();
    Clrtrain::new("evaluate")
        .flag("--model", &cut)
        .flag("--data", data)
        .fails("truncated: the file ends inside its weights");
    Clrtrain::new("predict")
        .flag("--model", out)
        .arg(out.join("history.csv"))
        .fails("cannot decode image");
    Clrtrain::new("predict")
        .flag("--model", out)
        .args(&["--top-k", "0"])
        .arg(&first)
        .fails("--top-k");
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
