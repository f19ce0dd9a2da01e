//! Values on the sphere drawn in the equal-area Hammer projection (PNG and SVG).

use std::f64::consts::{PI, SQRT_2};
use std::path::Path;

use plotters::prelude::*;

use super::colormap::Colormap;
use super::raster::{format_number, text_width, Canvas};
use super::svg_error;
use crate::error::{invalid, Result};
use crate::fiber::{hammer_forward, hammer_inverse, SphereGrid};

fn check(op: &'static str, grid: &SphereGrid, values: &[f64]) -> Result<(f64, f64)> {
    SphereGrid::new(grid.n_lat, grid.n_lon)?;
    if values.len() != grid.len() {
        return Err(invalid(
            op,
            format!(
                "{} values for a {} × {} grid",
                values.len(),
                grid.n_lat,
                grid.n_lon
            ),
        ));
    }
    let lo = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let hi = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    Ok(if lo > hi {
        (0.0, 1.0)
    } else if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    })
}

/// Draws `values` on `grid` (row-major, as [`crate::fiber::OrientationDistribution`] holds
/// them) as a Hammer map `width` pixels wide with a colour bar and a 30° graticule.
pub fn hammer_png(
    path: impl AsRef<Path>,
    grid: &SphereGrid,
    values: &[f64],
    width: usize,
    colormap: Colormap,
) -> Result<()> {
    const OP: &str = "hammer_png";
    let (lo, hi) = check(OP, grid, values)?;
    if width < 40 {
        return Err(invalid(
            OP,
            format!("width {width} must be at least 40 pixels"),
        ));
    }
    let (mw, mh) = (width, width / 2);
    let label_w = [lo, hi, (lo + hi) / 2.0]
        .map(|v| text_width(&format_number(v), 2))
        .into_iter()
        .max()
        .unwrap_or(0);
    let mut canvas = Canvas::new(mw + 12 + 16 + 4 + label_w + 6, mh + 10, [255, 255, 255]);
    let to_xy = |px: f64, py: f64| {
        (
            (px / mw as f64) * 4.0 * SQRT_2 - 2.0 * SQRT_2,
            SQRT_2 - (py / mh as f64) * 2.0 * SQRT_2,
        )
    };
    for py in 0..mh {
        for px in 0..mw {
            let (x, y) = to_xy(px as f64 + 0.5, py as f64 + 0.5);
            if let Some((lon, lat)) = hammer_inverse(x, y) {
                let (r, c) = grid.cell_of(lon, lat);
                let v = values[r * grid.n_lon + c];
                canvas.set(px, py + 5, colormap.color((v - lo) / (hi - lo)));
            }
        }
    }
    // Graticule: meridians and parallels every 30°.
    let grey = [200, 200, 200];
    let mut plot_point = |lon: f64, lat: f64| {
        let (x, y) = hammer_forward(lon, lat);
        let px = (x + 2.0 * SQRT_2) / (4.0 * SQRT_2) * mw as f64;
        let py = (SQRT_2 - y) / (2.0 * SQRT_2) * mh as f64;
        canvas.set(px as usize, py as usize + 5, grey);
    };
    for k in -6..=6 {
        let lon = k as f64 * PI / 6.0;
        for s in 0..=400 {
            plot_point(
                lon.clamp(-PI + 1e-9, PI - 1e-9),
                -PI / 2.0 + PI * s as f64 / 400.0,
            );
        }
    }
    for k in -2..=2 {
        let lat = k as f64 * PI / 6.0;
        for s in 0..=800 {
            plot_point(-PI + 2.0 * PI * s as f64 / 800.0, lat);
        }
    }
    canvas.colorbar(mw + 12, 5, 16, mh, lo, hi, colormap);
    canvas.save_png(path.as_ref())
}

/// Draws `values` on `grid` as a Hammer map in SVG: one polygon per grid cell, a title and a
/// colour bar.
pub fn hammer_svg(
    path: impl AsRef<Path>,
    title: &str,
    grid: &SphereGrid,
    values: &[f64],
    colormap: Colormap,
) -> Result<()> {
    const OP: &str = "hammer_svg";
    let path = path.as_ref();
    let (lo, hi) = check(OP, grid, values)?;
    let err = svg_error(path);
    let root = SVGBackend::new(path, (820, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let (map_area, bar_area) = root.split_horizontally(720);
    let mut chart = ChartBuilder::on(&map_area)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .build_cartesian_2d(-2.0 * SQRT_2..2.0 * SQRT_2, -SQRT_2..SQRT_2)
        .map_err(&err)?;
    let steps = 3;
    let polys = (0..grid.n_lat)
        .flat_map(|r| (0..grid.n_lon).map(move |c| (r, c)))
        .map(|(r, c)| {
            let z0 = -1.0 + r as f64 * 2.0 / grid.n_lat as f64;
            let z1 = -1.0 + (r + 1) as f64 * 2.0 / grid.n_lat as f64;
            let l0 = -PI + c as f64 * 2.0 * PI / grid.n_lon as f64;
            let l1 = -PI + (c + 1) as f64 * 2.0 * PI / grid.n_lon as f64;
            let mut pts = Vec::with_capacity(4 * steps + 4);
            for s in 0..=steps {
                pts.push(hammer_forward(
                    l0 + (l1 - l0) * s as f64 / steps as f64,
                    z0.asin(),
                ));
            }
            for s in 0..=steps {
                pts.push(hammer_forward(
                    l1 - (l1 - l0) * s as f64 / steps as f64,
                    z1.asin(),
                ));
            }
            let v = values[r * grid.n_lon + c];
            let [cr, cg, cb] = colormap.color((v - lo) / (hi - lo));
            Polygon::new(pts, RGBColor(cr, cg, cb).filled())
        });
    chart.draw_series(polys).map_err(&err)?;
    let n = 50;
    let bar = (0..n).map(|i| {
        let t = i as f64 / (n - 1) as f64;
        let [r, g, b] = colormap.color(t);
        let y1 = 360 - (i * 300 / n);
        Rectangle::new(
            [(10, y1 - 300 / n - 1), (30, y1)],
            RGBColor(r, g, b).filled(),
        )
    });
    bar_area
        .draw(&Text::new(format_number(hi), (36, 56), ("sans-serif", 14)))
        .map_err(&err)?;
    bar_area
        .draw(&Text::new(format_number(lo), (36, 352), ("sans-serif", 14)))
        .map_err(&err)?;
    for r in bar {
        bar_area.draw(&r).map_err(&err)?;
    }
    root.present().map_err(&err)?;
    Ok(())
}
