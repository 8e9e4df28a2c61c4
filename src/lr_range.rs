//! The learning-rate range test (Smith 2017, §3.3; fastai's `lr_find`) as plain numbers: the LR
//! sweep, the loss smoothing, when to stop, and the suggested bounds. `clrtrain find-lr` runs it
//! on the real model; here it takes any `step(iteration, lr) -> loss`.

crate::named_enum! {
    /// How the learning rate grows from `start_lr` to `end_lr`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Sweep("mode") {
        /// Geometric growth (fastai's default): the same number of steps per decade.
        Exp = "exp",
        /// Linear growth, as in Smith's paper.
        Linear = "linear",
    }
}

/// Settings of one range test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeTest {
    pub start_lr: f64,
    pub end_lr: f64,
    /// Iterations of the full sweep (the last one trains at `end_lr`).
    pub iterations: usize,
    pub sweep: Sweep,
    /// Smoothing factor of the loss's exponential moving average.
    pub beta: f64,
    /// Stop once the smoothed loss exceeds this multiple of the best smoothed loss.
    pub stop_factor: f64,
}

impl Default for RangeTest {
    fn default() -> Self {
        Self {
            start_lr: 1e-7,
            end_lr: 10.0,
            iterations: 100,
            sweep: Sweep::Exp,
            beta: 0.98,
            stop_factor: 4.0,
        }
    }
}

/// One iteration of the test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub iteration: usize,
    pub lr: f64,
    pub loss: f64,
    pub smoothed: f64,
}

/// Why the test ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// The sweep reached `end_lr`.
    Completed,
    /// The smoothed loss exceeded `stop_factor` × the best one at this iteration.
    Diverged { iteration: usize },
    /// The loss was NaN or infinite at this iteration (not recorded).
    NonFinite { iteration: usize },
}

/// The recorded curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub points: Vec<Point>,
    pub stop: Stop,
}

impl RangeTest {
    /// Reject settings the sweep cannot follow.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.start_lr > 0.0 && self.start_lr < self.end_lr && self.end_lr.is_finite()) {
            return Err(format!(
                "--start-lr {} must be positive and smaller than --end-lr {}",
                self.start_lr, self.end_lr
            ));
        }
        if self.iterations < 2 {
            return Err(format!(
                "--iterations {} must be at least 2",
                self.iterations
            ));
        }
        if !(0.0..1.0).contains(&self.beta) || self.stop_factor <= 1.0 {
            return Err("smoothing beta must be in [0, 1) and the stop factor above 1".into());
        }
        Ok(())
    }

    /// The learning rate of iteration `it` (0-based).
    pub fn lr(&self, it: usize) -> f64 {
        let t = it as f64 / (self.iterations - 1) as f64;
        match self.sweep {
            Sweep::Exp => self.start_lr * (self.end_lr / self.start_lr).powf(t),
            Sweep::Linear => self.start_lr + (self.end_lr - self.start_lr) * t,
        }
    }

    /// Run the sweep: `step(iteration, lr)` trains one batch at `lr` and returns its loss.
    pub fn run<E>(&self, mut step: impl FnMut(usize, f64) -> Result<f64, E>) -> Result<Curve, E> {
        let (mut average, mut best) = (0.0, f64::INFINITY);
        let mut points = Vec::with_capacity(self.iterations);
        for it in 0..self.iterations {
            let lr = self.lr(it);
            let loss = step(it, lr)?;
            if !loss.is_finite() {
                return Ok(Curve {
                    points,
                    stop: Stop::NonFinite { iteration: it },
                });
            }
            // exponential moving average with bias correction
            average = self.beta * average + (1.0 - self.beta) * loss;
            let smoothed = average / (1.0 - self.beta.powi(it as i32 + 1));
            points.push(Point {
                iteration: it,
                lr,
                loss,
                smoothed,
            });
            if it > 0 && smoothed > self.stop_factor * best {
                return Ok(Curve {
                    points,
                    stop: Stop::Diverged { iteration: it },
                });
            }
            best = best.min(smoothed);
        }
        Ok(Curve {
            points,
            stop: Stop::Completed,
        })
    }
}

/// The bounds each rule suggests (`None` when the curve is too short for it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Suggestions {
    /// Where the smoothed loss falls fastest per decade of LR (measured across a twentieth of the
    /// curve, so one noisy step cannot win).
    pub steepest: Option<f64>,
    /// A tenth of the LR at the lowest smoothed loss.
    pub minimum_div_10: Option<f64>,
    /// fastai's "valley": two thirds down the longest stretch of falling loss.
    pub valley: Option<f64>,
}

/// The points the rules look at: fastai skips the first tenth (start-up noise) and the last 5
/// (the blow-up that ended the test).
fn trimmed(points: &[Point]) -> &[Point] {
    let skip_start = points.len() / 10;
    let skip_end = if points.len() > skip_start + 10 { 5 } else { 0 };
    &points[skip_start..points.len() - skip_end]
}

/// Apply the three rules to a curve.
pub fn suggest(curve: &Curve) -> Suggestions {
    let points = trimmed(&curve.points);
    if points.len() < 3 {
        return Suggestions {
            steepest: None,
            minimum_div_10: None,
            valley: None,
        };
    }
    Suggestions {
        steepest: steepest(points),
        minimum_div_10: points
            .iter()
            .min_by(|a, b| a.smoothed.total_cmp(&b.smoothed))
            .map(|p| p.lr / 10.0),
        valley: Some(valley(points)),
    }
}

fn steepest(points: &[Point]) -> Option<f64> {
    let span = (points.len() / 20).max(1);
    points
        .windows(span + 1)
        .map(|w| {
            let (first, last) = (w[0], w[span]);
            let slope = (last.smoothed - first.smoothed) / (last.lr.ln() - first.lr.ln());
            (slope, w[span / 2].lr)
        })
        .filter(|(slope, _)| slope.is_finite())
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, lr)| lr)
}

/// fastai's valley rule, index arithmetic included: the longest decreasing subsequence of the
/// loss, then the point about half-way along it.
fn valley(points: &[Point]) -> f64 {
    let n = points.len();
    let mut run = vec![1usize; n];
    let (mut start, mut end) = (0isize, 0usize);
    for i in 1..n {
        for j in 0..i {
            if points[i].smoothed < points[j].smoothed && run[i] < run[j] + 1 {
                run[i] = run[j] + 1;
            }
            if run[end] < run[i] {
                end = i;
                start = end as isize - run[end] as isize;
            }
        }
    }
    let sections = (end as isize - start) as f64 / 3.0;
    let index = start + sections as isize + (sections / 2.0) as isize;
    points[index.clamp(0, n as isize - 1) as usize].lr
}

impl Suggestions {
    /// The rules that gave a suggestion, with their names, in a fixed order.
    pub fn named(&self) -> Vec<(&'static str, f64)> {
        [
            ("steepest", self.steepest),
            ("minimum/10", self.minimum_div_10),
            ("valley", self.valley),
        ]
        .into_iter()
        .filter_map(|(name, lr)| lr.map(|lr| (name, lr)))
        .collect()
    }
}

/// The recommended `(base_lr, max_lr)` and why.
pub fn recommend(s: &Suggestions) -> Option<(f64, f64, String)> {
    let mut found = s.named();
    if found.is_empty() {
        return None;
    }
    found.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (rule, max_lr) = found[found.len() / 2];
    let why = format!(
        "max_lr = {max_lr:.3e}, the median of the {} rules ({rule}): each rule alone can be misled by \
         early spikes or a noisy curve; base_lr = max_lr / 4, Smith's recommended ratio of 3 to 4",
        found.len()
    );
    Some((max_lr / 4.0, max_lr, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(iterations: usize) -> RangeTest {
        RangeTest {
            start_lr: 1e-4,
            end_lr: 1.0,
            iterations,
            ..Default::default()
        }
    }

    #[test]
    fn sweeps_hit_both_ends() {
        let t = test(5);
        assert_eq!(t.lr(0), 1e-4);
        assert!((t.lr(4) - 1.0).abs() < 1e-12);
        assert!((t.lr(2) - 1e-2).abs() < 1e-12); // geometric middle
        let lin = RangeTest {
            sweep: Sweep::Linear,
            ..t
        };
        assert!((lin.lr(2) - (1e-4 + 1.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn smoothing_is_bias_corrected() {
        // a constant loss stays exactly that loss from the first iteration on
        let curve = test(10).run::<()>(|_, _| Ok(2.5)).unwrap();
        assert!(
            curve
                .points
                .iter()
                .all(|p| (p.smoothed - 2.5).abs() < 1e-12)
        );
        assert_eq!(curve.stop, Stop::Completed);
        // first two points by hand: beta 0.98
        let losses = [1.0, 3.0];
        let curve = test(2).run::<()>(|it, _| Ok(losses[it])).unwrap();
        assert!(
            (curve.points[1].smoothed - (0.98 * 0.02 + 0.02 * 3.0) / (1.0 - 0.98f64.powi(2))).abs()
                < 1e-12
        );
    }

    #[test]
    fn stops_early_on_divergence_and_on_nan() {
        let t = RangeTest {
            beta: 0.0,
            ..test(50)
        };
        let curve = t
            .run::<()>(|it, _| Ok(if it < 10 { 1.0 } else { 5.0 }))
            .unwrap();
        assert_eq!(curve.stop, Stop::Diverged { iteration: 10 });
        assert_eq!(curve.points.len(), 11);
        let curve = t
            .run::<()>(|it, _| Ok(if it == 7 { f64::NAN } else { 1.0 }))
            .unwrap();
        assert_eq!(curve.stop, Stop::NonFinite { iteration: 7 });
        assert_eq!(curve.points.len(), 7);
    }

    fn curve_from(smoothed: &[f64]) -> Vec<Point> {
        smoothed
            .iter()
            .enumerate()
            .map(|(i, &s)| Point {
                iteration: i,
                lr: 10f64.powi(i as i32),
                loss: s,
                smoothed: s,
            })
            .collect()
    }

    #[test]
    fn steepest_and_valley_on_a_hand_made_curve() {
        //           lr: 1   10  100 1e3 1e4 1e5 1e6 1e7
        let points = curve_from(&[5.0, 4.9, 4.0, 3.8, 3.0, 2.9, 2.8, 6.0]);
        // the biggest fall per decade is 4.9 -> 4.0 (0.9), starting at lr 10
        assert_eq!(steepest(&points), Some(10.0));
        // longest decreasing run ends at index 6 with 7 points: fastai's start = 6 - 7 = -1,
        // sections = 7/3, index = -1 + 2 + 1 = 2
        assert_eq!(valley(&points), 100.0);
        let s = suggest(&Curve {
            points,
            stop: Stop::Completed,
        });
        assert_eq!(s.minimum_div_10, Some(1e5));
        let (base, max, why) = recommend(&s).unwrap();
        assert_eq!(max, 100.0); // median of 10, 100, 1e5
        assert_eq!(base, 25.0);
        assert!(why.contains("valley"));
    }

    /// Least squares `y = 2·x1 − 3·x2 + 0.5 + noise` with `x` uniform in [−1, 1]², trained by
    /// mini-batch SGD (batch 16) from zero weights: a problem whose good LRs can be found by brute
    /// force.
    struct LinearProblem {
        xs: Vec<[f64; 3]>,
        ys: Vec<f64>,
        w: [f64; 3],
        state: u64,
    }

    impl LinearProblem {
        fn new() -> Self {
            let mut p = LinearProblem {
                xs: Vec::new(),
                ys: Vec::new(),
                w: [0.0; 3],
                state: 7,
            };
            for _ in 0..512 {
                let x = [p.uniform() * 2.0 - 1.0, p.uniform() * 2.0 - 1.0, 1.0];
                let noise = (p.uniform() - 0.5) * 0.2;
                p.ys.push(2.0 * x[0] - 3.0 * x[1] + 0.5 + noise);
                p.xs.push(x);
            }
            p
        }

        fn uniform(&mut self) -> f64 {
            self.state = self
                .state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.state >> 11) as f64 / (1u64 << 53) as f64
        }

        fn loss_on(&self, idx: &[usize]) -> f64 {
            let err = |i: usize| {
                self.xs[i]
                    .iter()
                    .zip(&self.w)
                    .map(|(x, w)| x * w)
                    .sum::<f64>()
                    - self.ys[i]
            };
            idx.iter().map(|&i| err(i) * err(i)).sum::<f64>() / idx.len() as f64
        }

        /// One SGD step at `lr` on a random batch; returns the batch loss before the step.
        fn step(&mut self, lr: f64) -> f64 {
            let idx: Vec<usize> = (0..16)
                .map(|_| (self.uniform() * 512.0) as usize % 512)
                .collect();
            let loss = self.loss_on(&idx);
            let mut grad = [0.0; 3];
            for &i in &idx {
                let err = self.xs[i]
                    .iter()
                    .zip(&self.w)
                    .map(|(x, w)| x * w)
                    .sum::<f64>()
                    - self.ys[i];
                for (g, x) in grad.iter_mut().zip(&self.xs[i]) {
                    *g += 2.0 * err * x / idx.len() as f64;
                }
            }
            for (w, g) in self.w.iter_mut().zip(grad) {
                *w -= lr * g;
            }
            loss
        }

        fn full_loss(&self) -> f64 {
            self.loss_on(&(0..512).collect::<Vec<_>>())
        }
    }

    #[test]
    fn suggestions_fall_in_the_known_good_range_of_a_linear_problem() {
        // Good: 100 SGD steps at that constant LR bring the loss below 5% of where it started.
        let good = |lr: f64| {
            let mut p = LinearProblem::new();
            let start = p.full_loss();
            (0..100).for_each(|_| {
                p.step(lr);
            });
            p.full_loss() < 0.05 * start
        };
        let grid: Vec<f64> = (-50..=20).map(|k| 10f64.powf(k as f64 / 10.0)).collect();
        let good_lrs: Vec<f64> = grid.iter().copied().filter(|&lr| good(lr)).collect();
        let (low, high) = (good_lrs[0], *good_lrs.last().unwrap());
        assert!(
            grid.iter()
                .all(|&lr| good(lr) == (low..=high).contains(&lr)),
            "good LRs form one interval"
        );

        // 400 iterations: the loss falls over ~100 of them, longer than the smoothing's memory
        let test = RangeTest {
            start_lr: 1e-4,
            end_lr: 1e2,
            iterations: 400,
            ..Default::default()
        };
        let mut problem = LinearProblem::new();
        let curve = test.run::<()>(|_, lr| Ok(problem.step(lr))).unwrap();
        assert!(
            matches!(curve.stop, Stop::Diverged { .. }),
            "the sweep runs into divergence"
        );
        let s = suggest(&curve);
        eprintln!("good LRs {low:.3e}..{high:.3e}; suggestions {s:?}");
        for lr in [s.steepest, s.minimum_div_10, s.valley] {
            let lr = lr.expect("every rule has a suggestion");
            assert!(
                (low..=high).contains(&lr),
                "{lr:e} outside {low:e}..{high:e}: {s:?}"
            );
        }
        let (base, max, _) = recommend(&s).unwrap();
        assert!((low..=high).contains(&max) && base < max);
    }

    #[test]
    fn invalid_settings_are_rejected() {
        assert!(
            RangeTest {
                start_lr: 1.0,
                end_lr: 0.1,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            RangeTest {
                iterations: 1,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(RangeTest::default().validate().is_ok());
    }
}
