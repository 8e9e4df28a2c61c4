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
        assert_eq!(
            predictions_csv(&[1, 0], &[1, 1], &classes),
            "index,true_label,predicted_label,true_class,predicted_class\n0,1,1,b,b\n1,0,1,a,b\n"
        );
    }
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
