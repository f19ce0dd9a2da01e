//! [`DataLoader`]: batches a [`Dataset`], shuffles with a seed (a new permutation per epoch,
//! derived from seed and epoch), augments, and prefetches on a background thread.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use dlsia_data::{DataLoader, LoaderConfig, TensorDataset};
//! let images = Tensor::zeros((10, 1, 8, 8), DType::F32, &Device::Cpu)?;
//! let ds = TensorDataset::new(images, None, None)?;
//! let loader = DataLoader::new(ds, LoaderConfig { batch_size: 4, ..Default::default() })?;
//! for batch in loader.epoch(0) {
//!     let batch = batch?;                  // (4, 1, 8, 8), (4, ..), then (2, 1, 8, 8)
//! }
//! # Ok::<(), dlsia_data::Error>(())
//! ```

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use candle_core::Device;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::augment::Augmentation;
use crate::dataset::Dataset;
use crate::error::{invalid, Error, Result};
use crate::sample::{Batch, Sample};
use crate::seed::mix_seed;

/// How a [`DataLoader`] batches and orders samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderConfig {
    /// Samples per batch (>= 1).
    pub batch_size: usize,
    /// Visit samples in a new seeded random order every epoch.
    pub shuffle: bool,
    /// Seed of the shuffling and augmentation.
    pub seed: u64,
    /// Drop the last batch when it is smaller than `batch_size`.
    pub drop_last: bool,
    /// Batches prepared ahead on a background thread (0: build batches on the caller's thread).
    pub prefetch: usize,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            batch_size: 8,
            shuffle: true,
            seed: 0,
            drop_last: false,
            prefetch: 2,
        }
    }
}

/// Batches of a dataset, epoch after epoch.
pub struct DataLoader<D: Dataset + 'static> {
    dataset: Arc<D>,
    config: LoaderConfig,
    augmentation: Option<Augmentation>,
    device: Device,
}

impl<D: Dataset + 'static> DataLoader<D> {
    /// A loader over `dataset`; batches are built on the CPU.
    pub fn new(dataset: D, config: LoaderConfig) -> Result<Self> {
        Self::from_arc(Arc::new(dataset), config)
    }

    /// A loader over a shared dataset.
    pub fn from_arc(dataset: Arc<D>, config: LoaderConfig) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(invalid("LoaderConfig::batch_size", "must be at least 1"));
        }
        Ok(Self {
            dataset,
            config,
            augmentation: None,
            device: Device::Cpu,
        })
    }

    /// Augments every sample (seeded by loader seed, epoch and sample index).
    pub fn with_augmentation(mut self, augmentation: Augmentation) -> Self {
        self.augmentation = Some(augmentation);
        self
    }

    /// Moves every batch to `device` (on the prefetch thread, if any).
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<D> {
        &self.dataset
    }

    /// Batches per epoch.
    pub fn len(&self) -> usize {
        let n = self.dataset.len();
        let b = self.config.batch_size;
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// Whether an epoch yields no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The order in which epoch `epoch` visits the samples.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.dataset.len()).collect();
        if self.config.shuffle {
            let mut rng = StdRng::seed_from_u64(mix_seed(self.config.seed, epoch));
            idx.shuffle(&mut rng);
        }
        idx
    }

    /// An iterator over the batches of epoch `epoch`.
    pub fn epoch(&self, epoch: u64) -> BatchIter {
        let order = self.order(epoch);
        let job = Job {
            dataset: Arc::clone(&self.dataset),
            order,
            batches: self.len(),
            batch_size: self.config.batch_size,
            augmentation: self.augmentation.clone(),
            aug_seed: mix_seed(self.config.seed ^ 0x5eed_a11e, epoch),
            device: self.device.clone(),
        };
        if self.config.prefetch == 0 {
            return BatchIter {
                state: IterState::Inline {
                    job: Box::new(job),
                    next: 0,
                },
            };
        }
        let (tx, rx) = sync_channel(self.config.prefetch);
        let handle = std::thread::spawn(move || {
            for b in 0..job.batches {
                let r = job.build(b);
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    return;
                }
            }
        });
        BatchIter {
            state: IterState::Prefetch {
                rx: Some(rx),
                handle: Some(handle),
            },
        }
    }
}

/// Everything needed to build the batches of one epoch.
struct Job<D: Dataset> {
    dataset: Arc<D>,
    order: Vec<usize>,
    batches: usize,
    batch_size: usize,
    augmentation: Option<Augmentation>,
    aug_seed: u64,
    device: Device,
}

impl<D: Dataset> Job<D> {
    fn build(&self, b: usize) -> Result<Batch> {
        let lo = b * self.batch_size;
        let hi = (lo + self.batch_size).min(self.order.len());
        let samples = self.order[lo..hi]
            .iter()
            .map(|&i| {
                let s = self.dataset.get(i)?;
                match &self.augmentation {
                    Some(a) => a.apply(&s, mix_seed(self.aug_seed, i as u64)),
                    None => Ok(s),
                }
            })
            .collect::<Result<Vec<Sample>>>()?;
        let batch = Batch::collate(&samples)?;
        if self.device.is_cpu() {
            Ok(batch)
        } else {
            batch.to_device(&self.device)
        }
    }
}

trait BatchSource: Send {
    fn build(&self, b: usize) -> Result<Batch>;
    fn batches(&self) -> usize;
}

impl<D: Dataset> BatchSource for Job<D> {
    fn build(&self, b: usize) -> Result<Batch> {
        Job::build(self, b)
    }
    fn batches(&self) -> usize {
        self.batches
    }
}

enum IterState {
    Inline {
        job: Box<dyn BatchSource>,
        next: usize,
    },
    Prefetch {
        rx: Option<Receiver<Result<Batch>>>,
        handle: Option<JoinHandle<()>>,
    },
}

/// The batches of one epoch, in order; an iterator of `Result<Batch>`. Iteration stops after the
/// first error.
pub struct BatchIter {
    state: IterState,
}

impl Iterator for BatchIter {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        match &mut self.state {
            IterState::Inline { job, next } => {
                if *next >= job.batches() {
                    return None;
                }
                let r = job.build(*next);
                *next = if r.is_err() { usize::MAX } else { *next + 1 };
                Some(r)
            }
            IterState::Prefetch { rx, handle } => {
                let got = rx.as_ref()?.recv();
                match got {
                    Ok(r) => Some(r),
                    Err(_) => {
                        // The worker finished (or died): report a panic once, then stop.
                        rx.take();
                        match handle.take().map(|h| h.join()) {
                            Some(Err(p)) => {
                                let msg = p
                                    .downcast_ref::<&str>()
                                    .map(|s| s.to_string())
                                    .or_else(|| p.downcast_ref::<String>().cloned())
                                    .unwrap_or_else(|| "panic".into());
                                Some(Err(Error::Worker(msg)))
                            }
                            _ => None,
                        }
                    }
                }
            }
        }
    }
}

impl Drop for BatchIter {
    fn drop(&mut self) {
        if let IterState::Prefetch { rx, handle } = &mut self.state {
            // Closing the channel makes the worker's next send fail, so it stops.
            rx.take();
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::TensorDataset;
    use candle_core::Tensor;

    fn ds(n: usize) -> TensorDataset {
        let img = Tensor::arange(0f32, n as f32, &Device::Cpu)
            .unwrap()
            .reshape((n, 1, 1))
            .unwrap();
        TensorDataset::new(img, None, None).unwrap()
    }

    fn ids(l: &DataLoader<TensorDataset>, epoch: u64) -> Vec<Vec<usize>> {
        l.epoch(epoch)
            .map(|b| {
                let v: Vec<f32> = b.unwrap().image.flatten_all().unwrap().to_vec1().unwrap();
                v.into_iter().map(|x| x as usize).collect()
            })
            .collect()
    }

    #[test]
    fn batches_cover_every_sample_once() {
        for prefetch in [0, 2] {
            for drop_last in [false, true] {
                let cfg = LoaderConfig {
                    batch_size: 4,
                    shuffle: true,
                    seed: 7,
                    drop_last,
                    prefetch,
                };
                let l = DataLoader::new(ds(10), cfg).unwrap();
                let b = ids(&l, 0);
                assert_eq!(b.len(), l.len());
                assert_eq!(b.len(), if drop_last { 2 } else { 3 });
                let mut all: Vec<usize> = b.concat();
                if !drop_last {
                    all.sort();
                    assert_eq!(all, (0..10).collect::<Vec<_>>());
                } else {
                    assert_eq!(all.len(), 8);
                }
            }
        }
    }

    #[test]
    fn shuffle_is_seeded_and_changes_per_epoch() {
        let mk = |seed, prefetch| {
            DataLoader::new(
                ds(32),
                LoaderConfig {
                    batch_size: 32,
                    seed,
                    prefetch,
                    ..Default::default()
                },
            )
            .unwrap()
        };
        let a = mk(1, 0);
        let b = mk(1, 3);
        assert_eq!(ids(&a, 0), ids(&b, 0));
        assert_ne!(ids(&a, 0), ids(&a, 1));
        assert_ne!(ids(&a, 0), ids(&mk(2, 0), 0));
        let unshuffled = DataLoader::new(
            ds(5),
            LoaderConfig {
                shuffle: false,
                batch_size: 5,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(ids(&unshuffled, 3), vec![vec![0, 1, 2, 3, 4]]);
    }

    struct Failing;
    impl Dataset for Failing {
        fn len(&self) -> usize {
            4
        }
        fn get(&self, i: usize) -> Result<Sample> {
            if i == 2 {
                Err(invalid("Failing", "sample 2 is broken"))
            } else {
                Ok(Sample::image_only(Tensor::zeros(
                    (1, 2),
                    candle_core::DType::F32,
                    &Device::Cpu,
                )?))
            }
        }
    }

    #[test]
    fn errors_surface_and_stop_iteration() {
        for prefetch in [0, 1] {
            let l = DataLoader::new(
                Failing,
                LoaderConfig {
                    batch_size: 1,
                    shuffle: false,
                    prefetch,
                    ..Default::default()
                },
            )
            .unwrap();
            let r: Vec<bool> = l.epoch(0).map(|b| b.is_ok()).collect();
            assert_eq!(r, vec![true, true, false]);
        }
        assert!(DataLoader::new(
            Failing,
            LoaderConfig {
                batch_size: 0,
                ..Default::default()
            }
        )
        .is_err());
    }

    #[test]
    fn dropping_mid_epoch_stops_worker() {
        let l = DataLoader::new(
            ds(100),
            LoaderConfig {
                batch_size: 1,
                prefetch: 1,
                ..Default::default()
            },
        )
        .unwrap();
        let mut it = l.epoch(0);
        assert!(it.next().unwrap().is_ok());
        drop(it); // must not hang
    }
}
