//! Batches as flat `f32` buffers (N × C × H × W) ready for the model. Training batches are made
//! on a separate thread and handed over through a bounded channel, so the next batch is being
//! prepared while the model trains on the current one.

use std::sync::Arc;
use std::thread;

use crossbeam_channel::{Receiver, bounded};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::augment::{self, Augment, Transform};
use super::image_set::ImageSet;

/// Batches prepared ahead of the training loop.
const PREFETCH: usize = 4;

/// One batch of preprocessed images.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `len · channels · height · width` values, NCHW.
    pub images: Vec<f32>,
    /// Class index per image.
    pub labels: Vec<i64>,
    /// `[len, channels, height, width]`.
    pub shape: [usize; 4],
}

impl Batch {
    /// Images in the batch.
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }
}

/// Build a batch of `indices` from `set`, each image transformed by the next `transform()`.
pub fn assemble(
    set: &ImageSet,
    mean: &[f32],
    indices: &[usize],
    mut transform: impl FnMut() -> Transform,
) -> Batch {
    let dims = (set.height, set.width, set.channels);
    let per_image = set.image_len();
    let mut images = vec![0.0f32; indices.len() * per_image];
    for (out, &i) in images.chunks_exact_mut(per_image).zip(indices) {
        augment::apply(transform(), set.image(i), mean, dims, out);
    }
    Batch {
        images,
        labels: indices.iter().map(|&i| set.labels[i] as i64).collect(),
        shape: [indices.len(), set.channels, set.height, set.width],
    }
}

/// Seeded RNG for one epoch: the same `(seed, epoch)` always shuffles and augments alike.
pub fn epoch_rng(seed: u64, epoch: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Iterations per epoch: the last partial batch is dropped.
pub fn batches_per_epoch(train_size: usize, batch_size: usize) -> usize {
    train_size / batch_size
}

/// One epoch of training batches: which, and how they are made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPlan {
    /// The run's seed; with `epoch` it fixes the shuffle and every augmentation draw.
    pub seed: u64,
    /// 0-based.
    pub epoch: usize,
    pub batch_size: usize,
    pub augment: Augment,
    /// Batches at the start of the epoch that are drawn but not built (already trained).
    pub skip: usize,
}

/// Start producing one epoch of shuffled, augmented training batches (last partial batch
/// dropped), from batch `plan.skip` on: the batches before it are drawn but not built, so a run
/// resumed mid-epoch sees what an uninterrupted one would. The producer stops early when the
/// receiver is dropped.
pub fn spawn_train_epoch(
    set: Arc<ImageSet>,
    mean: Arc<Vec<f32>>,
    plan: EpochPlan,
) -> Receiver<Batch> {
    let (sender, receiver) = bounded(PREFETCH);
    let EpochPlan {
        seed,
        epoch,
        batch_size,
        augment,
        skip,
    } = plan;
    thread::spawn(move || {
        let mut rng = epoch_rng(seed, epoch);
        let mut order: Vec<usize> = (0..set.len()).collect();
        order.shuffle(&mut rng);
        for _ in 0..skip * batch_size {
            augment.draw(&mut rng);
        }
        for indices in order.chunks_exact(batch_size).skip(skip) {
            let batch = assemble(&set, &mean, indices, || augment.draw(&mut rng));
            if sender.send(batch).is_err() {
                return;
            }
        }
    });
    receiver
}

/// All of `set` in order, without augmentation, the last batch possibly smaller.
pub fn eval_batches<'a>(
    set: &'a ImageSet,
    mean: &'a [f32],
    batch_size: usize,
) -> impl Iterator<Item = Batch> + 'a {
    let indices: Vec<usize> = (0..set.len()).collect();
    (0..set.len().div_ceil(batch_size)).map(move |b| {
        let chunk = &indices[b * batch_size..((b + 1) * batch_size).min(set.len())];
        assemble(set, mean, chunk, || Transform::IDENTITY)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(
        augment: Augment,
        batch_size: usize,
        seed: u64,
        epoch: usize,
        skip: usize,
    ) -> EpochPlan {
        EpochPlan {
            seed,
            epoch,
            batch_size,
            augment,
            skip,
        }
    }

    fn tiny_set(n: usize) -> ImageSet {
        let mut set = ImageSet::empty(vec!["a".into(), "b".into()]);
        set.height = 2;
        set.width = 2;
        for i in 0..n {
            set.push(&[i as u8; 12], (i % 2) as u32);
        }
        set
    }

    #[test]
    fn train_epoch_drops_the_partial_batch_and_covers_distinct_images() {
        let set = Arc::new(tiny_set(10));
        let mean = Arc::new(vec![0.0; 12]);
        let aug = Augment::new(0.0, false, 2, 2);
        let batches: Vec<Batch> = spawn_train_epoch(set, mean, plan(aug, 3, 1, 0, 0))
            .iter()
            .collect();
        assert_eq!(batches.len(), batches_per_epoch(10, 3));
        let mut seen: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.images.chunks(12).map(|img| img[0] as i64))
            .collect();
        for b in &batches {
            assert_eq!(b.shape, [3, 3, 2, 2]);
            for (img, &label) in b.images.chunks(12).zip(&b.labels) {
                assert_eq!(img[0] as i64 % 2, label, "label travels with its image");
            }
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 9);
    }

    #[test]
    fn epochs_are_reproducible_and_differ_from_each_other() {
        let set = Arc::new(tiny_set(20));
        let mean = Arc::new(vec![0.0; 12]);
        let aug = Augment::new(0.25, true, 2, 2);
        let run = |epoch| -> Vec<Batch> {
            spawn_train_epoch(set.clone(), mean.clone(), plan(aug, 4, 9, epoch, 0))
                .iter()
                .collect()
        };
        assert_eq!(run(0), run(0));
        assert_ne!(run(0), run(1));
        // resumed after 2 batches: the rest of the same epoch, augmentation included
        let rest: Vec<Batch> = spawn_train_epoch(set.clone(), mean.clone(), plan(aug, 4, 9, 1, 2))
            .iter()
            .collect();
        assert_eq!(rest, run(1)[2..]);
    }

    #[test]
    fn eval_keeps_order_and_the_last_partial_batch() {
        let set = tiny_set(5);
        let batches: Vec<Batch> = eval_batches(&set, &[1.0; 12], 2).collect();
        assert_eq!(
            batches.iter().map(Batch::len).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        assert_eq!(batches[2].labels, vec![0]);
        assert_eq!(batches[2].images[0], 3.0); // image 4 minus mean 1
    }
}
