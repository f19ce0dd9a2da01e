//! `dlsia`: deep learning for scientific images from the command line.
//!
//! Run `dlsia --help` for the commands and `dlsia <command> --help` for their options.

mod commands;
mod diagram;
mod models;
mod output;
mod prediction;
mod run_config;
mod scores;
mod volume_io;

use clap::{Parser, Subcommand};

/// Deep learning for scientific images (a Rust DLSIA): train, predict, evaluate, import.
#[derive(Parser)]
#[command(name = "dlsia", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a small network on synthetic data, predict, and write a report (start here).
    Demo(commands::demo::DemoArgs),
    /// Write a commented example configuration for a workflow.
    Init(commands::init::InitArgs),
    /// Train a network as a TOML configuration describes.
    Train(commands::train::TrainArgs),
    /// Segment or restore images and volumes of any size with one model or an ensemble.
    Predict(commands::predict::PredictArgs),
    /// Compare a segmentation (or a model's prediction) with labels.
    Evaluate(commands::evaluate::EvaluateArgs),
    /// Show a model's architecture, hyperparameters and parameter count.
    Info(commands::info::InfoArgs),
    /// Draw a model as SVG (an SMSNet's graph, a U-Net's levels, a layer list).
    Draw(commands::draw::DrawArgs),
    /// Convert a model file saved by the PyTorch original into a dlsia-rs model directory.
    Import(commands::import::ImportArgs),
}

fn main() {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Demo(_) | Command::Train(_)) {
        // Training allocates and frees the same large buffers every step: keeping freed memory
        // in the process instead of unmapping it makes a TUNet training step about 3× faster
        // (BENCHMARKS.md, `cargo xtask bench nets --tune-alloc`). Prediction keeps glibc's
        // defaults so that its resident set can shrink between tiles.
        dlsia_ops::alloc::tune_for_throughput();
    }
    let result = match cli.command {
        Command::Demo(a) => commands::demo::run(a),
        Command::Init(a) => commands::init::run(a),
        Command::Train(a) => commands::train::run(a),
        Command::Predict(a) => commands::predict::run(a),
        Command::Evaluate(a) => commands::evaluate::run(a),
        Command::Info(a) => commands::info::run(a),
        Command::Draw(a) => commands::draw::run(a),
        Command::Import(a) => commands::import::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}
