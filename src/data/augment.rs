//! Training-batch augmentation, as Keras' `ImageDataGenerator(width_shift_range=0.1,
//! height_shift_range=0.1, horizontal_flip=True, fill_mode="nearest")` in the reference.
//!
//! What is drawn, per image, from the loader's seeded RNG, in this order:
//! 1. `dx`, uniform over the integers `-S..=S` with `S = round(shift · width)` (3 on 32 px);
//! 2. `dy`, likewise with the height;
//! 3. `flip`, true with probability 1/2 (only when flipping is enabled).
//!
//! The image moves right by `dx` and down by `dy`; pixels that come in from outside copy the
//! nearest edge pixel. Then, if `flip`, it is mirrored left–right. Shifts are whole pixels, so no
//! interpolation blurs the image (Keras draws fractional shifts and interpolates).

use rand::Rng;

/// One image's geometric transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Transform {
    pub dx: i32,
    pub dy: i32,
    pub flip: bool,
}

impl Transform {
    /// No change (evaluation).
    pub const IDENTITY: Transform = Transform {
        dx: 0,
        dy: 0,
        flip: false,
    };
}

/// The random part: how far and whether to flip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    pub max_dx: i32,
    pub max_dy: i32,
    pub flip: bool,
}

impl Augment {
    /// Shifts up to `shift` of the width/height, rounded to whole pixels.
    pub fn new(shift: f64, flip: bool, height: usize, width: usize) -> Self {
        Self {
            max_dx: (shift * width as f64).round() as i32,
            max_dy: (shift * height as f64).round() as i32,
            flip,
        }
    }

    /// Draw one transform.
    pub fn draw(&self, rng: &mut impl Rng) -> Transform {
        Transform {
            dx: rng.random_range(-self.max_dx..=self.max_dx),
            dy: rng.random_range(-self.max_dy..=self.max_dy),
            flip: self.flip && rng.random_bool(0.5),
        }
    }
}

/// Write `(image − mean)` under transform `t` into `out`, converting HWC bytes to CHW floats
/// (the layout Burn's convolutions take). `out` holds `channels · height · width` values.
pub fn apply(
    t: Transform,
    image: &[u8],
    mean: &[f32],
    (height, width, channels): (usize, usize, usize),
    out: &mut [f32],
) {
    let (h, w) = (height as i32, width as i32);
    for y in 0..h {
        let sy = (y - t.dy).clamp(0, h - 1) as usize;
        for x in 0..w {
            let mirrored = if t.flip { w - 1 - x } else { x };
            let sx = (mirrored - t.dx).clamp(0, w - 1) as usize;
            let src = (sy * width + sx) * channels;
            let dst = y as usize * width + x as usize;
            for c in 0..channels {
                out[c * height * width + dst] = image[src + c] as f32 - mean[src + c];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// A 3x3 single-channel image with values 1..=9 (row-major).
    fn img() -> Vec<u8> {
        (1..=9).collect()
    }

    fn run(t: Transform) -> Vec<f32> {
        let mut out = vec![0.0; 9];
        apply(t, &img(), &[0.0; 9], (3, 3, 1), &mut out);
        out
    }

    #[test]
    fn identity_subtracts_the_mean_and_reorders_to_chw() {
        let image = [10u8, 20, 30, 40, 50, 60]; // 1x2 RGB
        let mean = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = vec![0.0; 6];
        apply(Transform::IDENTITY, &image, &mean, (1, 2, 3), &mut out);
        assert_eq!(out, vec![9.0, 36.0, 18.0, 45.0, 27.0, 54.0]);
    }

    #[test]
    fn shift_right_fills_with_the_nearest_edge() {
        let out = run(Transform {
            dx: 1,
            dy: 0,
            flip: false,
        });
        assert_eq!(out, vec![1.0, 1.0, 2.0, 4.0, 4.0, 5.0, 7.0, 7.0, 8.0]);
    }

    #[test]
    fn shift_up_fills_with_the_bottom_row() {
        let out = run(Transform {
            dx: 0,
            dy: -1,
            flip: false,
        });
        assert_eq!(out, vec![4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 7.0, 8.0, 9.0]);
    }

    #[test]
    fn flip_mirrors_left_right_after_the_shift() {
        assert_eq!(
            run(Transform {
                dx: 0,
                dy: 0,
                flip: true
            }),
            vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 9.0, 8.0, 7.0]
        );
        // shifted right by one, then mirrored
        assert_eq!(
            run(Transform {
                dx: 1,
                dy: 0,
                flip: true
            }),
            vec![2.0, 1.0, 1.0, 5.0, 4.0, 4.0, 8.0, 7.0, 7.0]
        );
    }

    #[test]
    fn draws_stay_in_range_cover_it_and_are_seeded() {
        let aug = Augment::new(0.1, true, 32, 32);
        assert_eq!((aug.max_dx, aug.max_dy), (3, 3));
        let mut rng = StdRng::seed_from_u64(7);
        let draws: Vec<Transform> = (0..2000).map(|_| aug.draw(&mut rng)).collect();
        assert!(draws.iter().all(|t| t.dx.abs() <= 3 && t.dy.abs() <= 3));
        for v in -3..=3 {
            assert!(draws.iter().any(|t| t.dx == v) && draws.iter().any(|t| t.dy == v));
        }
        let flips = draws.iter().filter(|t| t.flip).count();
        assert!((800..1200).contains(&flips), "{flips}");
        let mut again = StdRng::seed_from_u64(7);
        assert!(draws.iter().all(|t| *t == aug.draw(&mut again)));
        let none = Augment::new(0.0, false, 32, 32);
        assert_eq!(none.draw(&mut rng), Transform::IDENTITY);
    }
}
