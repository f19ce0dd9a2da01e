//! Labelling volumes larger than memory, slab by slab.
//!
//! The volume is read twice through the caller's reader closure, one slab of whole planes at a
//! time. The first pass scans each slab, merges it with the previous slab's last plane and
//! grows one union-find over all provisional labels (4 bytes each, plus 8 for a voxel count when
//! dusting); the second pass scans each slab again (the scan is deterministic, so the provisional
//! labels are the same), maps them to final labels and hands the slab to the writer closure.
//! Memory: two slabs' worth of input and labels plus the union-find; the output is identical to
//! [`connected_components`](super::connected_components) on the whole volume.

use indicatif::{ProgressBar, ProgressStyle};

use super::connectivity::{Connectivity, NeighbourTable};
use super::scan::{merge_seam, scan_block};
use super::union_find::UnionFind;
use super::LabelValue;
use crate::error::{invalid, Error, Result};

/// Settings for [`label_slabs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlabOptions {
    /// A 3D connectivity (`Six`, `Eighteen` or `TwentySix`).
    pub connectivity: Connectivity,
    /// How many planes a slab holds (the last slab may hold fewer).
    pub slab_depth: usize,
    /// Components with fewer voxels become background (0 or 1 keeps all).
    pub min_voxels: u64,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl SlabOptions {
    /// 26-connected, slabs of `slab_depth` planes, no dusting, no progress bar.
    pub fn new(slab_depth: usize) -> Self {
        Self {
            connectivity: Connectivity::TwentySix,
            slab_depth,
            min_voxels: 0,
            progress: false,
        }
    }
}

/// What [`label_slabs`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlabLabeling {
    /// The number of components written (after dusting).
    pub n_components: u32,
    /// Voxel count per final label (`[0]`: background, dusted voxels included).
    pub voxel_counts: Vec<u64>,
    /// How many provisional labels the union-find held (its memory is 4 bytes each).
    pub provisional_labels: usize,
}

/// Labels a `[d, h, w]` volume slab by slab. `read(z0, buf)` must fill `buf` with planes
/// `z0..z0 + buf.len() / (h * w)` (x fastest) and is called twice per slab, with the same
/// data both times; `write(z0, labels)` receives the final labels of those planes, in order.
/// Errors from either closure are passed through as [`Error::Callback`].
///
/// ```
/// use dlsia_analysis::ccl::{label_slabs, SlabOptions, StatisticsBuilder};
/// // A 4×2×2 volume read two planes at a time (a file or a Zarr array in real use).
/// let volume = [1u8, 1, 0, 0,  0, 1, 0, 0,  0, 0, 0, 2,  0, 0, 2, 2];
/// let mut out = vec![0u32; 16];
/// let mut stats = None;
/// let result = label_slabs(
///     [4, 2, 2],
///     &SlabOptions::new(2),
///     |z0, buf: &mut [u8]| {
///         buf.copy_from_slice(&volume[z0 * 4..z0 * 4 + buf.len()]);
///         Ok::<(), std::io::Error>(())
///     },
///     |z0, labels| {
///         // Statistics can be gathered as the slabs stream past.
///         let b = stats.get_or_insert_with(|| StatisticsBuilder::new(0, [2, 2]));
///         b.add_slab(z0, labels).expect("whole planes");
///         out[z0 * 4..z0 * 4 + labels.len()].copy_from_slice(labels);
///         Ok(())
///     },
/// )
/// .unwrap();
/// assert_eq!(result.n_components, 2);
/// assert_eq!(out, [1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 2, 2]);
/// assert_eq!(stats.unwrap().finish().components[1].voxel_count, 3);
/// ```
pub fn label_slabs<T, E, R, W>(
    shape: [usize; 3],
    options: &SlabOptions,
    mut read: R,
    mut write: W,
) -> Result<SlabLabeling>
where
    T: LabelValue,
    E: std::fmt::Display,
    R: FnMut(usize, &mut [T]) -> std::result::Result<(), E>,
    W: FnMut(usize, &[u32]) -> std::result::Result<(), E>,
{
    const OP: &str = "label_slabs";
    let [d, h, w] = shape;
    if options.connectivity.is_2d() {
        return Err(invalid(
            OP,
            format!(
                "{:?} is a 2D connectivity; slabs need Six, Eighteen or TwentySix",
                options.connectivity
            ),
        ));
    }
    if options.slab_depth == 0 {
        return Err(invalid(OP, "slab_depth must be at least 1 plane"));
    }
    let plane = h
        .checked_mul(w)
        .ok_or_else(|| invalid(OP, format!("plane {h}×{w} overflows usize")))?;
    let slab_len = plane
        .checked_mul(options.slab_depth.min(d.max(1)))
        .ok_or_else(|| invalid(OP, "slab_depth × h × w overflows usize"))?;
    let table = NeighbourTable::new(options.connectivity, h, w);
    let slabs: Vec<(usize, usize)> = (0..d)
        .step_by(options.slab_depth)
        .map(|z0| (z0, (z0 + options.slab_depth).min(d)))
        .collect();
    let dusting = options.min_voxels > 1;
    let bar = if options.progress {
        let b = ProgressBar::new(2 * slabs.len() as u64);
        b.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} slabs {elapsed}")
                .expect("static template is valid"),
        );
        b.set_message("labelling");
        b
    } else {
        ProgressBar::hidden()
    };
    let read_err = |e: E| Error::Callback {
        op: OP,
        which: "reader",
        msg: e.to_string(),
    };

    let mut input = vec![T::default(); slab_len];
    let mut labels = vec![0u32; slab_len];
    let mut prev_input = vec![T::default(); plane];
    let mut prev_labels = vec![0u32; plane];
    let mut uf = UnionFind::new();
    let mut counts: Vec<u64> = vec![0];
    let mut offsets = Vec::with_capacity(slabs.len());
    let mut sizes = Vec::with_capacity(slabs.len());

    // Pass 1: equivalences over the whole volume.
    for (s, &(z0, z1)) in slabs.iter().enumerate() {
        let n = (z1 - z0) * plane;
        let (inp, lab) = (&mut input[..n], &mut labels[..n]);
        read(z0, inp).map_err(read_err)?;
        let mut local = UnionFind::new();
        scan_block(inp, lab, [z1 - z0, h, w], &table, &mut local, false, OP)?;
        let offset = (uf.len() - 1) as u32;
        if uf.len() - 1 + local.len() > u32::MAX as usize {
            return Err(Error::TooManyLabels {
                op: OP,
                limit: u32::MAX as u64 - 1,
            });
        }
        uf.append_shifted(&local);
        if s > 0 {
            merge_seam(
                &prev_input,
                &prev_labels,
                offsets[s - 1],
                &inp[..plane],
                &lab[..plane],
                offset,
                [h, w],
                &table,
                &mut uf,
            );
        }
        if dusting {
            counts.resize(uf.len(), 0);
            for &l in lab.iter() {
                if l != 0 {
                    counts[(offset + l) as usize] += 1;
                }
            }
        }
        prev_input.copy_from_slice(&inp[n - plane..]);
        prev_labels.copy_from_slice(&lab[n - plane..]);
        offsets.push(offset);
        sizes.push(local.len());
        bar.inc(1);
    }

    uf.flatten();
    let provisional_labels = uf.len() - 1;
    let (final_table, n_components) = if dusting {
        for i in 1..uf.len() {
            let r = uf.parent[i] as usize;
            if r != i {
                counts[r] += counts[i];
            }
        }
        uf.renumber(|r| counts[r] >= options.min_voxels)
    } else {
        uf.renumber(|_| true)
    };

    // Pass 2: the same scans again, written out with final labels.
    bar.set_message("writing");
    let mut voxel_counts = vec![0u64; n_components as usize + 1];
    for (s, &(z0, z1)) in slabs.iter().enumerate() {
        let n = (z1 - z0) * plane;
        let (inp, lab) = (&mut input[..n], &mut labels[..n]);
        read(z0, inp).map_err(read_err)?;
        let mut local = UnionFind::new();
        scan_block(inp, lab, [z1 - z0, h, w], &table, &mut local, false, OP)?;
        if local.len() != sizes[s] {
            return Err(invalid(
                OP,
                format!(
                    "the reader returned different data for planes {z0}..{z1} on the second pass \
                     ({} provisional labels instead of {}); it must be repeatable",
                    local.len() - 1,
                    sizes[s] - 1
                ),
            ));
        }
        let off = offsets[s] as usize;
        for l in lab.iter_mut() {
            if *l != 0 {
                *l = final_table[off + *l as usize];
            }
            voxel_counts[*l as usize] += 1;
        }
        write(z0, lab).map_err(|e| Error::Callback {
            op: OP,
            which: "writer",
            msg: e.to_string(),
        })?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(SlabLabeling {
        n_components,
        voxel_counts,
        provisional_labels,
    })
}
