//! `clrtrain predict`: the top classes of a saved model for image files of any size, prepared
//! as in training (resized to the model's input, the training mean image subtracted).

use std::path::PathBuf;

use serde_json::{Value, json};

use clrtrain::Result;
use clrtrain::backend;
use clrtrain::data::{ImageSet, folder};
use clrtrain::inference;
use clrtrain::outputs::pretty_json;
use clrtrain::saved_model;

use crate::cli::PredictArgs;

/// Images per forward pass.
const BATCH: usize = 128;

/// The best classes for one image, most probable first.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub image: PathBuf,
    /// `(class, probability)`.
    pub top: Vec<(String, f64)>,
}

/// Run `clrtrain predict`: the `--top-k` most probable classes of each image, as text or JSON.
pub fn run(args: &PredictArgs) -> Result<()> {
    let path = saved_model::resolve(&args.model);
    let selected = backend::select(args.backend)?;
    let saved = saved_model::load(&path, &selected.device)?;
    let info = &saved.info;
    let mut set = ImageSet::empty(info.classes.clone());
    (set.height, set.width, set.channels) =
        (info.input.height, info.input.width, info.input.channels);
    for image in &args.images {
        set.push(&folder::decode(image)?, 0);
    }
    let probabilities = inference::probabilities(&saved.model, &set, &info.mean_image_hwc, BATCH);
    let predictions: Vec<Prediction> = args
        .images
        .iter()
        .zip(probabilities)
        .map(|(image, p)| Prediction {
            image: image.clone(),
            top: top_classes(&p, &info.classes, args.top_k),
        })
        .collect();
    if args.json {
        print!("{}", pretty_json(&to_json(&predictions))?);
    } else {
        print!("{}", to_text(&predictions));
    }
    Ok(())
}

/// The `k` largest probabilities with their class names, largest first (ties: lower index).
pub fn top_classes(probabilities: &[f64], classes: &[String], k: usize) -> Vec<(String, f64)> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| {
        probabilities[b]
            .total_cmp(&probabilities[a])
            .then(a.cmp(&b))
    });
    order
        .into_iter()
        .take(k)
        .map(|i| (classes[i].clone(), probabilities[i]))
        .collect()
}

/// Plain text: the image, then one `class  probability` line per class.
pub fn to_text(predictions: &[Prediction]) -> String {
    let mut out = String::new();
    for p in predictions {
        out += &format!("{}\n", p.image.display());
        let width = p
            .top
            .iter()
            .map(|(c, _)| c.chars().count())
            .max()
            .unwrap_or(0);
        for (class, probability) in &p.top {
            out += &format!("  {class:<width$}  {probability:.4}\n");
        }
    }
    out
}

/// JSON: an array of `{"image", "predictions": [{"class", "probability"}]}`.
pub fn to_json(predictions: &[Prediction]) -> Value {
    Value::Array(
        predictions
            .iter()
            .map(|p| {
                let top: Vec<Value> = p
                    .top
                    .iter()
                    .map(|(class, probability)| json!({"class": class, "probability": probability}))
                    .collect();
                json!({"image": p.image.display().to_string(), "predictions": top})
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_classes_are_sorted_and_cut() {
        let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let top = top_classes(&[0.1, 0.4, 0.1, 0.4], &names, 3);
        assert_eq!(
            top,
            vec![("b".into(), 0.4), ("d".into(), 0.4), ("a".into(), 0.1)]
        );
        assert_eq!(top_classes(&[0.3, 0.7], &names[..2], 5).len(), 2);
        let p = Prediction {
            image: "x.png".into(),
            top: vec![("cat".into(), 0.75), ("bird".into(), 0.25)],
        };
        assert_eq!(
            to_text(std::slice::from_ref(&p)),
            "x.png\n  cat   0.7500\n  bird  0.2500\n"
        );
        assert_eq!(to_json(&[p])[0]["predictions"][1]["class"], "bird");
    }
}
