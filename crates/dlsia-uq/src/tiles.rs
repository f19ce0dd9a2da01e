//! Streaming a predictor over a large image or volume tile by tile, so that class probabilities
//! exist for one tile at a time (only the input and a one-byte-per-pixel result are whole).

use candle_core::{DType, Tensor};
use indicatif::{ProgressBar, ProgressStyle};

use crate::conformal::{Calibrator, ConformalPredictor, CoverageReport};
use crate::error::{invalid_config, shape_error, Result};
use crate::predictor::Predictor;

/// A box of the spatial grid: where a tile starts and how large it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// First pixel, one entry per spatial axis.
    pub origin: Vec<usize>,
    /// Extent, one entry per spatial axis.
    pub size: Vec<usize>,
}

/// Non-overlapping tiles of at most `tile` pixels per axis (edge tiles are smaller). The
/// predictor must accept every tile size that occurs; fully convolutional networks such as
/// MSDNet and SMSNet do, size-constrained ones (TUNet) need `tile` to divide the image or the
/// overlapping quilting of `dlsia-data`.
///
/// ```
/// use dlsia_uq::Tiling;
///
/// let t = Tiling::new(vec![64, 64])?;
/// let regions = t.regions(&[100, 64])?;
/// assert_eq!(regions.len(), 2);
/// assert_eq!(regions[1].origin, vec![64, 0]);
/// assert_eq!(regions[1].size, vec![36, 64]);
/// # Ok::<(), dlsia_uq::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiling {
    tile: Vec<usize>,
    show_progress: bool,
}

impl Tiling {
    /// Tiles of `tile` pixels per spatial axis (all positive).
    pub fn new(tile: Vec<usize>) -> Result<Self> {
        if tile.is_empty() || tile.contains(&0) {
            return Err(invalid_config(
                "Tiling",
                format!("tile must hold one positive size per spatial axis, got {tile:?}"),
            ));
        }
        Ok(Self {
            tile,
            show_progress: false,
        })
    }

    /// Show a progress bar (one tick per tile) on standard error.
    pub fn with_progress(mut self, show: bool) -> Self {
        self.show_progress = show;
        self
    }

    /// The tiles covering a spatial extent, in row-major order.
    pub fn regions(&self, spatial: &[usize]) -> Result<Vec<Region>> {
        if spatial.len() != self.tile.len() {
            return Err(invalid_config(
                "Tiling",
                format!(
                    "a {}-D tile for a {}-D image {spatial:?}",
                    self.tile.len(),
                    spatial.len()
                ),
            ));
        }
        let counts: Vec<usize> = spatial
            .iter()
            .zip(&self.tile)
            .map(|(s, t)| s.div_ceil(*t))
            .collect();
        let total: usize = counts.iter().product();
        let mut out = Vec::with_capacity(total);
        for mut i in 0..total {
            let mut origin = vec![0; spatial.len()];
            let mut size = vec![0; spatial.len()];
            for a in (0..spatial.len()).rev() {
                let k = i % counts[a];
                i /= counts[a];
                origin[a] = k * self.tile[a];
                size[a] = self.tile[a].min(spatial[a] - origin[a]);
            }
            out.push(Region { origin, size });
        }
        Ok(out)
    }

    fn progress(&self, len: usize, msg: &'static str) -> ProgressBar {
        if !self.show_progress {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::new(len as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} tiles [{elapsed} < {eta}]")
        {
            pb.set_style(style);
        }
        pb.set_message(msg);
        pb
    }

    /// Runs `predictor` on every tile of `image` `(N, C_in, spatial…)` and hands each tile's
    /// probabilities and region to `f`.
    pub fn for_each_tile(
        &self,
        predictor: &dyn Predictor,
        image: &Tensor,
        mut f: impl FnMut(&Region, &Tensor) -> Result<()>,
    ) -> Result<()> {
        if image.rank() < 3 {
            return Err(shape_error(
                "Tiling",
                "an image (N, C_in, spatial…)",
                image.shape(),
            ));
        }
        let regions = self.regions(&image.dims()[2..])?;
        let pb = self.progress(regions.len(), "tiles");
        for r in &regions {
            let x = crop(image, r, 2)?;
            let p = predictor.predict_proba(&x)?;
            if p.dims()[2..] != r.size[..] {
                return Err(shape_error(
                    "Tiling",
                    format!("the predictor to keep the tile's spatial size {:?}", r.size),
                    p.shape(),
                ));
            }
            f(r, &p)?;
            pb.inc(1);
        }
        pb.finish_and_clear();
        Ok(())
    }

    /// Adds the labelled pixels of `image` to a calibrator, tile by tile.
    pub fn calibrate(
        &self,
        calibrator: &mut Calibrator,
        predictor: &dyn Predictor,
        image: &Tensor,
        labels: &Tensor,
    ) -> Result<()> {
        let label_axis = label_spatial_axis(image, labels)?;
        self.for_each_tile(predictor, image, |r, p| {
            calibrator.update_tile(p, &crop(labels, r, label_axis)?, &r.origin)
        })
    }

    /// The conformal set-size map `(N, spatial…)` (u8) of a whole image, tile by tile.
    pub fn set_sizes(
        &self,
        conformal: &ConformalPredictor,
        predictor: &dyn Predictor,
        image: &Tensor,
    ) -> Result<Tensor> {
        let dims = image.dims();
        let (n, spatial) = (dims[0], dims[2..].to_vec());
        let pixels: usize = spatial.iter().product();
        let mut out = vec![0u8; n * pixels];
        self.for_each_tile(predictor, image, |r, p| {
            let sizes = conformal.set_sizes_tile(p, &r.origin)?;
            let v = sizes.flatten_all()?.to_vec1::<u8>()?;
            scatter(&v, n, r, &spatial, &mut out);
            Ok(())
        })?;
        let mut shape = vec![n];
        shape.extend_from_slice(&spatial);
        Ok(Tensor::from_vec(out, shape, image.device())?)
    }

    /// Coverage of the conformal sets on the labelled pixels of `image`, tile by tile.
    pub fn coverage(
        &self,
        conformal: &ConformalPredictor,
        predictor: &dyn Predictor,
        image: &Tensor,
        labels: &Tensor,
        ignore: i64,
    ) -> Result<CoverageReport> {
        let label_axis = label_spatial_axis(image, labels)?;
        let mut report = CoverageReport::new(conformal.num_classes());
        self.for_each_tile(predictor, image, |r, p| {
            let part =
                conformal.coverage_tile(p, &crop(labels, r, label_axis)?, ignore, &r.origin)?;
            report.merge(&part)
        })?;
        Ok(report)
    }

    /// The arg-max labels `(N, spatial…)` (u32) of a whole image, tile by tile.
    pub fn argmax(&self, predictor: &dyn Predictor, image: &Tensor) -> Result<Tensor> {
        let dims = image.dims();
        let (n, spatial) = (dims[0], dims[2..].to_vec());
        let pixels: usize = spatial.iter().product();
        let mut out = vec![0u32; n * pixels];
        self.for_each_tile(predictor, image, |r, p| {
            let v = p
                .argmax_keepdim(1)?
                .flatten_all()?
                .to_dtype(DType::U32)?
                .to_vec1::<u32>()?;
            scatter(&v, n, r, &spatial, &mut out);
            Ok(())
        })?;
        let mut shape = vec![n];
        shape.extend_from_slice(&spatial);
        Ok(Tensor::from_vec(out, shape, image.device())?)
    }
}

/// The tensor axis of the first spatial axis of `labels`: 1 for `(N, spatial…)`, 2 for
/// `(N, 1, spatial…)`.
fn label_spatial_axis(image: &Tensor, labels: &Tensor) -> Result<usize> {
    let sp = &image.dims()[2..];
    let d = labels.dims();
    if d.len() == sp.len() + 1 && d[0] == image.dim(0)? && &d[1..] == sp {
        Ok(1)
    } else if d.len() == sp.len() + 2 && d[0] == image.dim(0)? && d[1] == 1 && &d[2..] == sp {
        Ok(2)
    } else {
        Err(shape_error(
            "Tiling",
            format!("labels (N, spatial…) matching the image {:?}", image.dims()),
            labels.shape(),
        ))
    }
}

/// The part of `t` inside `r`, whose spatial axes start at tensor axis `first`.
fn crop(t: &Tensor, r: &Region, first: usize) -> Result<Tensor> {
    let mut x = t.clone();
    for (a, (&o, &s)) in r.origin.iter().zip(&r.size).enumerate() {
        x = x.narrow(first + a, o, s)?;
    }
    Ok(x.contiguous()?)
}

/// Writes a tile's per-pixel values `(N, tile…)` into the whole-image buffer `(N, spatial…)`.
fn scatter<T: Copy>(tile: &[T], n: usize, r: &Region, spatial: &[usize], out: &mut [T]) {
    let tile_pixels: usize = r.size.iter().product();
    let pixels: usize = spatial.iter().product();
    let rank = spatial.len();
    for b in 0..n {
        for s in 0..tile_pixels {
            let mut rem = s;
            let mut g = 0;
            let mut stride = 1;
            for a in (0..rank).rev() {
                let local = rem % r.size[a];
                rem /= r.size[a];
                g += (local + r.origin[a]) * stride;
                stride *= spatial[a];
            }
            out[b * pixels + g] = tile[b * tile_pixels + s];
        }
    }
}
