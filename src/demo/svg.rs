//! A hand-written SVG chart of the pool's use as the log grew: pledged, reserved and
//! delivered (yuan) against the log size, one point per batch (thinned to at most
//! [`POINTS_MAX`] per line). Integer arithmetic on the values; coordinates are pixels.
//!
//! Small multiples, one panel per line, each on its own scale: on one shared axis a
//! 1.45-billion-yuan pledged line leaves the reserved and delivered lines (a few
//! percent of it) flat on the floor, too small to see. Each panel is labelled with its
//! own maximum and its last value, and with that value as a share of pledged, so the
//! proportion is still read, not lost.

use std::fmt::Write as _;

use super::feed::Sample;
use super::story::yuan;

/// A line of the chart: name, colour, and the value it plots.
type Line = (&'static str, &'static str, fn(&Sample) -> u64);

/// Most points drawn per line.
const POINTS_MAX: usize = 400;
const WIDTH: u64 = 760;
const LEFT: u64 = 110;
const RIGHT: u64 = 20;
const TITLE: u64 = 40;
/// Height of one panel, and the plot inside it.
const PANEL: u64 = 130;
const PLOT: u64 = 90;
const BOTTOM: u64 = 30;
const LINES: [Line; 3] = [
    ("pledged", "#1f77b4", |s| s.pledged_fen),
    ("reserved", "#ff7f0e", |s| s.reserved_fen),
    ("delivered", "#2ca02c", |s| s.delivered_fen),
];

fn thin(samples: &[Sample]) -> Vec<Sample> {
    let step = samples.len().div_ceil(POINTS_MAX).max(1);
    let mut points: Vec<Sample> = samples.iter().step_by(step).copied().collect();
    if let (Some(last), Some(kept)) = (samples.last(), points.last()) {
        if last != kept {
            points.push(*last);
        }
    }
    points
}

/// Scales `v` of `max` to `span` pixels.
fn scale(v: u64, max: u64, span: u64) -> u64 {
    (u128::from(v) * u128::from(span) / u128::from(max.max(1))) as u64
}

/// The chart as SVG text (`<svg …>…</svg>`).
pub(crate) fn pool_chart(samples: &[Sample]) -> String {
    let points = thin(samples);
    let x_max = points.iter().map(|s| s.size).max().unwrap_or(0).max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let height = TITLE + PANEL * LINES.len() as u64 + BOTTOM;
    let x = |v: u64| LEFT + scale(v, x_max, plot_w);
    let pledged = points.last().map_or(0, |s| s.pledged_fen);

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<title>Pool use over time: pledged, reserved and delivered (yuan) by log size, each on its own scale</title>"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="24" font-size="15">Pool use over time (yuan) — each panel on its own scale</text>"#
    );
    for (i, line) in LINES.iter().enumerate() {
        panel(
            &mut out,
            &points,
            line,
            TITLE + PANEL * i as u64,
            pledged,
            &x,
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">log size (entries), 0 to {x_max}</text>"#,
        LEFT + plot_w / 2,
        height - 10
    );
    out.push_str("</svg>\n");
    out
}

/// One panel: the line's own maximum as its top, its name, last value and share of
/// pledged, a baseline and the line.
fn panel(
    out: &mut String,
    points: &[Sample],
    line: &Line,
    top: u64,
    pledged: u64,
    x: &dyn Fn(u64) -> u64,
) {
    let (name, colour, value) = *line;
    let y_max = points.iter().map(value).max().unwrap_or(0).max(1);
    let last = points.last().map_or(0, value);
    let plot_top = top + 24;
    let floor = plot_top + PLOT;
    let y = |v: u64| floor - scale(v, y_max, PLOT);
    // The other lines as a share of pledged (the pledged line itself needs none).
    let share = if pledged == 0 || name == "pledged" {
        String::new()
    } else {
        let per_mille = u128::from(last) * 1000 / u128::from(pledged);
        format!(", {}.{}% of pledged", per_mille / 10, per_mille % 10)
    };
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{}" font-weight="bold" fill="{colour}">{name}: {} yuan{share}</text>"#,
        top + 16,
        yuan(last - last % 100)
    );
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" y1="{plot_top}" x2="{}" y2="{plot_top}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
        WIDTH - RIGHT,
        LEFT - 6,
        plot_top + 4,
        yuan(y_max - y_max % 100)
    );
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" y1="{floor}" x2="{}" y2="{floor}" stroke="#333"/><text x="{}" y="{}" text-anchor="end">0</text>"##,
        WIDTH - RIGHT,
        LEFT - 6,
        floor + 4
    );
    let mut path = String::new();
    for s in points {
        let _ = write!(path, "{},{} ", x(s.size), y(value(s)));
    }
    let _ = writeln!(
        out,
        r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
        path.trim_end()
    );
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

    /// The y coordinates of the `n`th polyline.
    fn ys(svg: &str, n: usize) -> Vec<u64> {
        let points = svg.split("points=\"").nth(n + 1).unwrap_or_default();
        points
            .split('"')
            .next()
            .unwrap_or_default()
            .split(' ')
            .filter_map(|p| p.split(',').nth(1)?.parse().ok())
            .collect()
    }

    #[test]
    fn a_small_delivered_line_under_a_huge_pledged_one_is_drawn_on_its_own_scale() {
        // 1.45 billion yuan pledged; 2 million reserved and delivered, 0.14% of it.
        let samples: Vec<Sample> = (0..=10u64)
            .map(|i| Sample {
                size: i * 100,
                pledged_fen: 145_000_000_000,
                reserved_fen: i * 20_000_000,
                delivered_fen: i * 20_000_000,
            })
            .collect();
        let svg = pool_chart(&samples);
        for line in [1, 2] {
            let ys = ys(&svg, line);
            let rise = ys.iter().max().unwrap() - ys.iter().min().unwrap();
            assert_eq!(rise, PLOT, "line {line} spans its whole panel: {ys:?}");
        }
        assert!(
            svg.contains("delivered: 2,000,000 yuan, 0.1% of pledged"),
            "{svg}"
        );
    }

    #[test]
    fn no_samples_still_draws_axes() {
        let svg = pool_chart(&[]);
        assert!(svg.starts_with("<svg ") && svg.contains("</svg>"));
    }
}
