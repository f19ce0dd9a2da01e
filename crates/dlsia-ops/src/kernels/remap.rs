//! Gathers and scatter-adds through per-axis index maps: the kernels of explicit padding
//! (all modes) and nearest-neighbour upsampling.
//!
//! Output position `(d, h, w)` reads input position `(map_d[d], map_h[h], map_w[w])`, or zero
//! when any map entry is `None`. The backward pass adds each output gradient to the input
//! position it read, so inputs read several times (reflections, upsampling) sum their
//! gradients.

use rayon::prelude::*;

use super::{volume, Real};

/// Per-axis index maps from output to input positions, normalised to three axes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Remap {
    /// Number of spatial axes of the caller's tensors.
    pub ndim: usize,
    /// Number of `(batch, channel)` planes.
    pub planes: usize,
    /// Input spatial size.
    pub input: [usize; 3],
    /// For each axis and output position, the input position read (or `None` for zero).
    pub maps: [Vec<Option<usize>>; 3],
}

impl Remap {
    /// Output spatial size.
    pub(crate) fn output(&self) -> [usize; 3] {
        [self.maps[0].len(), self.maps[1].len(), self.maps[2].len()]
    }

    /// The maps as one `i32` array `[map_d | map_h | map_w]`, −1 for a zero (the CUDA
    /// kernels' format).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn packed_maps(&self) -> Result<Vec<i32>, std::num::TryFromIntError> {
        self.maps
            .iter()
            .flatten()
            .map(|m| m.map_or(Ok(-1), i32::try_from))
            .collect()
    }

    /// The inverse maps as compressed rows per axis (the CUDA adjoint's format): for axis `a`
    /// at offset `start[a]`, `input[a] + 1` row offsets, then the output coordinates that read
    /// each input coordinate, ascending.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn inverse_maps(&self) -> Result<(Vec<i32>, [usize; 3]), std::num::TryFromIntError> {
        let mut out = Vec::new();
        let mut start = [0; 3];
        for (a, map) in self.maps.iter().enumerate() {
            start[a] = out.len();
            let mut rows: Vec<Vec<i32>> = vec![Vec::new(); self.input[a]];
            for (o, m) in map.iter().enumerate() {
                if let Some(i) = m {
                    rows[*i].push(i32::try_from(o)?);
                }
            }
            let mut off = 0usize;
            out.push(0);
            for row in &rows {
                off += row.len();
                out.push(i32::try_from(off)?);
            }
            out.extend(rows.into_iter().flatten());
        }
        Ok((out, start))
    }
}

/// `y[p, d, h, w] = x[p, map_d[d], map_h[h], map_w[w]]` (zero where a map is `None`).
pub(crate) fn gather<T: Real>(r: &Remap, x: &[T]) -> Vec<T> {
    let (ip, out) = (volume(&r.input), r.output());
    let op = volume(&out);
    let mut y = super::zeroed::<T>(r.planes * op);
    if op == 0 || ip == 0 {
        return y;
    }
    let (ih, iw) = (r.input[1], r.input[2]);
    y.par_chunks_mut(op)
        .zip(x.par_chunks(ip))
        .for_each(|(yp, xp)| {
            for (od, md) in r.maps[0].iter().enumerate() {
                for (oh, mh) in r.maps[1].iter().enumerate() {
                    let yrow = &mut yp[(od * out[1] + oh) * out[2]..][..out[2]];
                    let (Some(d), Some(h)) = (md, mh) else {
                        continue; // already zero
                    };
                    let xrow = &xp[(d * ih + h) * iw..][..iw];
                    for (y, mw) in yrow.iter_mut().zip(&r.maps[2]) {
                        if let Some(w) = mw {
                            *y = xrow[*w];
                        }
                    }
                }
            }
        });
    y
}

/// The adjoint of [`gather`]: `dx[p, map(d, h, w)] += dy[p, d, h, w]`.
pub(crate) fn scatter_add<T: Real>(r: &Remap, dy: &[T]) -> Vec<T> {
    let (ip, out) = (volume(&r.input), r.output());
    let op = volume(&out);
    let mut dx = super::zeroed::<T>(r.planes * ip);
    if op == 0 || ip == 0 {
        return dx;
    }
    let (ih, iw) = (r.input[1], r.input[2]);
    dx.par_chunks_mut(ip)
        .zip(dy.par_chunks(op))
        .for_each(|(dxp, dyp)| {
            for (od, md) in r.maps[0].iter().enumerate() {
                for (oh, mh) in r.maps[1].iter().enumerate() {
                    let (Some(d), Some(h)) = (md, mh) else {
                        continue;
                    };
                    let yrow = &dyp[(od * out[1] + oh) * out[2]..][..out[2]];
                    let xrow = &mut dxp[(d * ih + h) * iw..][..iw];
                    for (g, mw) in yrow.iter().zip(&r.maps[2]) {
                        if let Some(w) = mw {
                            xrow[*w] += *g;
                        }
                    }
                }
            }
        });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_and_inverse_maps_list_readers_in_order() {
        let r = Remap {
            ndim: 1,
            planes: 1,
            input: [1, 1, 3],
            maps: [
                vec![Some(0)],
                vec![Some(0)],
                vec![Some(1), Some(0), None, Some(1), Some(2)],
            ],
        };
        let (inv, start) = r.inverse_maps().unwrap();
        // Axes d and h: offsets [0, 1], reader [0]. Axis w: offsets [0, 1, 3, 4]; input 0 is
        // read by output 1, input 1 by outputs 0 and 3, input 2 by output 4.
        assert_eq!(start, [0, 3, 6]);
        assert_eq!(inv, [0, 1, 0, 0, 1, 0, 0, 1, 3, 4, 1, 0, 3, 4]);
        assert_eq!(r.packed_maps().unwrap(), [0, 0, 1, 0, -1, 1, 2]);
        // The inverse is the adjoint: scatter_add through the maps equals the CSR gather.
        let dy = [1.0f64, 10.0, 100.0, 1000.0, 10000.0];
        let dx = scatter_add(&r, &dy);
        assert_eq!(dx, [10.0, 1001.0, 10000.0]);
    }
}
