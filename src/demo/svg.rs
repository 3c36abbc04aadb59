//! A hand-written SVG line chart of the pool's use as the log grew: pledged, reserved
//! and delivered (yuan) against the log size, one point per batch (thinned to at most
//! [`POINTS_MAX`] per line). Integer arithmetic on the values; coordinates are pixels.

use std::fmt::Write as _;

use super::feed::Sample;
use super::story::yuan;

/// A line of the chart: name, colour, and the value it plots.
type Line = (&'static str, &'static str, fn(&Sample) -> u64);

/// Most points drawn per line.
const POINTS_MAX: usize = 400;
const WIDTH: u64 = 760;
const HEIGHT: u64 = 360;
const LEFT: u64 = 90;
const RIGHT: u64 = 20;
const TOP: u64 = 40;
const BOTTOM: u64 = 50;

/// The chart as SVG text (`<svg …>…</svg>`).
pub(crate) fn pool_chart(samples: &[Sample]) -> String {
    let step = samples.len().div_ceil(POINTS_MAX).max(1);
    let mut points: Vec<Sample> = samples.iter().step_by(step).copied().collect();
    if let (Some(last), Some(kept)) = (samples.last(), points.last()) {
        if last != kept {
            points.push(*last);
        }
    }
    let x_max = points.iter().map(|s| s.size).max().unwrap_or(0).max(1);
    let y_max = points
        .iter()
        .map(|s| s.pledged_fen)
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |v: u64| LEFT + (u128::from(v) * u128::from(plot_w) / u128::from(x_max)) as u64;
    let y = |v: u64| TOP + plot_h - (u128::from(v) * u128::from(plot_h) / u128::from(y_max)) as u64;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<title>Pool use over time: pledged, reserved and delivered (yuan) by log size</title>"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="24" font-size="15">Pool use over time (yuan)</text>"#
    );
    // Axes and gridlines at quarters.
    for q in 0..=4u64 {
        let v = y_max / 4 * q;
        let yy = y(v);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{yy}" x2="{}" y2="{yy}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6,
            yy + 4,
            yuan(v - v % 100)
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#333"/>"##,
        TOP + plot_h,
        WIDTH - RIGHT,
        TOP + plot_h
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">log size (entries), 0 to {x_max}</text>"#,
        LEFT + plot_w / 2,
        HEIGHT - 14
    );
    let lines: [Line; 3] = [
        ("pledged", "#1f77b4", |s| s.pledged_fen),
        ("reserved", "#ff7f0e", |s| s.reserved_fen),
        ("delivered", "#2ca02c", |s| s.delivered_fen),
    ];
    for (i, (name, colour, value)) in lines.iter().enumerate() {
        let mut path = String::new();
        for s in &points {
            let _ = write!(path, "{},{} ", x(s.size), y(value(s)));
        }
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            path.trim_end()
        );
        let lx = LEFT + 10 + 110 * i as u64;
        let _ = writeln!(
            out,
            r#"<rect x="{lx}" y="{}" width="12" height="12" fill="{colour}"/><text x="{}" y="{}">{name}</text>"#,
            TOP + 4,
            lx + 16,
            TOP + 14
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(size: u64, p: u64) -> Sample {
        Sample {
            size,
            pledged_fen: p,
            reserved_fen: p / 2,
            delivered_fen: p / 4,
        }
    }

    #[test]
    fn chart_is_one_svg_element_with_three_lines() {
        let svg = pool_chart(&[sample(1, 0), sample(10, 1_000), sample(20, 4_000)]);
        assert!(svg.starts_with("<svg "));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 3);
    }

    #[test]
    fn many_samples_are_thinned_but_keep_the_last() {
        let samples: Vec<Sample> = (1..=10_000).map(|i| sample(i, i * 10)).collect();
        let svg = pool_chart(&samples);
        let first = svg.split("points=\"").nth(1).unwrap_or_default();
        let points = first
            .split('"')
            .next()
            .unwrap_or_default()
            .split(' ')
            .count();
        assert!(points <= POINTS_MAX + 1, "{points} points");
        assert!(first.starts_with(&format!("{},", LEFT)));
    }

    #[test]
    fn no_samples_still_draws_axes() {
        let svg = pool_chart(&[]);
        assert!(svg.starts_with("<svg ") && svg.contains("</svg>"));
    }
}
