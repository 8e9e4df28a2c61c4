//! The integration tests, one binary with a module per theme. They run the `clrtrain` binary
//! (through `support::Clrtrain`, whose defaults are the CPU backend and a fixed seed) on tiny
//! datasets they write themselves, and the library where a test needs to look inside.

mod bad_input;
mod bench;
mod compare;
mod evaluate_predict;
mod find_lr;
mod flex_kernels;
mod help;
#[cfg(unix)]
mod interrupt;
mod layout;
mod library;
mod outputs;
mod resume;
mod schedule;
mod support;
// the untuned GPU build only: see the module
#[cfg(all(feature = "wgpu-runtime", not(feature = "wgpu")))]
mod wgpu;
