//! SVG charts: training curves, histograms and class-coloured scatter plots.

use std::path::Path;

use plotters::prelude::*;

use super::colormap::class_color;
use super::svg_error;
use crate::error::{invalid, Result};
use crate::histogram::Histogram;

/// One named curve: `(x, y)` points in drawing order.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// The points.
    pub points: &'a [(f64, f64)],
}

fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// `(lo, hi)` of some values, padded by 5 % (or ±0.5 when they are all equal).
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        let p = (hi - lo) * 0.05;
        (lo - p, hi + p)
    }
}

/// Draws curves (losses, metrics per epoch) into an SVG with a legend. With `log_y` the y axis
/// is logarithmic and every y must be positive.
pub fn training_curves_svg(
    path: impl AsRef<Path>,
    title: &str,
    (x_label, y_label): (&str, &str),
    series: &[Series<'_>],
    log_y: bool,
) -> Result<()> {
    const OP: &str = "training_curves_svg";
    let path = path.as_ref();
    if series.iter().all(|s| s.points.is_empty()) {
        return Err(invalid(OP, "no points to draw"));
    }
    let all = series.iter().flat_map(|s| s.points.iter());
    if let Some(p) = all.clone().find(|p| !(p.0.is_finite() && p.1.is_finite())) {
        return Err(invalid(OP, format!("point {p:?} is not finite")));
    }
    if log_y {
        if let Some(p) = all.clone().find(|p| p.1 <= 0.0) {
            return Err(invalid(
                OP,
                format!("point {p:?}: a log y axis needs y > 0"),
            ));
        }
    }
    let (x0, x1) = all
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
            (a.0.min(p.0), a.1.max(p.0))
        });
    let (y0, y1) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
        (a.0.min(p.1), a.1.max(p.1))
    });
    let (x0, x1) = padded(x0, x1);
    let err = svg_error(path);
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .draw()
                .map_err(&err)?;
            for (k, s) in series.iter().enumerate() {
                let color = rgb(class_color(k));
                chart
                    .draw_series(LineSeries::new(
                        s.points.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(&err)?
                    .label(s.name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(&err)?;
        }};
    }
    if log_y {
        let (y0, y1) = if y0 == y1 {
            (y0 / 2.0, y1 * 2.0)
        } else {
            (y0 / 1.2, y1 * 1.2)
        };
        draw!(builder
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(&err)?);
    } else {
        let (y0, y1) = padded(y0, y1);
        draw!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(&err)?);
    }
    root.present().map_err(&err)?;
    Ok(())
}

/// Draws a histogram as an SVG bar chart.
pub fn histogram_svg(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    histogram: &Histogram,
) -> Result<()> {
    const OP: &str = "histogram_svg";
    let path = path.as_ref();
    let h = histogram;
    if h.counts.is_empty() || h.edges.len() != h.counts.len() + 1 {
        return Err(invalid(
            OP,
            format!(
                "{} edges for {} bins; need bins + 1",
                h.edges.len(),
                h.counts.len()
            ),
        ));
    }
    if h.edges.iter().any(|e| !e.is_finite()) || h.edges.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid(OP, "bin edges must be finite and increasing"));
    }
    let err = svg_error(path);
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let top = h.counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(h.edges[0]..h.edges[h.counts.len()], 0.0..top)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("count")
        .draw()
        .map_err(&err)?;
    let fill = rgb(class_color(0));
    chart
        .draw_series(h.counts.iter().enumerate().map(|(i, &c)| {
            Rectangle::new(
                [(h.edges[i], 0.0), (h.edges[i + 1], c as f64)],
                fill.filled(),
            )
        }))
        .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// Draws 2D points (`n × 2` row-major) as an SVG scatter plot, coloured by class, with a legend
/// of the classes present.
pub fn scatter_svg(
    path: impl AsRef<Path>,
    title: &str,
    points: &[f32],
    classes: &[u32],
) -> Result<()> {
    const OP: &str = "scatter_svg";
    let path = path.as_ref();
    if points.len() % 2 != 0 || points.len() / 2 != classes.len() || classes.is_empty() {
        return Err(invalid(
            OP,
            format!(
                "{} coordinates and {} classes: need n × 2 coordinates and n ≥ 1 classes",
                points.len(),
                classes.len()
            ),
        ));
    }
    if points.iter().any(|v| !v.is_finite()) {
        return Err(invalid(OP, "coordinates must be finite"));
    }
    let xs = points.iter().step_by(2).map(|&v| v as f64);
    let ys = points.iter().skip(1).step_by(2).map(|&v| v as f64);
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| {
        (a.0.min(v), a.1.max(v))
    });
    let (y0, y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| {
        (a.0.min(v), a.1.max(v))
    });
    let ((x0, x1), (y0, y1)) = (padded(x0, x1), padded(y0, y1));
    let err = svg_error(path);
    let root = SVGBackend::new(path, (700, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(&err)?;
    chart.configure_mesh().draw().map_err(&err)?;
    let mut ids: Vec<u32> = classes.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for (slot, &id) in ids.iter().enumerate() {
        let color = rgb(class_color(slot));
        let pts = classes
            .iter()
            .enumerate()
            .filter(|(_, &c)| c == id)
            .map(|(i, _)| (points[2 * i] as f64, points[2 * i + 1] as f64));
        chart
            .draw_series(pts.map(|p| Circle::new(p, 3, color.filled())))
            .map_err(&err)?
            .label(format!("class {id}"))
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}
