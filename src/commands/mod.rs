//! One module per subcommand, each holding that command's whole flow. Commands never use each
//! other: what two of them share lives in the library.

pub mod bench;
pub mod compare;
pub mod evaluate;
pub mod find_lr;
pub mod predict;
pub mod schedule;
pub mod train;
