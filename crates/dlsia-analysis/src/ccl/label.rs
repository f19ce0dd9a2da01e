//! Whole-volume labelling, with z-blocks scanned in parallel on rayon's current pool.

use rayon::prelude::*;

use super::connectivity::{Connectivity, NeighbourTable};
use super::labeling::Labeling;
use super::scan::{merge_seam, scan_block};
use super::union_find::UnionFind;
use super::{volume_dims, LabelValue};
use crate::error::Result;

/// Volumes smaller than this many voxels are labelled on one thread.
const MIN_VOXELS_PER_BLOCK: usize = 1 << 16;

/// Labels the connected components of `data` (shape `[h, w]` with `Four`/`Eight`, or
/// `[d, h, w]` with `Six`/`Eighteen`/`TwentySix`; x fastest). Uses rayon's current pool (run it
/// inside `ThreadPool::install` to choose the thread count); the result does not depend on it.
/// Memory: the input, 4 bytes per voxel of labels, and 4 bytes per provisional label.
pub fn connected_components<T: LabelValue>(
    data: &[T],
    shape: &[usize],
    connectivity: Connectivity,
) -> Result<Labeling> {
    // A few blocks per thread balance the load when some threads run slower (shared machines).
    let threads = rayon::current_num_threads().max(1);
    let wanted = if threads == 1 { 1 } else { 4 * threads };
    let blocks = wanted.min((data.len() / MIN_VOXELS_PER_BLOCK).max(1));
    label_in_blocks(data, shape, connectivity, blocks)
}

/// [`connected_components`] with the volume split into (at most) `blocks` z-blocks.
pub(crate) fn label_in_blocks<T: LabelValue>(
    data: &[T],
    shape: &[usize],
    connectivity: Connectivity,
    blocks: usize,
) -> Result<Labeling> {
    const OP: &str = "connected_components";
    let [d, h, w] = volume_dims(OP, shape, data.len(), connectivity)?;
    let plane = h * w;
    let mut labels = vec![0u32; data.len()];
    if data.is_empty() {
        return Ok(Labeling::new(labels, shape.to_vec(), 0));
    }
    let table = NeighbourTable::new(connectivity, h, w);
    // Split along z (2D images: one block).
    let blocks = blocks.clamp(1, d);
    let mut z_starts: Vec<usize> = (0..blocks).map(|b| b * d / blocks).collect();
    z_starts.push(d);

    let mut label_blocks: Vec<&mut [u32]> = Vec::with_capacity(blocks);
    let mut rest = &mut labels[..];
    for b in 0..blocks {
        let (head, tail) = rest.split_at_mut((z_starts[b + 1] - z_starts[b]) * plane);
        label_blocks.push(head);
        rest = tail;
    }
    let forests: Vec<Result<UnionFind>> = label_blocks
        .into_par_iter()
        .enumerate()
        .map(|(b, block)| {
            let (z0, z1) = (z_starts[b], z_starts[b + 1]);
            let mut uf = UnionFind::new();
            scan_block(
                &data[z0 * plane..z1 * plane],
                block,
                [z1 - z0, h, w],
                &table,
                &mut uf,
                true,
                OP,
            )?;
            Ok(uf)
        })
        .collect();

    // One label space: block b's local label l becomes offsets[b] + l.
    let mut offsets = Vec::with_capacity(blocks);
    let mut uf = UnionFind::new();
    for forest in forests {
        let forest = forest?;
        offsets.push((uf.len() - 1) as u32);
        if uf.len() - 1 + forest.len() > u32::MAX as usize {
            return Err(crate::error::Error::TooManyLabels {
                op: OP,
                limit: u32::MAX as u64 - 1,
            });
        }
        uf.append_shifted(&forest);
    }
    for b in 1..blocks {
        let z = z_starts[b];
        merge_seam(
            &data[(z - 1) * plane..z * plane],
            &labels[(z - 1) * plane..z * plane],
            offsets[b - 1],
            &data[z * plane..(z + 1) * plane],
            &labels[z * plane..(z + 1) * plane],
            offsets[b],
            [h, w],
            &table,
            &mut uf,
        );
    }
    let (final_table, n) = uf.renumber(|_| true);

    // Second pass: provisional → final, plane by plane in parallel, through a per-block table
    // whose entry 0 is the background (so the lookup needs no branch).
    let block_tables: Vec<Vec<u32>> = (0..blocks)
        .map(|b| {
            let lo = offsets[b] as usize + 1;
            let hi = offsets
                .get(b + 1)
                .map_or(final_table.len(), |&o| o as usize + 1);
            std::iter::once(0)
                .chain(final_table[lo..hi].iter().copied())
                .collect()
        })
        .collect();
    labels
        .par_chunks_mut(plane)
        .enumerate()
        .for_each(|(z, slice)| {
            let b = z_starts.partition_point(|&s| s <= z) - 1;
            let table = &block_tables[b][..];
            for l in slice.iter_mut() {
                *l = table[*l as usize];
            }
        });
    Ok(Labeling::new(labels, shape.to_vec(), n))
}
