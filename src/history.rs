//! What a run records: one row per epoch and one learning rate per iteration, as plain numbers.

use serde::{Deserialize, Serialize};

/// Metrics of one epoch (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    /// Wall-clock seconds of training plus evaluation.
    pub seconds: f64,
}

/// Everything recorded so far in a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One record per finished epoch.
    pub epochs: Vec<EpochRecord>,
    /// The learning rate of every trained batch, iteration 0 first.
    pub lrs: Vec<f64>,
    /// The SGD momentum of every trained batch.
    pub momenta: Vec<f64>,
}

/// Header of `history.csv`.
pub const HISTORY_HEADER: &str = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds";

/// `history.csv` content.
pub fn history_csv(epochs: &[EpochRecord]) -> String {
    let mut out = format!("{HISTORY_HEADER}\n");
    for e in epochs {
        out += &format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.3}\n",
            e.epoch, e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy, e.seconds
        );
    }
    out
}

/// `lr.csv` content: the learning rate and momentum each batch was trained with (the same
/// layout as `clrtrain schedule --csv`).
pub fn lr_csv(lrs: &[f64], momenta: &[f64]) -> String {
    let mut out = String::from("iteration,lr,momentum\n");
    for (it, (lr, momentum)) in lrs.iter().zip(momenta).enumerate() {
        out += &format!("{it},{lr:e},{momentum}\n");
    }
    out
}

/// The momenta, if they change over the run (then they are worth a plot of their own).
pub fn cycling(momenta: &[f64]) -> Option<&[f64]> {
    momenta.iter().any(|&m| m != momenta[0]).then_some(momenta)
}

/// `predictions.csv` content: true and predicted class per test example.
pub fn predictions_csv(y_true: &[usize], y_pred: &[usize], classes: &[String]) -> String {
    let mut out = String::from("index,true_label,predicted_label,true_class,predicted_class\n");
    for (i, (&t, &p)) in y_true.iter().zip(y_pred).enumerate() {
        out += &format!("{i},{t},{p},{},{}\n", classes[t], classes[p]);
    }
    out
}

/// The rows of a `history.csv` written by [`history_csv`]; the message says what is wrong.
pub fn parse_history_csv(text: &str) -> std::result::Result<Vec<EpochRecord>, String> {
    let mut lines = text.lines();
    if lines.next() != Some(HISTORY_HEADER) {
        return Err(format!("the first line is not `{HISTORY_HEADER}`"));
    }
    lines
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(k, line)| {
            let v = numbers(line, 6).map_err(|e| format!("line {}: {e}", k + 2))?;
            Ok(EpochRecord {
                epoch: v[0] as usize,
                train_loss: v[1],
                train_accuracy: v[2],
                val_loss: v[3],
                val_accuracy: v[4],
                seconds: v[5],
            })
        })
        .collect()
}

/// The learning rates of an `lr.csv` written by [`lr_csv`].
pub fn parse_lr_csv(text: &str) -> std::result::Result<Vec<f64>, String> {
    let mut lines = text.lines();
    if lines
        .next()
        .is_none_or(|header| !header.starts_with("iteration,lr"))
    {
        return Err("the first line is not `iteration,lr,momentum`".into());
    }
    lines
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(k, line)| {
            numbers(line, 3)
                .map(|v| v[1])
                .map_err(|e| format!("line {}: {e}", k + 2))
        })
        .collect()
}

/// Exactly `n` comma-separated numbers.
fn numbers(line: &str, n: usize) -> std::result::Result<Vec<f64>, String> {
    let values: Vec<f64> = line
        .split(',')
        .map(|field| {
            field
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("'{field}' is not a number"))
        })
        .collect::<std::result::Result<_, _>>()?;
    if values.len() != n {
        return Err(format!("{} fields, expected {n}", values.len()));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_are_complete_and_exact() {
        let rows = [EpochRecord {
            epoch: 1,
            train_loss: 2.5,
            train_accuracy: 0.125,
            val_loss: 2.25,
            val_accuracy: 0.25,
            seconds: 3.0,
        }];
        assert_eq!(
            history_csv(&rows),
            format!("{HISTORY_HEADER}\n1,2.500000,0.125000,2.250000,0.250000,3.000\n")
        );
        let lr = lr_csv(&[1e-7, 0.005], &[0.95, 0.9]);
        assert_eq!(lr, "iteration,lr,momentum\n0,1e-7,0.95\n1,5e-3,0.9\n");
        assert_eq!(
            lr.lines()
                .nth(2)
                .unwrap()
                .split(',')
                .nth(1)
                .unwrap()
                .parse::<f64>()
                .unwrap(),
            0.005
        );
        let classes = vec!["a".to_string(), "b".to_string()];
        assert_eq!(parse_history_csv(&history_csv(&rows)), Ok(rows.to_vec()));
        assert_eq!(parse_lr_csv(&lr), Ok(vec![1e-7, 0.005]));
        assert!(parse_history_csv("epoch,x\n").is_err());
        assert!(
            parse_history_csv(&format!("{HISTORY_HEADER}\n1,2,3\n"))
                .unwrap_err()
                .contains("line 2")
        );
        assert_eq!(
            predictions_csv(&[1, 0], &[1, 1], &classes),
            "index,true_label,predicted_label,true_class,predicted_class\n0,1,1,b,b\n1,0,1,a,b\n"
        );
    }
}
