//! One module per `dlsia` subcommand: its clap arguments and its `run` function.

pub mod demo;
pub mod draw;
pub mod evaluate;
pub mod import;
pub mod info;
pub mod init;
pub mod predict;
pub mod train;
