//! Small deterministic synthetic data sets for the training tests.

#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use dlsia_data::{Batch, DataLoader, LoaderConfig, TensorDataset};

/// SplitMix64 stream in [0, 1).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-12), self.next());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// `n` images `(n, 1, s, s)` of a bright disk on a dark background with Gaussian noise, the clean
/// images, and the disk masks.
pub struct Disks {
    pub noisy: Vec<f32>,
    pub clean: Vec<f32>,
    pub labels: Vec<i64>,
    pub n: usize,
    pub s: usize,
}

pub fn disks(n: usize, s: usize, noise: f64, seed: u64) -> Disks {
    let mut r = Rng::new(seed);
    let (mut noisy, mut clean, mut labels) = (vec![], vec![], vec![]);
    for _ in 0..n {
        let cx = s as f64 * (0.3 + 0.4 * r.next());
        let cy = s as f64 * (0.3 + 0.4 * r.next());
        let rad = s as f64 * (0.15 + 0.15 * r.next());
        for y in 0..s {
            for x in 0..s {
                let d = ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt();
                let inside = d < rad;
                let c = if inside { 1.0 } else { 0.0 };
                clean.push(c as f32);
                noisy.push((c + noise * r.normal()) as f32);
                labels.push(inside as i64);
            }
        }
    }
    Disks {
        noisy,
        clean,
        labels,
        n,
        s,
    }
}

impl Disks {
    pub fn images(&self) -> Tensor {
        Tensor::from_vec(
            self.noisy.clone(),
            (self.n, 1, self.s, self.s),
            &Device::Cpu,
        )
        .unwrap()
    }
    pub fn clean(&self) -> Tensor {
        Tensor::from_vec(
            self.clean.clone(),
            (self.n, 1, self.s, self.s),
            &Device::Cpu,
        )
        .unwrap()
    }
    /// Labels `(n, s, s)` with a fraction `unlabelled` of the pixels set to -1.
    pub fn sparse_labels(&self, unlabelled: f64, seed: u64) -> Tensor {
        let mut r = Rng::new(seed);
        let l: Vec<i64> = self
            .labels
            .iter()
            .map(|&v| if r.next() < unlabelled { -1 } else { v })
            .collect();
        Tensor::from_vec(l, (self.n, self.s, self.s), &Device::Cpu).unwrap()
    }
    /// The labels with 0 and 1 swapped.
    pub fn inverted_labels(&self) -> Tensor {
        let l: Vec<i64> = self.labels.iter().map(|&v| 1 - v).collect();
        Tensor::from_vec(l, (self.n, self.s, self.s), &Device::Cpu).unwrap()
    }
    /// A random 0/1 mask `(n, 1, s, s)` keeping a fraction `keep` of the pixels.
    pub fn mask(&self, keep: f64, seed: u64) -> Tensor {
        let mut r = Rng::new(seed);
        let m: Vec<f32> = (0..self.n * self.s * self.s)
            .map(|_| (r.next() < keep) as u8 as f32)
            .collect();
        Tensor::from_vec(m, (self.n, 1, self.s, self.s), &Device::Cpu).unwrap()
    }
}

/// A loader without a prefetch thread.
pub fn loader(
    ds: TensorDataset,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
) -> DataLoader<TensorDataset> {
    DataLoader::new(
        ds,
        LoaderConfig {
            batch_size,
            shuffle,
            seed,
            drop_last: false,
            prefetch: 0,
        },
    )
    .unwrap()
}

/// Fixed batches of `b` samples.
pub fn fixed_batches(images: &Tensor, targets: Option<&Tensor>, b: usize) -> Vec<Batch> {
    let n = images.dim(0).unwrap();
    (0..n.div_ceil(b))
        .map(|k| {
            let len = b.min(n - k * b);
            Batch {
                image: images.narrow(0, k * b, len).unwrap(),
                target: targets.map(|t| t.narrow(0, k * b, len).unwrap()),
                mask: None,
            }
        })
        .collect()
}

/// All tensors of a network, as f32 vectors by name.
pub fn weights(net: &dyn dlsia_nets::Network) -> Vec<(String, Vec<f32>)> {
    net.params()
        .entries()
        .into_iter()
        .map(|(n, _, t)| {
            (
                n,
                t.to_dtype(DType::F32)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
            )
        })
        .collect()
}
