//! The project's one plotting module: small, generic functions that write a file.
//!
//! * SVG (plotters): [`training_curves_svg`] (named series, optional log y),
//!   [`histogram_svg`], [`scatter_svg`] (points coloured by class), [`hammer_svg`].
//! * PNG (the `image` crate): [`segmentation_overlay_png`] (image + labels),
//!   [`heatmap_png`] (probability / uncertainty maps with a colour bar), [`hammer_png`].
//!
//! A curve is a [`Series`] (name + `&[(f64, f64)]`); an image is `&[f32]` with `(h, w)`.
//!
//! ```no_run
//! use dlsia_analysis::plot::{training_curves_svg, Series};
//! let train = [(1.0, 0.9), (2.0, 0.5), (3.0, 0.3)];
//! let val = [(1.0, 1.0), (2.0, 0.7), (3.0, 0.6)];
//! training_curves_svg(
//!     "loss.svg",
//!     "MSDNet training",
//!     ("epoch", "loss"),
//!     &[Series { name: "train", points: &train }, Series { name: "validation", points: &val }],
//!     true,
//! )?;
//! # Ok::<(), dlsia_analysis::Error>(())
//! ```

mod charts;
mod colormap;
mod hammer;
mod images;
mod raster;

pub use charts::{histogram_svg, scatter_svg, training_curves_svg, Series};
pub use colormap::{class_color, Colormap, CLASS_COLORS};
pub use hammer::{hammer_png, hammer_svg};
pub use images::{heatmap_png, segmentation_overlay_png, HeatmapOptions};

use crate::error::Error;

/// Maps a plotters error for the file at `path` to [`Error::Plot`].
fn svg_error<E: std::fmt::Debug>(path: &std::path::Path) -> impl Fn(E) -> Error + '_ {
    move |e| Error::Plot {
        path: path.to_path_buf(),
        msg: format!("{e:?}"),
    }
}
