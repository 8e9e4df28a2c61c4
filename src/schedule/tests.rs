//! The schedules at exact iterations, against the formulas and PyTorch's definitions.

use std::f64::consts::PI;

use burn::lr_scheduler::LrScheduler;

use super::*;

fn clr(method: Method) -> Clr {
    Clr::symmetric(method, 1e-7, 1e-2, 4, 0.9)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-15 + 1e-12 * b.abs()
}

#[test]
fn triangular_start_peak_end_of_each_cycle() {
    let s = clr(Method::Triangular);
    for cycle_start in [0u64, 8, 16, 800] {
        assert_eq!(s.lr(cycle_start), 1e-7, "start of cycle at {cycle_start}");
        assert_eq!(s.lr(cycle_start + 4), 1e-2, "peak at {}", cycle_start + 4);
    }
    // quarter points: half amplitude
    assert!(close(s.lr(2), 1e-7 + (1e-2 - 1e-7) * 0.5));
    assert!(close(s.lr(6), 1e-7 + (1e-2 - 1e-7) * 0.5));
    // last iteration of the first cycle: one step above base
    assert!(close(s.lr(7), 1e-7 + (1e-2 - 1e-7) * 0.25));
}

#[test]
fn triangular2_halves_every_cycle() {
    let s = clr(Method::Triangular2);
    let amp = 1e-2 - 1e-7;
    assert!(close(s.lr(4), 1e-7 + amp));
    assert!(close(s.lr(12), 1e-7 + amp / 2.0));
    assert!(close(s.lr(20), 1e-7 + amp / 4.0));
    assert!(close(s.lr(10), 1e-7 + amp / 2.0 * 0.5));
    assert_eq!(s.lr(16), 1e-7);
    // a huge cycle count underflows to the base instead of overflowing
    assert_eq!(s.lr(8 * 5000 + 4), 1e-7);
}

#[test]
fn exp_range_decays_with_gamma_per_iteration() {
    let s = clr(Method::ExpRange);
    let amp = 1e-2 - 1e-7;
    assert_eq!(s.lr(0), 1e-7);
    assert!(close(s.lr(4), 1e-7 + amp * 0.9f64.powi(4)));
    assert!(close(s.lr(12), 1e-7 + amp * 0.9f64.powi(12)));
    assert!(close(s.lr(2), 1e-7 + amp * 0.5 * 0.81));
    assert_eq!(s.lr(4 + 8 * 10_000_000), 1e-7);
}

#[test]
fn cycle_and_triangle_follow_the_formula() {
    let tri = clr(Method::Triangular);
    assert_eq!(tri.cycle(0), 1);
    assert_eq!(tri.cycle(7), 1);
    assert_eq!(tri.cycle(8), 2);
    assert_eq!(tri.height(0), 0.0);
    assert_eq!(tri.height(1), 0.25);
    assert_eq!(tri.height(4), 1.0);
    assert_eq!(tri.height(5), 0.75);
    // the float formula of the paper gives the same values
    for it in 0..40u64 {
        let c = (1 + it / 8) as f64;
        let x = (it as f64 / 4.0 - 2.0 * c + 1.0).abs();
        assert!(close(tri.height(it), (1.0 - x).max(0.0)), "it {it}");
    }
}

#[test]
fn scheduler_steps_and_resumes_exactly() {
    let mut a = CyclicLrScheduler::new(Schedule::Cyclic(clr(Method::Triangular2)));
    let first: Vec<f64> = (0..10).map(|_| a.step()).collect();
    assert_eq!(first[0], 1e-7);
    assert_eq!(first[4], 1e-2);
    let record = a.to_record();
    let mut b = CyclicLrScheduler::new(Schedule::Cyclic(clr(Method::Triangular2)));
    b.load_record(record);
    assert_eq!(b.iteration(), 10);
    for _ in 0..20 {
        assert_eq!(a.step(), b.step());
    }
}

#[test]
fn cycle_summary_counts_cycles_and_warns_mid_cycle() {
    let s = clr(Method::Triangular); // step 4: cycles of 8
    let whole = CycleSummary::new(&Schedule::Cyclic(s), 24);
    assert_eq!(
        (whole.cycle_length, whole.full_cycles, whole.into_last_cycle),
        (8, 3, 0)
    );
    assert_eq!(whole.mid_cycle_warning(4), None);
    let mid = CycleSummary::new(&Schedule::Cyclic(s), 28);
    assert_eq!((mid.full_cycles, mid.into_last_cycle), (3, 4));
    let warning = mid.mid_cycle_warning(4).unwrap();
    assert!(warning.contains("4 iterations into cycle 4"), "{warning}");
    assert!(
        warning.contains("after 24 (6 epochs) or 32 (8 epochs) iterations"),
        "{warning}"
    );
    assert_eq!(
        lr_sequence(Schedule::Cyclic(s), 9),
        (0..9).map(|it| s.lr(it)).collect::<Vec<_>>()
    );
}

#[test]
fn asymmetric_cycles_rise_and_fall_at_their_own_pace() {
    let c = Clr {
        step_up: 2,
        step_down: 6,
        ..clr(Method::Triangular)
    };
    let amp = 1e-2 - 1e-7;
    let heights: Vec<f64> = (0..10).map(|it| c.height(it)).collect();
    assert_eq!(
        heights,
        vec![
            0.0,
            0.5,
            1.0,
            5.0 / 6.0,
            4.0 / 6.0,
            0.5,
            2.0 / 6.0,
            1.0 / 6.0,
            0.0,
            0.5
        ]
    );
    assert_eq!(c.lr(2), 1e-2);
    assert!(close(c.lr(5), 1e-7 + amp * 0.5));
    assert_eq!((c.cycle(7), c.cycle(8)), (1, 2));
    // triangular2 halves per cycle of 8 as well
    let c2 = Clr {
        step_up: 2,
        step_down: 6,
        ..clr(Method::Triangular2)
    };
    assert!(close(c2.lr(10), 1e-7 + amp / 2.0));
}

#[test]
fn named_scales_of_cycle_or_iteration() {
    let scale = |function, mode| Scale {
        function,
        mode,
        gamma: 0.5,
    };
    assert_eq!(
        scale(ScaleFn::Constant, ScaleMode::Cycle).value(100, 7),
        1.0
    );
    assert_eq!(
        scale(ScaleFn::Halving, ScaleMode::Cycle).value(100, 3),
        0.25
    );
    assert_eq!(
        scale(ScaleFn::Exp, ScaleMode::Iterations).value(3, 1),
        0.125
    );
    assert_eq!(scale(ScaleFn::Exp, ScaleMode::Cycle).value(300, 2), 0.25);
    assert_eq!(scale(ScaleFn::Inverse, ScaleMode::Cycle).value(0, 4), 0.25);
    assert_eq!(
        scale(ScaleFn::Inverse, ScaleMode::Iterations).value(0, 1),
        1.0
    );
    assert_eq!(
        scale(ScaleFn::InverseSqrt, ScaleMode::Cycle).value(0, 16),
        0.25
    );
    // no overflow or NaN far out
    for f in [
        ScaleFn::Halving,
        ScaleFn::Exp,
        ScaleFn::Inverse,
        ScaleFn::InverseSqrt,
    ] {
        let v = scale(f, ScaleMode::Iterations).value(u64::MAX, u64::MAX);
        assert!(v.is_finite() && (0.0..=1.0).contains(&v), "{f:?}: {v}");
    }
    // a custom scale in a schedule: 1/cycle
    let c = Clr {
        scale: scale(ScaleFn::Inverse, ScaleMode::Cycle),
        ..clr(Method::Triangular)
    };
    assert!(close(c.lr(4 + 8 * 3), 1e-7 + (1e-2 - 1e-7) / 4.0));
}

fn one_cycle(three_phase: bool, anneal: Anneal) -> OneCycle {
    OneCycle {
        max_lr: 1.0,
        total: 100,
        div_factor: 25.0,
        final_div_factor: 1e4,
        pct_start: 0.3,
        anneal,
        three_phase,
    }
}

#[test]
fn one_cycle_matches_pytorchs_phases_and_ends_on_the_last_iteration() {
    let o = one_cycle(false, Anneal::Cos);
    assert!(close(o.lr(0), 0.04)); // max / 25
    // phase 1 ends at 0.3 * 100 - 1 = 29: the peak
    assert!(close(o.lr(29), 1.0));
    // half-way through phase 1 (step 14.5 of 29): the cosine's middle
    let mid = o.lr(14);
    assert!(close(
        mid,
        1.0 + (0.04 - 1.0) / 2.0 * ((PI * 14.0 / 29.0).cos() + 1.0)
    ));
    // the last iteration is exactly the minimum, and nothing runs past it
    assert_eq!(o.lr(99), o.min_lr());
    assert!(close(o.min_lr(), 0.04 / 1e4));
    assert_eq!(o.lr(100), o.lr(99));
    assert_eq!(o.lr(10_000), o.lr(99));
    // linear annealing: the middle of phase 2 (29..99) is the midpoint of max and min
    let l = one_cycle(false, Anneal::Linear);
    assert!(close(l.lr(64), (1.0 + 0.04 / 1e4) / 2.0));
    // three phases: up to 29, back to the start at 58, then down to the minimum at 99
    let t = one_cycle(true, Anneal::Linear);
    assert_eq!(t.lr(29), 1.0);
    assert!(close(t.lr(58), 0.04));
    assert!(close(t.lr(99), 0.04 / 1e4));
    let s = Schedule::OneCycle(o);
    assert_eq!(s.cycle_length(), 100);
    assert_eq!(CycleSummary::new(&s, 100).mid_cycle_warning(10), None);
}

#[test]
fn cyclical_momentum_mirrors_the_learning_rate() {
    let m = Momentum::Cyclical {
        base: 0.85,
        max: 0.95,
    };
    let tri = Schedule::Cyclic(clr(Method::Triangular));
    assert_eq!(m.at(&tri, 0), 0.95); // LR at base: momentum at max
    assert!(close(m.at(&tri, 4), 0.85)); // LR at peak: momentum at base
    assert!(close(m.at(&tri, 2), 0.90));
    assert!(close(m.at(&tri, 8), 0.95));
    // the amplitude scale applies to momentum too (triangular2, second cycle: half)
    let tri2 = Schedule::Cyclic(clr(Method::Triangular2));
    assert!(close(m.at(&tri2, 12), 0.90));
    assert_eq!(Momentum::Constant(0.9).at(&tri, 4), 0.9);
    // one-cycle: max → base while the LR warms up, back to max at the end
    let o = Schedule::OneCycle(one_cycle(false, Anneal::Linear));
    assert!(close(m.at(&o, 0), 0.95));
    assert!(close(m.at(&o, 29), 0.85));
    assert!(close(m.at(&o, 99), 0.95));
    assert!(close(m.at(&o, 64), 0.90));
}

#[test]
fn method_names_round_trip() {
    for &m in Method::ALL {
        assert_eq!(m.name().parse::<Method>(), Ok(m));
    }
    assert!("cosine".parse::<Method>().is_err());
}
