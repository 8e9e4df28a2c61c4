//! `clrtrain evaluate`: a saved model on a labelled test set — the classification report,
//! predictions and the confusion matrix (CSV and picture), the same files `train` writes.

use std::path::Path;

use clrtrain::Result;
use clrtrain::backend;
use clrtrain::console::Console;
use clrtrain::data::{self, DataConfig};
use clrtrain::inference;
use clrtrain::outputs::{self, OutputDir};
use clrtrain::saved_model;

use crate::cli::EvaluateArgs;

/// Run `clrtrain evaluate`.
pub fn run(args: &EvaluateArgs) -> Result<()> {
    let console = Console::new(args.quiet);
    let data_config = DataConfig {
        path: args.data.clone(),
        download: !args.no_download,
        test_per_class: args.test_per_class,
        ..DataConfig::default()
    };
    let path = saved_model::resolve(&args.model);
    let selected = backend::select(args.backend)?;
    let saved = saved_model::load(&path, &selected.device)?;
    let test = data::load_test(&data_config, &saved.info.classes, console)?;
    let out_dir = args.output.clone().unwrap_or_else(|| {
        let folder = path.parent().unwrap_or(Path::new("."));
        folder.join(outputs::EVALUATION)
    });
    let out = OutputDir::create(&out_dir)?;
    console.say(&format!("backend: {}", selected.description));
    let classes = saved.info.classes.len();
    console.say(&format!("model: {} ({classes} classes)", path.display()));
    console.say(&format!(
        "evaluating {} test images from {}…",
        test.len(),
        args.data.display()
    ));
    let mean = &saved.info.mean_image_hwc;
    let eval = inference::evaluate(&saved.model, &test, mean, args.batch_size.max(1));
    let report = out.write_evaluation(&test, &eval.predictions)?;
    console.say(&format!("\n{}", report.to_text()));
    let dir = out.dir().display();
    console.say(&format!("loss {:.4}; outputs written to {dir}", eval.loss));
    Ok(())
}
