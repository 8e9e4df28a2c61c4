//! Classification report in scikit-learn's layout (`classification_report`): per-class
//! precision, recall, F1 and support, then accuracy, macro and weighted averages. A class that
//! is never predicted gets precision 0 (scikit-learn's `zero_division` default), likewise recall
//! for a class with no true examples.

use serde_json::{Map, Value, json};

/// Precision, recall, F1 and support of one class or one average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationReport {
    /// Class names with their metrics, in label order.
    pub classes: Vec<(String, Metrics)>,
    pub accuracy: f64,
    pub macro_avg: Metrics,
    pub weighted_avg: Metrics,
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

impl ClassificationReport {
    /// Build the report from true and predicted labels (indices into `names`).
    pub fn new(y_true: &[usize], y_pred: &[usize], names: &[String]) -> Self {
        assert_eq!(y_true.len(), y_pred.len(), "one prediction per example");
        let k = names.len();
        let (mut tp, mut predicted, mut support) = (vec![0; k], vec![0; k], vec![0; k]);
        for (&t, &p) in y_true.iter().zip(y_pred) {
            support[t] += 1;
            predicted[p] += 1;
            if t == p {
                tp[t] += 1;
            }
        }
        let classes: Vec<(String, Metrics)> = (0..k)
            .map(|c| {
                let precision = ratio(tp[c], predicted[c]);
                let recall = ratio(tp[c], support[c]);
                let m = Metrics {
                    precision,
                    recall,
                    f1: f1(precision, recall),
                    support: support[c],
                };
                (names[c].clone(), m)
            })
            .collect();
        let total = y_true.len();
        let average = |weight: &dyn Fn(&Metrics) -> f64| {
            let weights: f64 = classes.iter().map(|(_, m)| weight(m)).sum();
            let mean = |field: fn(&Metrics) -> f64| {
                let sum: f64 = classes.iter().map(|(_, m)| weight(m) * field(m)).sum();
                if weights == 0.0 { 0.0 } else { sum / weights }
            };
            Metrics {
                precision: mean(|m| m.precision),
                recall: mean(|m| m.recall),
                f1: mean(|m| m.f1),
                support: total,
            }
        };
        Self {
            accuracy: ratio(tp.iter().sum(), total),
            macro_avg: average(&|_| 1.0),
            weighted_avg: average(&|m| m.support as f64),
            classes,
        }
    }

    /// Text exactly as scikit-learn prints it with `digits=2`.
    pub fn to_text(&self) -> String {
        let width = self
            .classes
            .iter()
            .map(|(name, _)| name.chars().count())
            .chain(["weighted avg".len()])
            .max()
            .unwrap_or(0);
        let row = |name: &str, m: &Metrics| {
            format!(
                "{name:>width$}  {:>9.2} {:>9.2} {:>9.2} {:>9}\n",
                m.precision, m.recall, m.f1, m.support
            )
        };
        let mut out = format!(
            "{:>width$}  {:>9} {:>9} {:>9} {:>9}\n\n",
            "", "precision", "recall", "f1-score", "support"
        );
        for (name, m) in &self.classes {
            out += &row(name, m);
        }
        out += "\n";
        out += &format!(
            "{:>width$}  {:>9} {:>9} {:>9.2} {:>9}\n",
            "accuracy", "", "", self.accuracy, self.macro_avg.support
        );
        out += &row("macro avg", &self.macro_avg);
        out += &row("weighted avg", &self.weighted_avg);
        out
    }

    /// JSON shaped like scikit-learn's `output_dict=True`.
    pub fn to_json(&self) -> Value {
        let metrics = |m: &Metrics| json!({"precision": m.precision, "recall": m.recall, "f1-score": m.f1, "support": m.support});
        let mut map = Map::new();
        for (name, m) in &self.classes {
            map.insert(name.clone(), metrics(m));
        }
        map.insert("accuracy".into(), json!(self.accuracy));
        map.insert("macro avg".into(), metrics(&self.macro_avg));
        map.insert("weighted avg".into(), metrics(&self.weighted_avg));
        Value::Object(map)
    }
}

/// Counts of (true class, predicted class) pairs: row = true class, column = predicted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    pub counts: Vec<Vec<usize>>,
}

impl ConfusionMatrix {
    /// The matrix of `classes` classes for true and predicted labels.
    pub fn new(y_true: &[usize], y_pred: &[usize], classes: usize) -> Self {
        let mut counts = vec![vec![0; classes]; classes];
        for (&t, &p) in y_true.iter().zip(y_pred) {
            counts[t][p] += 1;
        }
        Self { counts }
    }

    /// Each row divided by its sum (the class's recall on the diagonal); empty rows stay 0.
    pub fn row_normalised(&self) -> Vec<Vec<f64>> {
        self.counts
            .iter()
            .map(|row| {
                let total: usize = row.iter().sum();
                row.iter().map(|&c| ratio(c, total)).collect()
            })
            .collect()
    }

    /// CSV: a header of predicted classes, then one row of counts per true class.
    pub fn to_csv(&self, names: &[String]) -> String {
        let mut out = format!("true/predicted,{}\n", names.join(","));
        for (name, row) in names.iter().zip(&self.counts) {
            let cells: Vec<String> = row.iter().map(usize::to_string).collect();
            out += &format!("{name},{}\n", cells.join(","));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_matrix_counts_pairs_and_normalises_rows() {
        // the example below: cat cat cat dog dog bird -> cat cat dog dog bird bird
        let m = ConfusionMatrix::new(&[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2], 3);
        assert_eq!(m.counts, vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]);
        let n = m.row_normalised();
        close(n[0][0], 2.0 / 3.0);
        close(n[1][2], 0.5);
        assert_eq!(n[2], vec![0.0, 0.0, 1.0]);
        assert_eq!(
            m.to_csv(&names()),
            "true/predicted,cat,dog,bird\ncat,2,1,0\ndog,0,1,1\nbird,0,0,1\n"
        );
        let empty = ConfusionMatrix::new(&[0], &[0], 2);
        assert_eq!(empty.row_normalised()[1], vec![0.0, 0.0]);
    }

    fn names() -> Vec<String> {
        vec!["cat".into(), "dog".into(), "bird".into()]
    }

    // y_true: cat cat cat dog dog bird      y_pred: cat cat dog dog bird bird
    // cat:  tp 2, predicted 2, support 3 -> P 1,   R 2/3, F1 0.8
    // dog:  tp 1, predicted 2, support 2 -> P 1/2, R 1/2, F1 1/2
    // bird: tp 1, predicted 2, support 1 -> P 1/2, R 1,   F1 2/3
    // accuracy 4/6; macro P = 2/3, R = 13/18, F1 = (0.8 + 0.5 + 2/3)/3 = 59/90
    // weighted P = (3·1 + 2·0.5 + 0.5)/6 = 0.75, R = (2 + 1 + 1)/6 = 2/3,
    // F1 = (3·0.8 + 2·0.5 + 2/3)/6 = 61/90
    fn example() -> ClassificationReport {
        ClassificationReport::new(&[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2], &names())
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn metrics_match_the_hand_computation() {
        let r = example();
        let cat = r.classes[0].1;
        close(cat.precision, 1.0);
        close(cat.recall, 2.0 / 3.0);
        close(cat.f1, 0.8);
        assert_eq!(cat.support, 3);
        close(r.classes[2].1.f1, 2.0 / 3.0);
        close(r.accuracy, 4.0 / 6.0);
        close(r.macro_avg.precision, 2.0 / 3.0);
        close(r.macro_avg.recall, 13.0 / 18.0);
        close(r.macro_avg.f1, 59.0 / 90.0);
        close(r.weighted_avg.precision, 0.75);
        close(r.weighted_avg.recall, 2.0 / 3.0);
        close(r.weighted_avg.f1, 61.0 / 90.0);
        assert_eq!(r.weighted_avg.support, 6);
    }

    #[test]
    fn text_has_scikit_learns_layout() {
        let expected = "              precision    recall  f1-score   support

         cat       1.00      0.67      0.80         3
         dog       0.50      0.50      0.50         2
        bird       0.50      1.00      0.67         1

    accuracy                           0.67         6
   macro avg       0.67      0.72      0.66         6
weighted avg       0.75      0.67      0.68         6
";
        assert_eq!(example().to_text(), expected);
    }

    #[test]
    fn never_predicted_class_has_zero_precision() {
        let r = ClassificationReport::new(&[0, 1, 2], &[0, 0, 0], &names());
        assert_eq!(r.classes[1].1.precision, 0.0);
        assert_eq!(r.classes[1].1.f1, 0.0);
        close(r.classes[0].1.precision, 1.0 / 3.0);
    }

    #[test]
    fn json_keeps_class_order_and_sklearn_keys() {
        let v = example().to_json();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "cat",
                "dog",
                "bird",
                "accuracy",
                "macro avg",
                "weighted avg"
            ]
        );
        assert_eq!(v["dog"]["f1-score"], 0.5);
        assert_eq!(v["weighted avg"]["support"], 6);
    }
}
