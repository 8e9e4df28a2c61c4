//! SGD with (heavy-ball) momentum whose momentum may change every iteration, for cyclical
//! momentum. Burn's `Sgd` fixes its momentum at construction, hence this optimiser.
//!
//! Update, as PyTorch's `SGD` (no dampening, no Nesterov) and Burn's `Sgd` with dampening 0:
//! `v ← μ_t · v + g` (`v ← g` on the first step), `w ← w − lr_t · v`. The velocity `v` is the
//! state; `μ_t` is read at each step, so a changing momentum never invalidates the state.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::optim::{ModuleOptimizer, Optimizer, RecordState, StateSink, StateSource};
use burn::tensor::{Device, Tensor};

/// The momentum the next steps use, shared between the optimiser and whoever sets it.
#[derive(Debug, Clone)]
pub struct MomentumHandle(Arc<AtomicU64>);

impl MomentumHandle {
    /// Use `momentum` from the next step on.
    pub fn set(&self, momentum: f64) {
        self.0.store(momentum.to_bits(), Ordering::Relaxed);
    }

    /// The momentum in force.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// SGD with a per-iteration momentum.
#[derive(Debug, Clone)]
pub struct MomentumSgd {
    momentum: MomentumHandle,
}

/// The optimiser for a module, and the handle that sets its momentum.
pub fn momentum_sgd(initial_momentum: f64) -> (ModuleOptimizer, MomentumHandle) {
    let handle = MomentumHandle(Arc::new(AtomicU64::new(initial_momentum.to_bits())));
    let optimizer = MomentumSgd {
        momentum: handle.clone(),
    };
    (ModuleOptimizer::from(optimizer), handle)
}

/// Per-parameter state: the velocity.
#[derive(Clone)]
pub struct VelocityState<const D: usize> {
    pub velocity: Tensor<D>,
}

impl<const D: usize> RecordState for VelocityState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_tensor(prefix, "velocity", self.velocity.to_data());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let data = src.take_tensor(prefix, "velocity")?;
        Some(Self {
            velocity: Tensor::from_data(data, device),
        })
    }
}

impl Optimizer for MomentumSgd {
    type State<const D: usize> = VelocityState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let velocity = match state {
            Some(state) => state.velocity.mul_scalar(self.momentum.get()).add(grad),
            None => grad,
        };
        let updated = tensor - velocity.clone().mul_scalar(lr);
        (updated, Some(VelocityState { velocity }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        VelocityState {
            velocity: state.velocity.to_device(device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, Param};
    use burn::optim::GradientsParams;

    #[derive(Module, Debug)]
    struct Two {
        w: Param<Tensor<1>>,
    }

    #[test]
    fn velocity_follows_a_changing_momentum_by_hand() {
        let device = Device::flex().autodiff();
        let mut module = Two {
            w: Param::from_tensor(Tensor::from_floats([1.0, 2.0], &device)),
        };
        let (mut optimizer, momentum) = momentum_sgd(0.9);
        // loss = w0² + 3·w1, so the gradient is (2·w0, 3)
        let step = |module: Two, optimizer: &mut ModuleOptimizer, lr: f64| {
            let w = module.w.val();
            let loss = w.clone().narrow(0, 0, 1).powi_scalar(2).sum()
                + w.narrow(0, 1, 1).mul_scalar(3.0).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &module);
            optimizer.step(lr, module, grads)
        };
        let values = |m: &Two| m.w.val().into_data().iter::<f64>().collect::<Vec<_>>();
        // 1: μ 0.9 unused (no velocity yet): v = (2, 3), w = (1 − 0.2, 2 − 0.3)
        module = step(module, &mut optimizer, 0.1);
        assert_close(&values(&module), &[0.8, 1.7]);
        // 2: μ 0.5, lr 0.2: g = (1.6, 3), v = (0.5·2 + 1.6, 0.5·3 + 3) = (2.6, 4.5)
        momentum.set(0.5);
        module = step(module, &mut optimizer, 0.2);
        assert_close(&values(&module), &[0.8 - 0.52, 1.7 - 0.9]);
        // 3: μ 0, lr 0.1: v = g = (0.56, 3)
        momentum.set(0.0);
        module = step(module, &mut optimizer, 0.1);
        assert_close(&values(&module), &[0.28 - 0.056, 0.8 - 0.3]);
        // 4: μ 1, lr 0.1: v = (0.56 + 0.448, 3 + 3) = (1.008, 6)
        momentum.set(1.0);
        module = step(module, &mut optimizer, 0.1);
        assert_close(&values(&module), &[0.224 - 0.1008, 0.5 - 0.6]);
    }

    fn assert_close(actual: &[f64], expected: &[f64]) {
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-6, "{actual:?} != {expected:?}");
        }
    }
}
