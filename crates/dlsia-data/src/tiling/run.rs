//! [`run_tiled`]: read windows, run a closure on each batch, blend and stream the results out;
//! and the in-memory pair [`extract_windows`] / [`stitch_windows`].

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};

use super::stitch::Stitcher;
use super::stream::{ArrayReader, MemoryWriter, VolumeReader, VolumeWriter};
use super::tiler::{TileConfig, Tiler, Window};
use crate::error::{invalid, shape_err, Error, Result};

/// What a tiled pass did.
#[derive(Debug, Clone, PartialEq)]
pub struct TileStats {
    /// Windows processed.
    pub windows: usize,
    /// Batches handed to the closure.
    pub batches: usize,
    /// Voxels in the input volume (spatial only).
    pub voxels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

fn read_batch<R: VolumeReader>(
    reader: &mut R,
    tiler: &Tiler,
    batch: &[Window],
    channels: usize,
) -> Result<Vec<f32>> {
    let wl: usize = tiler.window().iter().product::<usize>() * channels;
    let mut buf = vec![0f32; wl * batch.len()];
    for (w, chunk) in batch.iter().zip(buf.chunks_mut(wl)) {
        reader.read_region(&w.start, tiler.window(), chunk)?;
    }
    Ok(buf)
}

fn progress(total: usize, on: bool) -> ProgressBar {
    if !on {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} windows [{elapsed} < {eta}] {msg}")
    {
        pb.set_style(style);
    }
    pb
}

/// Runs `f` over the whole `(C_in, spatial..)` volume of `reader` in overlapping windows and
/// writes the blended `(C_out, spatial..)` result to `writer`, slab by slab.
///
/// `f` receives batches `(B, C_in, window..)` on `device` and must return `(B, C_out, window..)`
/// (any float dtype); `C_out` may differ from `C_in` (class probabilities from one image
/// channel). Windows are read on a background thread while `f` runs. Memory is bounded by the
/// batch plus `C_out × window[0]` planes of output, whatever the volume's depth.
///
/// ```
/// use candle_core::Device;
/// use dlsia_data::tiling::{run_tiled, ArrayReader, MemoryWriter, TileConfig};
/// let mut reader = ArrayReader::new(vec![1, 20, 30], (0..600).map(|v| v as f32).collect())?;
/// let mut writer = MemoryWriter::new();
/// run_tiled(&mut reader, &mut writer, &TileConfig::new(8, 6, 0), &Device::Cpu, |x| Ok(x.clone()))?;
/// assert!((writer.data()[599] - 599.0).abs() < 1e-3);
/// # Ok::<(), dlsia_data::Error>(())
/// ```
pub fn run_tiled<R, W, F>(
    reader: &mut R,
    writer: &mut W,
    config: &TileConfig,
    device: &Device,
    mut f: F,
) -> Result<TileStats>
where
    R: VolumeReader + Send,
    W: VolumeWriter,
    F: FnMut(&Tensor) -> Result<Tensor>,
{
    let t0 = Instant::now();
    let shape = reader.shape();
    if shape.len() < 2 {
        return Err(shape_err(
            "run_tiled",
            "a reader of shape (C, spatial..)",
            &shape,
        ));
    }
    let c_in = shape[0];
    let tiler = Tiler::new(&shape[1..], config)?;
    let batches: Vec<Vec<Window>> = tiler.batches().collect();
    let pb = progress(tiler.len(), config.progress);
    let mut win_shape = vec![0usize, c_in];
    win_shape.extend(tiler.window());
    let mut stitcher = Stitcher::new(&tiler, &mut *writer);
    let n_batches = batches.len();

    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<f32>>>(1);
        let tiler_ref = &tiler;
        let batches_ref = &batches;
        let reader_thread = scope.spawn(move || {
            for b in batches_ref {
                let r = read_batch(reader, tiler_ref, b, c_in);
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    return;
                }
            }
        });
        for b in &batches {
            let data = match rx.recv() {
                Ok(r) => r?,
                Err(_) => {
                    return Err(Error::Worker("the window reader thread stopped".into()));
                }
            };
            let mut ws = win_shape.clone();
            ws[0] = b.len();
            let x = Tensor::from_vec(data, ws.as_slice(), device)?;
            let y = f(&x)?;
            let yd = y.dims();
            if yd.len() != ws.len() || yd[0] != b.len() || yd[2..] != ws[2..] {
                return Err(shape_err(
                    "run_tiled (closure output)",
                    format!("(B={}, C_out, window {:?})", b.len(), tiler.window()),
                    yd,
                ));
            }
            let y: Vec<f32> = y.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
            let per = y.len() / b.len();
            for (w, chunk) in b.iter().zip(y.chunks(per)) {
                stitcher.add(w, chunk)?;
            }
            pb.inc(b.len() as u64);
        }
        drop(rx);
        reader_thread
            .join()
            .map_err(|_| Error::Worker("the window reader thread panicked".into()))
    })?;
    let out_channels = stitcher.channels();
    stitcher.finish()?;
    pb.finish_and_clear();
    Ok(TileStats {
        windows: tiler.len(),
        batches: n_batches,
        voxels: shape[1..].iter().product(),
        out_channels,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Cuts a `(C, spatial..)` tensor into windows: returns `(windows (N, C, window..), tiler)`; the
/// tiler gives each window's position (`tiler.window_at(i)`).
pub fn extract_windows(volume: &Tensor, config: &TileConfig) -> Result<(Tensor, Tiler)> {
    let d = volume.dims();
    if d.len() < 2 {
        return Err(shape_err("extract_windows", "(C, spatial..)", d));
    }
    let tiler = Tiler::new(&d[1..], config)?;
    let mut reader = ArrayReader::from_tensor(volume)?;
    let all: Vec<Window> = tiler.windows().collect();
    let data = read_batch(&mut reader, &tiler, &all, d[0])?;
    let mut shape = vec![all.len(), d[0]];
    shape.extend(tiler.window());
    Ok((
        Tensor::from_vec(data, shape.as_slice(), volume.device())?,
        tiler,
    ))
}

/// Blends window results `(N, C_out, window..)` (in the tiler's order) back into a
/// `(C_out, spatial..)` tensor.
pub fn stitch_windows(windows: &Tensor, tiler: &Tiler) -> Result<Tensor> {
    let d = windows.dims();
    if d.len() != tiler.shape().len() + 2 || d[0] != tiler.len() || d[2..] != *tiler.window() {
        return Err(shape_err(
            "stitch_windows",
            format!("({}, C_out, {:?})", tiler.len(), tiler.window()),
            d,
        ));
    }
    let v: Vec<f32> = windows.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let per = v.len() / d[0];
    if per == 0 {
        return Err(invalid("stitch_windows", "windows have no channels"));
    }
    let mut stitcher = Stitcher::new(tiler, MemoryWriter::new());
    for (w, chunk) in tiler.windows().zip(v.chunks(per)) {
        stitcher.add(&w, chunk)?;
    }
    stitcher.finish()?.to_tensor(windows.device())
}
