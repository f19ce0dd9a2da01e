//! [`Stitcher`]: blends window results into a ring buffer one window-depth deep and flushes
//! finished slabs to a [`VolumeWriter`], so memory is `C_out × window[0] × (plane)` whatever the
//! volume's depth.

use rayon::prelude::*;

use super::stream::VolumeWriter;
use super::tiler::{Tiler, Window};
use crate::error::{invalid, Result};

/// Streaming accumulator of weighted window results.
pub struct Stitcher<'t, W: VolumeWriter> {
    tiler: &'t Tiler,
    writer: W,
    channels: usize,
    plane_len: usize,
    depth: usize,
    ring: Vec<f32>,
    base: usize,
    row: usize,
    inv_rest: Vec<f32>,
    win_len: usize,
}

impl<'t, W: VolumeWriter> Stitcher<'t, W> {
    /// A stitcher for the windows of `tiler`, writing to `writer`. The output channel count is
    /// taken from the first window added.
    pub fn new(tiler: &'t Tiler, writer: W) -> Self {
        let shape = tiler.shape();
        let plane_len = shape[1..].iter().product();
        // 1 / (product of the per-axis weight sums over axes 1..) for every in-plane position.
        let mut inv_rest = vec![1f32; plane_len];
        let n = shape.len();
        if n > 1 {
            let mut idx = vec![0usize; n - 1];
            for v in inv_rest.iter_mut() {
                let mut w = 1f64;
                for (k, &i) in idx.iter().enumerate() {
                    w *= tiler.norm(k + 1)[i] as f64;
                }
                *v = (1.0 / w) as f32;
                for k in (0..n - 1).rev() {
                    idx[k] += 1;
                    if idx[k] < shape[k + 1] {
                        break;
                    }
                    idx[k] = 0;
                }
            }
        }
        Self {
            tiler,
            writer,
            channels: 0,
            plane_len,
            depth: tiler.window()[0],
            ring: Vec::new(),
            base: 0,
            row: 0,
            inv_rest,
            win_len: tiler.window().iter().product(),
        }
    }

    /// Output channels (0 before the first window).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Adds the result of one window, laid out `(C_out, window..)`. Windows must arrive in the
    /// tiler's order (non-decreasing start on the first axis).
    pub fn add(&mut self, window: &Window, data: &[f32]) -> Result<()> {
        if self.channels == 0 {
            if data.is_empty() || data.len() % self.win_len != 0 {
                return Err(invalid(
                    "Stitcher::add",
                    format!(
                        "window result has {} values, not a positive multiple of the window size {:?}",
                        data.len(),
                        self.tiler.window()
                    ),
                ));
            }
            self.channels = data.len() / self.win_len;
            self.ring = vec![0f32; self.depth * self.channels * self.plane_len];
            let mut shape = vec![self.channels];
            shape.extend(self.tiler.shape());
            self.writer.begin(&shape)?;
        }
        if data.len() != self.channels * self.win_len {
            return Err(invalid(
                "Stitcher::add",
                format!(
                    "window result has {} values; expected {} channels × window {:?}",
                    data.len(),
                    self.channels,
                    self.tiler.window()
                ),
            ));
        }
        let g0 = window.grid[0];
        if g0 < self.row {
            return Err(invalid(
                "Stitcher::add",
                "windows must arrive sorted by their start on the first axis (the tiler's order)",
            ));
        }
        if g0 > self.row {
            let upto = self.tiler.starts()[0][g0];
            self.flush_to(upto)?;
            self.row = g0;
        }
        self.accumulate(window, data);
        Ok(())
    }

    fn accumulate(&mut self, window: &Window, data: &[f32]) {
        let tiler = self.tiler;
        let shape = tiler.shape();
        let win = tiler.window();
        let n = shape.len();
        let z0 = window.start[0];
        let wz = tiler.weights(0, window.grid[0]);
        // Rows of the in-plane box: (offset in plane, offset in window plane, row weight).
        let (rows, wx): (Vec<(usize, usize, f32)>, Vec<f32>) = if n == 1 {
            (vec![(0, 0, 1.0)], vec![1.0])
        } else {
            let last = n - 1;
            let wx = tiler.weights(last, window.grid[last]).to_vec();
            let mut rows = Vec::new();
            let outer: usize = win[1..last].iter().product();
            let mut idx = vec![0usize; last.saturating_sub(1)];
            for r in 0..outer {
                let mut off = window.start[last];
                let mut stride = shape[last];
                let mut w = 1f32;
                for k in (1..last).rev() {
                    let i = idx[k - 1];
                    off += (window.start[k] + i) * stride;
                    stride *= shape[k];
                    w *= tiler.weights(k, window.grid[k])[i];
                }
                rows.push((off, r * win[last], w));
                for k in (0..idx.len()).rev() {
                    idx[k] += 1;
                    if idx[k] < win[k + 1] {
                        break;
                    }
                    idx[k] = 0;
                }
            }
            (rows, wx)
        };
        let inner = wx.len();
        let depth = self.depth;
        let channels = self.channels;
        let plane_len = self.plane_len;
        let in_plane = self.win_len / depth;
        self.ring
            .par_chunks_mut(channels * plane_len)
            .enumerate()
            .for_each(|(slot, chunk)| {
                let t = (slot + depth - z0 % depth) % depth;
                let w0 = wz[t];
                if w0 == 0.0 {
                    return;
                }
                for c in 0..channels {
                    let dst = &mut chunk[c * plane_len..(c + 1) * plane_len];
                    let src = &data[(c * depth + t) * in_plane..(c * depth + t + 1) * in_plane];
                    for &(po, so, wr) in &rows {
                        let w = w0 * wr;
                        if w == 0.0 {
                            continue;
                        }
                        let d = &mut dst[po..po + inner];
                        let s = &src[so..so + inner];
                        for ((dv, &sv), &xv) in d.iter_mut().zip(s).zip(&wx) {
                            *dv += sv * (w * xv);
                        }
                    }
                }
            });
    }

    /// Normalises and writes planes `[base, upto)` in groups of a few planes (to keep the
    /// output buffer small), then clears their ring slots.
    fn flush_to(&mut self, upto: usize) -> Result<()> {
        const GROUP: usize = 8;
        let mut a = self.base;
        while a < upto {
            let b = (a + GROUP).min(upto);
            self.flush_group(a, b)?;
            a = b;
        }
        self.base = self.base.max(upto);
        Ok(())
    }

    fn flush_group(&mut self, a: usize, b: usize) -> Result<()> {
        let planes = b - a;
        let (c, pl, depth) = (self.channels, self.plane_len, self.depth);
        let norm0 = self.tiler.norm(0);
        let mut out = vec![0f32; c * planes * pl];
        out.par_chunks_mut(pl).enumerate().for_each(|(k, o)| {
            let (ch, i) = (k / planes, k % planes);
            let p = a + i;
            let slot = p % depth;
            let src = &self.ring[(slot * c + ch) * pl..(slot * c + ch + 1) * pl];
            let inv0 = 1.0 / norm0[p];
            for ((ov, &sv), &r) in o.iter_mut().zip(src).zip(&self.inv_rest) {
                *ov = sv * (inv0 * r);
            }
        });
        for p in a..b {
            let slot = p % depth;
            self.ring[slot * c * pl..(slot + 1) * c * pl].fill(0.0);
        }
        self.writer.write_slab(a, planes, &out)
    }

    /// Flushes the remaining planes, finishes the writer and returns it.
    pub fn finish(mut self) -> Result<W> {
        if self.channels == 0 {
            return Err(invalid("Stitcher::finish", "no window was added"));
        }
        let end = self.tiler.shape()[0];
        self.flush_to(end)?;
        self.writer.finish()?;
        Ok(self.writer)
    }
}
