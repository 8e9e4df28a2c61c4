//! The one place where a compute backend is chosen. Everything below works on a [`Device`] and
//! is backend-agnostic; each backend is compiled in by its Cargo feature.

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

crate::named_enum! {
    /// A backend as named in configs and on the command line.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum BackendKind("backend") {
        /// A GPU when one is found (CUDA, then wgpu), the `flex` CPU backend otherwise.
        Auto = "auto",
        /// Burn's pure-Rust multithreaded CPU backend.
        Flex = "flex",
        /// Burn's deprecated ndarray CPU backend (about 80x slower than flex).
        Ndarray = "ndarray",
        /// GPU through wgpu: Vulkan, Metal or DX12.
        Wgpu = "wgpu",
        /// wgpu on a software (CPU) adapter such as Mesa's lavapipe: the GPU code path without a
        /// GPU, for tests and for checking a build; far slower than `flex`, never picked by `auto`.
        WgpuSoftware = "wgpu-software",
        /// NVIDIA GPU through CUDA.
        Cuda = "cuda",
    }
}

impl BackendKind {
    /// Whether this binary was compiled with the backend's feature.
    pub fn compiled(self) -> bool {
        match self {
            BackendKind::Auto => true,
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::Ndarray => cfg!(feature = "ndarray"),
            BackendKind::Wgpu | BackendKind::WgpuSoftware => cfg!(feature = "wgpu-runtime"),
            BackendKind::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The Cargo feature that compiles it in.
    pub fn feature(self) -> &'static str {
        match self {
            BackendKind::WgpuSoftware => "wgpu",
            other => other.name(),
        }
    }
}

/// The device a run uses, with a human-readable description.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The backend that was picked (never `Auto`).
    pub kind: BackendKind,
    /// Inference device; call `.autodiff()` on a clone for training.
    pub device: Device,
    /// What to print at start.
    pub description: String,
}

/// Pick and initialise a device. `Auto` tries the GPU backends compiled in and falls back to
/// `flex`; an explicit choice that is not compiled in or has no device is an error.
pub fn select(kind: BackendKind) -> Result<Selected> {
    if !kind.compiled() {
        return Err(Error::Backend(format!(
            "this binary was built without the '{kind}' backend; rebuild with `cargo build --release --features {}`",
            kind.feature()
        )));
    }
    match kind {
        BackendKind::Auto => select_auto(),
        explicit => open(explicit).map_err(Error::Backend),
    }
}

/// What `auto` tries, in order: never a software GPU adapter (`flex` is far faster).
const AUTO_ORDER: [BackendKind; 4] = [
    BackendKind::Cuda,
    BackendKind::Wgpu,
    BackendKind::Flex,
    BackendKind::Ndarray,
];

fn select_auto() -> Result<Selected> {
    let mut reasons = Vec::new();
    for kind in AUTO_ORDER {
        if !kind.compiled() {
            continue;
        }
        match open(kind) {
            Ok(mut selected) => {
                if !reasons.is_empty() {
                    selected.description += &format!(" (no GPU: {})", reasons.join("; "));
                }
                return Ok(selected);
            }
            Err(reason) => reasons.push(shorten(&reason)),
        }
    }
    Err(Error::Backend(format!(
        "no usable backend in this build: {}",
        reasons.join("; ")
    )))
}

/// Open one backend and check it computes. GPU runtimes report some failures by panicking, so
/// the probe runs under `catch_unwind` with the panic message captured, not printed.
fn open(kind: BackendKind) -> std::result::Result<Selected, String> {
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = catch_unwind(AssertUnwindSafe(|| open_unchecked(kind)));
    std::panic::set_hook(previous_hook);
    let (device, description) = match outcome {
        Ok(result) => result?,
        Err(panic) => return Err(format!("{kind}: {}", panic_message(&panic))),
    };
    Ok(Selected {
        kind,
        device,
        description,
    })
}

fn open_unchecked(kind: BackendKind) -> std::result::Result<(Device, String), String> {
    let device = device_for(kind)?;
    // A tiny computation read back: fails here rather than in the middle of training.
    let probe = Tensor::<1>::from_floats([1.0, 2.0], &device)
        .sum()
        .into_scalar::<f32>();
    if probe != 3.0 {
        return Err(format!("{kind}: probe computation returned {probe}"));
    }
    let threads = cpu_threads();
    let description = match kind {
        BackendKind::Flex | BackendKind::Ndarray => {
            keep_freed_memory();
            format!("{kind} (CPU, {threads} threads)")
        }
        BackendKind::WgpuSoftware => format!("{kind} (software GPU adapter, {device:?})"),
        _ => format!("{kind} (GPU, {device:?})"),
    };
    Ok((device, description))
}

/// Threads the CPU backends compute on: rayon's global pool, which takes `RAYON_NUM_THREADS`
/// when it is a positive number and one thread per core otherwise.
pub fn cpu_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Lets glibc keep freed tensor buffers for reuse instead of returning them to the kernel.
///
/// A CPU training step allocates and frees a few hundred megabytes of activations and gradients.
/// glibc serves every block above its mmap threshold (dynamic, at most 32 MiB) with a fresh
/// mapping and unmaps it on free, so each step page-faults all of it in again, zeroed by the
/// kernel. Measured on MiniGoogLeNet (flex, batch 64): page faults ≈ 6 % of the step, and
/// +15 % throughput with this setting, for ≈ 140 MiB more peak memory.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it takes the arena lock itself.
    unsafe {
        const GIB: libc::c_int = 1 << 30;
        // Some glibc versions refuse a threshold above 32 MiB; then take that maximum.
        if libc::mallopt(libc::M_MMAP_THRESHOLD, GIB) == 0 {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        }
        libc::mallopt(libc::M_TRIM_THRESHOLD, GIB);
    }
}

#[allow(unreachable_code, deprecated)]
fn device_for(kind: BackendKind) -> std::result::Result<Device, String> {
    match kind {
        #[cfg(feature = "flex")]
        BackendKind::Flex => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => Ok(Device::ndarray()),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Ok(Device::cuda(0)),
        #[cfg(feature = "wgpu-runtime")]
        BackendKind::Wgpu => wgpu_device(),
        #[cfg(feature = "wgpu-runtime")]
        BackendKind::WgpuSoftware => wgpu_software_device(),
        other => Err(format!("{other}: not compiled into this binary")),
    }
}

/// A real GPU adapter: discrete first, then integrated. CPU adapters (lavapipe, llvmpipe) are
/// not taken, since `flex` is far faster than a software GPU.
#[cfg(feature = "wgpu-runtime")]
fn wgpu_device() -> std::result::Result<Device, String> {
    use burn::tensor::DeviceKind;
    let mut errors = Vec::new();
    for kind in [DeviceKind::DiscreteGpu(0), DeviceKind::IntegratedGpu(0)] {
        match Device::wgpu_options().device_kind(kind.clone()).init() {
            Ok(device) => return Ok(device),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(format!("wgpu: {}", errors.join("; ")))
}

/// A software (CPU) adapter, asked for on purpose.
#[cfg(feature = "wgpu-runtime")]
fn wgpu_software_device() -> std::result::Result<Device, String> {
    use burn::tensor::DeviceKind;
    Device::wgpu_options()
        .device_kind(DeviceKind::Cpu)
        .init()
        .map_err(|e| {
            format!(
                "wgpu-software: no software adapter ({e}); on Debian, install mesa-vulkan-drivers"
            )
        })
}

/// The start of a long driver message: enough to say why `auto` moved on.
fn shorten(reason: &str) -> String {
    const MAX: usize = 100;
    match reason.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &reason[..cut]),
        None => reason.to_string(),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "the backend failed to start".to_string())
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &k in BackendKind::ALL {
            assert_eq!(k.name().parse::<BackendKind>(), Ok(k));
        }
        assert!("tpu".parse::<BackendKind>().unwrap_err().contains("tpu"));
    }

    #[test]
    fn a_software_adapter_is_only_taken_when_asked_for() {
        assert!(!AUTO_ORDER.contains(&BackendKind::WgpuSoftware));
        assert!(!AUTO_ORDER.contains(&BackendKind::Auto));
        assert_eq!(
            "wgpu-software".parse::<BackendKind>(),
            Ok(BackendKind::WgpuSoftware)
        );
    }

    #[test]
    fn auto_always_finds_a_device_here() {
        let selected = select(BackendKind::Auto).unwrap();
        assert_ne!(selected.kind, BackendKind::Auto);
    }
}
