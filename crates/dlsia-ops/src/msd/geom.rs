//! The geometry of one fused-block computation: a validated [`MsdSpec`] applied to an input of
//! a given batch size and spatial size, with the index plans of every dilation precomputed.

use std::collections::BTreeMap;

use super::config::MsdSpec;
use super::plan::{AxisPlan, ColumnPad, Pairs};
use crate::error::Result;
use crate::kernels::to3;

/// Index plans of one dilation.
#[derive(Debug, Clone)]
pub(crate) struct DilationPlan {
    /// Depth axis.
    pub d: AxisPlan,
    /// Height axis.
    pub h: AxisPlan,
    /// Column offset of every column tap, inside the padded row.
    pub col_shift: Vec<usize>,
    /// Column offset of every column tap for the adjoint: where tap `t` of padded-gradient row
    /// element `e` reads in a row padded by `2·pad`.
    pub adj_shift: Vec<usize>,
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
    /// Column padding (the largest reach of any dilation, clamped to the row length).
    pub col: ColumnPad,
}

impl Geom {
    /// The geometry for `n` images of spatial size `dims`; fails if the padding mode cannot
    /// serve the dilations at this size.
    pub(crate) fn new(spec: &MsdSpec, n: usize, dims: &[usize]) -> Result<Self> {
        spec.validate()?;
        spec.check_spatial(dims)?;
        let size = to3(dims, 1);
        let k = spec.kernel_size;
        let kernel = to3(&vec![k; spec.ndim], 1);
        let col = ColumnPad::new(size[2], spec.max_reach(), spec.padding);
        let mut index: BTreeMap<usize, usize> = BTreeMap::new();
        let mut plans = Vec::new();
        let taps = kernel.iter().product::<usize>();
        let mut units = Vec::with_capacity(spec.dilations.len());
        let mut w_off = 0;
        for (u, &dil) in spec.dilations.iter().enumerate() {
            let plan = *index.entry(dil).or_insert_with(|| {
                let col_shift = (0..kernel[2])
                    .map(|t| (col.pad as isize + col.offset(t, kernel[2], dil)) as usize)
                    .collect();
                let adj_shift = (0..kernel[2])
                    .map(|t| (col.pad as isize - col.offset(t, kernel[2], dil)) as usize)
                    .collect();
                plans.push(DilationPlan {
                    d: AxisPlan::new(size[0], kernel[0], dil, spec.padding),
                    h: AxisPlan::new(size[1], kernel[1], dil, spec.padding),
                    col_shift,
                    adj_shift,
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
            col,
        })
    }

    /// Elements of one channel plane.
    pub(crate) fn plane(&self) -> usize {
        self.size.iter().product()
    }
    /// Rows of one plane (`D·H`).
    pub(crate) fn rows(&self) -> usize {
        self.size[0] * self.size[1]
    }
    /// Taps of one kernel.
    pub(crate) fn taps(&self) -> usize {
        self.kernel.iter().product()
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

    /// Calls `f(source row, kernel row index)` for every source row read by output row `r`.
    #[inline]
    pub(crate) fn for_fwd_rows(&self, plan: usize, r: usize, mut f: impl FnMut(usize, usize)) {
        let p = &self.plans[plan];
        let (h, kh) = (self.size[1], self.kernel[1]);
        rows_of(&p.d.fwd[r / h], &p.h.fwd[r % h], h, kh, &mut f);
    }

    /// Calls `f(output row, kernel row index)` for every output row that reads source row `r`.
    #[inline]
    pub(crate) fn for_adj_rows(&self, plan: usize, r: usize, mut f: impl FnMut(usize, usize)) {
        let p = &self.plans[plan];
        let (h, kh) = (self.size[1], self.kernel[1]);
        rows_of(&p.d.adj[r / h], &p.h.adj[r % h], h, kh, &mut f);
    }
}

#[inline]
fn rows_of(d: &Pairs, h: &Pairs, hn: usize, kh: usize, f: &mut impl FnMut(usize, usize)) {
    for &(sd, td) in d {
        for &(sh, th) in h {
            f(sd * hn + sh, td * kh + th);
        }
    }
}
