//! [`PredictionWriter`]: receives blended slabs of `(mean…, std…)` channels from the tiled
//! runner and writes what the user asked for — labels (arg-max) or values, the ensemble's
//! standard deviation, class probabilities, conformal set sizes — each to its own file, slab by
//! slab, while counting a summary.

use anyhow::Result as AnyResult;
use candle_core::{Device, Tensor};
use dlsia_data::tiling::VolumeWriter;
use dlsia_uq::conformal::ConformalPredictor;

use crate::models::Task;

/// The files a prediction writes.
pub struct Sinks {
    /// Labels (segmentation) or values (regression).
    pub main: Box<dyn VolumeWriter>,
    /// Standard deviation across the ensemble (of the predicted class's probability, or of the
    /// value).
    pub std: Option<Box<dyn VolumeWriter>>,
    /// Mean class probabilities `(C, spatial…)`.
    pub probabilities: Option<Box<dyn VolumeWriter>>,
    /// Conformal set sizes, with the calibrated predictor.
    pub set_sizes: Option<(Box<dyn VolumeWriter>, ConformalPredictor)>,
}

/// Counts gathered while writing.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Voxels written.
    pub voxels: u64,
    /// Voxels per predicted class (segmentation).
    pub class_counts: Vec<u64>,
    /// Sum of the per-voxel standard deviation (ensembles).
    pub std_sum: f64,
    /// Voxels per conformal set size (index = size).
    pub set_size_counts: Vec<u64>,
}

/// A [`VolumeWriter`] for `(C [+ C], spatial…)` slabs: the first `C` channels are the mean
/// prediction, the next `C` (ensembles only) the standard deviation.
pub struct PredictionWriter {
    task: Task,
    channels: usize,
    ensemble: bool,
    sinks: Sinks,
    /// Summary of what was written.
    pub summary: Summary,
    spatial: Vec<usize>,
}

fn err(e: impl std::fmt::Display) -> dlsia_data::Error {
    dlsia_data::Error::Worker(e.to_string())
}

impl PredictionWriter {
    /// A writer for predictions with `channels` channels (classes or values).
    pub fn new(task: Task, channels: usize, ensemble: bool, sinks: Sinks) -> Self {
        PredictionWriter {
            task,
            channels,
            ensemble,
            sinks,
            summary: Summary {
                class_counts: vec![0; channels],
                ..Summary::default()
            },
            spatial: vec![],
        }
    }

    fn slab(&mut self, start: usize, planes: usize, data: &[f32]) -> AnyResult<()> {
        let c = self.channels;
        let rest: usize = self.spatial[1..].iter().product();
        let n = planes * rest;
        let mean = &data[..c * n];
        let std = self.ensemble.then(|| &data[c * n..2 * c * n]);
        match self.task {
            Task::Segmentation { .. } => {
                let mut labels = vec![0f32; n];
                let mut spread = vec![0f32; n];
                for (i, (l, s)) in labels.iter_mut().zip(spread.iter_mut()).enumerate() {
                    let mut best = 0;
                    for k in 1..c {
                        if mean[k * n + i] > mean[best * n + i] {
                            best = k;
                        }
                    }
                    *l = best as f32;
                    self.summary.class_counts[best] += 1;
                    if let Some(sd) = std {
                        *s = sd[best * n + i];
                        self.summary.std_sum += f64::from(*s);
                    }
                }
                self.sinks.main.write_slab(start, planes, &labels)?;
                if let Some(w) = self.sinks.std.as_mut() {
                    w.write_slab(start, planes, &spread)?;
                }
            }
            Task::Regression => {
                self.sinks.main.write_slab(start, planes, mean)?;
                if let (Some(w), Some(sd)) = (self.sinks.std.as_mut(), std) {
                    self.summary.std_sum += sd.iter().map(|&v| f64::from(v)).sum::<f64>();
                    w.write_slab(start, planes, sd)?;
                }
            }
        }
        if let Some(w) = self.sinks.probabilities.as_mut() {
            w.write_slab(start, planes, mean)?;
        }
        if let Some((w, cp)) = self.sinks.set_sizes.as_mut() {
            let mut shape = vec![1, c, planes];
            shape.extend_from_slice(&self.spatial[1..]);
            let probs = Tensor::from_slice(mean, shape.as_slice(), &Device::Cpu)?;
            let mut origin = vec![start];
            origin.extend(std::iter::repeat_n(0, self.spatial.len() - 1));
            let sizes: Vec<u8> = cp
                .set_sizes_tile(&probs, &origin)?
                .flatten_all()?
                .to_vec1()?;
            for &s in &sizes {
                let s = usize::from(s);
                if self.summary.set_size_counts.len() <= s {
                    self.summary.set_size_counts.resize(s + 1, 0);
                }
                self.summary.set_size_counts[s] += 1;
            }
            let sizes: Vec<f32> = sizes.into_iter().map(f32::from).collect();
            w.write_slab(start, planes, &sizes)?;
        }
        self.summary.voxels += n as u64;
        Ok(())
    }
}

impl VolumeWriter for PredictionWriter {
    fn begin(&mut self, shape: &[usize]) -> dlsia_data::Result<()> {
        let expected = self.channels * if self.ensemble { 2 } else { 1 };
        if shape.first() != Some(&expected) {
            return Err(err(format!(
                "prediction slabs with {:?} channels, expected {expected}",
                shape.first()
            )));
        }
        self.spatial = shape[1..].to_vec();
        let one: Vec<usize> = std::iter::once(1)
            .chain(self.spatial.iter().copied())
            .collect();
        let all: Vec<usize> = std::iter::once(self.channels)
            .chain(self.spatial.iter().copied())
            .collect();
        let main_shape = match self.task {
            Task::Segmentation { .. } => &one,
            Task::Regression => &all,
        };
        self.sinks.main.begin(main_shape)?;
        if let Some(w) = self.sinks.std.as_mut() {
            w.begin(main_shape)?;
        }
        if let Some(w) = self.sinks.probabilities.as_mut() {
            w.begin(&all)?;
        }
        if let Some((w, _)) = self.sinks.set_sizes.as_mut() {
            w.begin(&one)?;
        }
        Ok(())
    }

    fn write_slab(&mut self, start: usize, planes: usize, data: &[f32]) -> dlsia_data::Result<()> {
        self.slab(start, planes, data).map_err(err)
    }

    fn finish(&mut self) -> dlsia_data::Result<()> {
        self.sinks.main.finish()?;
        if let Some(w) = self.sinks.std.as_mut() {
            w.finish()?;
        }
        if let Some(w) = self.sinks.probabilities.as_mut() {
            w.finish()?;
        }
        if let Some((w, _)) = self.sinks.set_sizes.as_mut() {
            w.finish()?;
        }
        Ok(())
    }
}
