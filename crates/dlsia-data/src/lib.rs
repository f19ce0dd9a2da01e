//! # dlsia-data
//!
//! Datasets, loaders and data tools for deep learning on scientific images.
pub mod augment;
pub mod dataset;
pub mod error;
pub mod io;
pub mod loader;
pub mod normalize;
pub mod sample;
pub mod seed;
pub mod split;
pub mod synth;
pub mod tiling;
pub mod volume;

pub use augment::{AugmentConfig, Augmentation, DihedralTransform};
pub use dataset::{ChannelLayout, Dataset, FileDataset, Subset, TensorDataset};
pub use error::{Error, Result};
pub use loader::{BatchIter, DataLoader, LoaderConfig};
pub use normalize::Normalization;
pub use sample::{Batch, Sample};
pub use split::{randomized_split, SplitConfig, SplitLevel};
pub use volume::{Element, SampleType, Volume, VolumeData};
