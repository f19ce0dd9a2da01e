//! # dlsia-data
//!
//! Datasets, loaders and data tools for deep learning on scientific images:
//!
//! * [`io`]: TIFF stacks (8/16/32/64-bit integers and floats), NumPy `.npy` (memory-mapped for
//!   region reads), PNG previews; HDF5 and Zarr behind the `hdf5` and `zarr` features. Files come
//!   in as a [`Volume`] that keeps its stored sample type.
//! * [`Dataset`] / [`Sample`] / [`Batch`] and the [`DataLoader`] (seeded shuffling with a new
//!   permutation per epoch, [`augment`]ation, background prefetch).
//! * [`split`]: the original's pixel-level random train/validation split, or image level.
//! * [`augment`]: the dihedral group in 2-D and 3-D (identical on image, target and mask),
//!   intensity scaling and noise; [`normalize`]: mean/std or percentile scaling stored with a
//!   model.
//! * [`synth`]: random shapes, fibers in concrete, scattering patterns with detector gaps.
//! * [`tiling`]: overlapping windows with blending, streamed slab by slab so that volumes larger
//!   than memory are processed in bounded memory.
//!
//! ```
//! use candle_core::Device;
//! use dlsia_data::synth::random_shape_set;
//! use dlsia_data::{randomized_split, DataLoader, LoaderConfig, SplitConfig};
//!
//! let shapes = random_shape_set(32, 0.1, 32, 7)?;
//! let (train, val) = randomized_split(&shapes.normalized, &shapes.class_image, None, &SplitConfig::default())?;
//! let loader = DataLoader::new(train, LoaderConfig { batch_size: 8, seed: 1, ..Default::default() })?;
//! for batch in loader.epoch(0) {
//!     let batch = batch?; // image (8, 1, 32, 32) f32, target (8, 32, 32) i64 with -1 = unlabelled
//!     assert_eq!(batch.image.dims(), &[8, 1, 32, 32]);
//! }
//! # let _ = (val, Device::Cpu);
//! # Ok::<(), dlsia_data::Error>(())
//! ```

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
