//! `clrtrain bench` prints every figure, as one JSON object with --json.

use crate::support::*;

#[test]
fn bench_reports_every_figure() {
    let out = Clrtrain::new("bench")
        .args(&["--batch-size", "4", "--steps", "2", "--warmup", "1"])
        .args(&["--eval-batch-size", "4", "--json"])
        .ok();
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
    // what it was doing went to stderr, and --quiet silences it
    assert!(stderr(&out).contains("timing"), "{}", stderr(&out));
    let quiet = Clrtrain::new("bench")
        .args(&["--batch-size", "4", "--steps", "1", "--warmup", "0"])
        .args(&["--eval-batch-size", "4", "--quiet"])
        .ok();
    assert!(stderr(&quiet).is_empty(), "{}", stderr(&quiet));
    assert!(
        stdout(&quiet).contains("training step"),
        "{}",
        stdout(&quiet)
    );
}
