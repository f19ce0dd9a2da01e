//! The geometry of one fused-block computation: a validated [`MsdSpec`] applied to an input of
//! a given batch size and spatial size, with the index plans of every dilation precomputed.

use std::collections::BTreeMap;

use super::config::MsdSpec;
use super::plan::{AxisPlan, Slab};
use crate::error::Result;
use crate::kernels::to3;

/// Index plans of one dilation.
#[derive(Debug, Clone)]
pub(crate) struct DilationPlan {
    /// Depth axis lists.
    pub d: AxisPlan,
    /// Flat slab offset of every `(row tap, column tap)` pair, `th·kw + tw`.
    pub hw: Vec<isize>,
}

/// One new channel ("unit") of the block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unit {
    /// Channel index in the buffer.
    pub channel: usize,
    /// Channels it reads: `0..prefix`.
    pub prefix: usize,
    /// Offset of its weights (`prefix × taps`) in the packed weight vector.
    pub w_off: usize,
    /// Index of its dilation plan.
    pub plan: usize,
}

/// Everything the kernels need to know about one call.
#[derive(Debug, Clone)]
pub(crate) struct Geom {
    /// The hyperparameters.
    pub spec: MsdSpec,
    /// Batch size.
    pub n: usize,
    /// Spatial size normalised to `[D, H, W]`.
    pub size: [usize; 3],
    /// Kernel taps per axis `[kd, kh, kw]`.
    pub kernel: [usize; 3],
    /// Channels of the buffer.
    pub channels: usize,
    /// The new channels, in order.
    pub units: Vec<Unit>,
    /// One plan per distinct dilation.
    pub plans: Vec<DilationPlan>,
    /// Padded layout of a slice.
    pub slab: Slab,
}

impl Geom {
    /// The geometry for `n` images of spatial size `dims`; fails if the padding mode cannot
    /// serve the dilations at this size.
    pub(crate) fn new(spec: &MsdSpec, n: usize, dims: &[usize]) -> Result<Self> {
        spec.validate()?;
        spec.check_spatial(dims)?;
        let size = to3(dims, 1);
        let kernel = to3(&vec![spec.kernel_size; spec.ndim], 1);
        let slab = Slab::new(
            size[1],
            size[2],
            spec.max_reach(),
            kernel[1] > 1,
            spec.padding,
        );
        let mut index: BTreeMap<usize, usize> = BTreeMap::new();
        let mut plans = Vec::new();
        let taps: usize = kernel.iter().product();
        let mut units = Vec::with_capacity(spec.dilations.len());
        let mut w_off = 0;
        for (u, &dil) in spec.dilations.iter().enumerate() {
            let plan = *index.entry(dil).or_insert_with(|| {
                let off = |t: usize, k: usize| (t as isize - (k / 2) as isize) * dil as isize;
                let mut hw = Vec::with_capacity(kernel[1] * kernel[2]);
                for th in 0..kernel[1] {
                    for tw in 0..kernel[2] {
                        hw.push(slab.tap(
                            slab.clamp_h(off(th, kernel[1])),
                            slab.clamp_w(off(tw, kernel[2])),
                        ));
                    }
                }
                plans.push(DilationPlan {
                    d: AxisPlan::new(size[0], kernel[0], dil, spec.padding),
                    hw,
                });
                plans.len() - 1
            });
            let prefix = spec.in_channels + (u / spec.width) * spec.width;
            units.push(Unit {
                channel: spec.in_channels + u,
                prefix,
                w_off,
                plan,
            });
            w_off += prefix * taps;
        }
        Ok(Geom {
            spec: spec.clone(),
            n,
            size,
            kernel,
            channels: spec.out_channels(),
            units,
            plans,
            slab,
        })
    }

    /// Elements of one channel plane.
    pub(crate) fn plane(&self) -> usize {
        self.size.iter().product()
    }
    /// Elements of one depth slice.
    pub(crate) fn slice(&self) -> usize {
        self.size[1] * self.size[2]
    }
    /// Taps of one kernel.
    pub(crate) fn taps(&self) -> usize {
        self.kernel.iter().product()
    }
    /// Taps of the row and column axes (`kh·kw`).
    pub(crate) fn hw_taps(&self) -> usize {
        self.kernel[1] * self.kernel[2]
    }
    /// Length of the packed weight vector.
    pub(crate) fn weight_len(&self) -> usize {
        self.units
            .last()
            .map_or(0, |u| u.w_off + u.prefix * self.taps())
    }
    /// Units of layer `i`.
    pub(crate) fn layer(&self, i: usize) -> &[Unit] {
        let w = self.spec.width;
        &self.units[i * w..(i + 1) * w]
    }
    /// Input channels of layer `i`.
    pub(crate) fn layer_prefix(&self, i: usize) -> usize {
        self.spec.in_channels + i * self.spec.width
    }
}
