//! matplotlib's "rainbow" colormap (gnuplot functions 33, 13, 10), sampled like
//! `cm.get_cmap('rainbow', n)`.

/// The rainbow colour at `x` in [0, 1] as `#rrggbb`.
pub(crate) fn rainbow(x: f64) -> String {
    let x = x.clamp(0.0, 1.0);
    let r = (2.0 * x - 0.5).abs();
    let g = (std::f64::consts::PI * x).sin();
    let b = (std::f64::consts::FRAC_PI_2 * x).cos();
    let to = |c: f64| (c.clamp(0.0, 1.0) * 255.0).round() as u8;
    format!("#{:02x}{:02x}{:02x}", to(r), to(g), to(b))
}

/// Colour `i` of an `n`-colour rainbow (`n ≥ 1`).
pub(crate) fn rainbow_step(i: usize, n: usize) -> String {
    if n <= 1 {
        rainbow(0.0)
    } else {
        rainbow(i as f64 / (n - 1) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_middle_match_matplotlib() {
        // matplotlib rainbow(0) = (0.5, 0, 1), rainbow(1) = (1, ~0, ~0), rainbow(0.5) = (0.5, 1, 0.707).
        assert_eq!(rainbow(0.0), "#8000ff");
        assert_eq!(rainbow(1.0), "#ff0000");
        assert_eq!(rainbow(0.5), "#80ffb4");
    }
}
