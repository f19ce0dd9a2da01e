//! Metrics accumulated over a whole epoch: call `update` for every batch, then read the scores.
//! They are not differentiable and live on the host (counts and f64 moments).

mod confusion;
mod pearson;

pub use confusion::ConfusionMatrix;
pub use pearson::Pearson;
