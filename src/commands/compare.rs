//! `clrtrain compare`: finished or interrupted runs side by side — which policy won, in one
//! picture (`comparison.png`) and one table (`comparison.csv`, and on the terminal, best run
//! first). Every run folder is read before anything is written, so a folder that is not a run
//! stops the command with nothing half-written.

use clrtrain::Result;
use clrtrain::comparison::{self, Row, RunRecord};
use clrtrain::console::Console;
use clrtrain::outputs::{self, OutputDir};
use clrtrain::plot::{self, RunCurves};

use crate::cli::CompareArgs;

/// Run `clrtrain compare`.
pub fn run(args: &CompareArgs) -> Result<()> {
    let console = Console::new(args.quiet);
    let runs = args
        .runs
        .iter()
        .map(|dir| RunRecord::read(dir))
        .collect::<Result<Vec<_>>>()?;
    for warning in comparison::mismatches(&runs) {
        console.warn(&warning);
    }
    let rows = comparison::ranked(runs.iter().map(Row::new).collect());
    let out = OutputDir::create(&args.output)?;
    out.write(outputs::COMPARISON_CSV, &comparison::to_csv(&rows))?;
    let labels: Vec<String> = runs.iter().map(RunRecord::label).collect();
    let curves: Vec<RunCurves> = runs
        .iter()
        .zip(&labels)
        .map(|(run, label)| RunCurves {
            label,
            val_accuracy: run
                .epochs
                .iter()
                .map(|e| (e.epoch as f64, e.val_accuracy))
                .collect(),
            val_loss: run
                .epochs
                .iter()
                .map(|e| (e.epoch as f64, e.val_loss))
                .collect(),
            lrs: &run.lrs,
        })
        .collect();
    out.write_with(outputs::COMPARISON_PNG, |p| {
        plot::plot_comparison(&curves, p)
    })?;
    print!("{}", comparison::to_text(&rows));
    console.say(&format!("outputs written to {}", out.dir().display()));
    Ok(())
}
