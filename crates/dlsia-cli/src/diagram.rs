//! SVG network diagrams for `dlsia draw`: U-Nets as their levels (encoder left, decoder right,
//! skip connections across), any other network as its list of layers with weight shapes.

use std::fmt::Write;

use dlsia_nets::UnetChannels;

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn rect(svg: &mut String, x: f64, y: f64, w: f64, h: f64, fill: &str, lines: &[String]) {
    let _ = write!(
        svg,
        r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="6" fill="{fill}" stroke="#333"/>"##
    );
    for (i, line) in lines.iter().enumerate() {
        let ty = y + 17.0 + 15.0 * i as f64;
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{ty:.1}" font-family="sans-serif" font-size="12" text-anchor="middle">{}</text>"##,
            x + w / 2.0,
            esc(line)
        );
    }
}

fn arrow(svg: &mut String, x1: f64, y1: f64, x2: f64, y2: f64, colour: &str, label: &str) {
    let _ = write!(
        svg,
        r##"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{colour}" stroke-width="1.6" marker-end="url(#arrow)"/>"##
    );
    if !label.is_empty() {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" font-family="sans-serif" font-size="10" fill="{colour}" text-anchor="middle">{}</text>"##,
            (x1 + x2) / 2.0 + 4.0,
            (y1 + y2) / 2.0 - 3.0,
            esc(label)
        );
    }
}

fn header(width: f64, height: f64, title: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}"><defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs><rect width="100%" height="100%" fill="white"/><text x="12" y="22" font-family="sans-serif" font-size="15" font-weight="bold">{}</text>"##,
        esc(title)
    )
}

/// A U-Net drawn by levels. `full_scale` adds TUNet3+'s skip connections from every encoder
/// level to every decoder level; `up` names the upsampling operation.
pub fn unet_svg(
    title: &str,
    ch: &UnetChannels,
    out_channels: usize,
    full_scale: bool,
    up: &str,
) -> String {
    let depth = ch.enc_out.len();
    let (bw, bh, gap_y) = (170.0, 40.0, 34.0);
    let (left, right) = (40.0, 420.0);
    let top = 50.0;
    let height = top + (depth as f64) * (bh + gap_y) + 60.0;
    let mut svg = header(right + bw + 40.0, height, title);
    let y = |i: usize| top + i as f64 * (bh + gap_y);
    for i in 0..depth - 1 {
        rect(
            &mut svg,
            left,
            y(i),
            bw,
            bh,
            "#dbeafe",
            &[
                format!("Encode_{i}"),
                format!("{}→{}→{} ch", ch.enc_in[i], ch.enc_mid[i], ch.enc_out[i]),
            ],
        );
        let label = if i == 0 {
            format!("Decode_0 (+1×1 → {out_channels})")
        } else {
            format!("Decode_{i}")
        };
        rect(&mut svg, right, y(i), bw, bh, "#dcfce7", &[label]);
        // pooling down
        arrow(
            &mut svg,
            left + bw / 2.0,
            y(i) + bh,
            left + bw / 2.0 + if i + 1 == depth - 1 { 190.0 } else { 0.0 },
            y(i + 1),
            "#555",
            "max-pool",
        );
        // skip across
        arrow(
            &mut svg,
            left + bw,
            y(i) + bh / 2.0,
            right,
            y(i) + bh / 2.0,
            "#2563eb",
            "skip",
        );
        if full_scale {
            for o in 0..depth - 1 {
                if o != i {
                    arrow(
                        &mut svg,
                        left + bw,
                        y(i) + bh / 2.0,
                        right,
                        y(o) + bh / 2.0 + 6.0,
                        "#93c5fd",
                        "",
                    );
                }
            }
        }
    }
    let b = depth - 1;
    let bx = (left + right) / 2.0;
    rect(
        &mut svg,
        bx,
        y(b),
        bw,
        bh,
        "#fde68a",
        &[
            format!("Final_layer_{b}"),
            format!("{}→{}→{} ch", ch.enc_in[b], ch.enc_mid[b], ch.enc_out[b]),
        ],
    );
    for i in (0..depth - 1).rev() {
        let (fx, fy) = if i + 1 == depth - 1 {
            (bx + bw / 2.0, y(b))
        } else {
            (right + bw / 2.0, y(i + 1))
        };
        arrow(&mut svg, fx, fy, right + bw / 2.0, y(i) + bh, "#16a34a", up);
    }
    svg.push_str("</svg>\n");
    svg
}

/// Any network as the list of its layers (weight tensors grouped by module), top to bottom.
pub fn layer_list_svg(title: &str, entries: &[(String, Vec<usize>)], parameters: usize) -> String {
    // group tensors by their module path (name without the last component)
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (name, shape) in entries {
        let (module, leaf) = name.rsplit_once('.').unwrap_or(("", name.as_str()));
        let text = format!(
            "{leaf} {}",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("×")
        );
        match groups.last_mut() {
            Some((m, items)) if m == module => items.push(text),
            _ => groups.push((module.to_string(), vec![text])),
        }
    }
    let (bw, bh) = (520.0, 36.0);
    let height = 60.0 + groups.len() as f64 * (bh + 14.0) + 30.0;
    let mut svg = header(
        bw + 80.0,
        height,
        &format!("{title} — {parameters} parameters"),
    );
    for (i, (module, items)) in groups.iter().enumerate() {
        let y = 50.0 + i as f64 * (bh + 14.0);
        let mut detail = items.join(", ");
        if detail.chars().count() > 80 {
            detail = detail.chars().take(79).collect::<String>() + "…";
        }
        rect(
            &mut svg,
            40.0,
            y,
            bw,
            bh,
            "#f3f4f6",
            &[module.clone(), detail],
        );
        if i + 1 < groups.len() {
            arrow(
                &mut svg,
                40.0 + bw / 2.0,
                y + bh,
                40.0 + bw / 2.0,
                y + bh + 14.0,
                "#555",
                "",
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}
