//! Scatter charts as inline SVG for the HTML report: one point per cell (a colour per
//! model), the Pareto frontier drawn as a step line, and every point's details in a
//! `<title>` the browser shows on hover. No script and no external file: the page stays
//! self-contained.

use std::fmt::Write as _;

use super::escape;

/// One cell on a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub model: String,
    pub label: String,
    pub x: f64,
    pub y: f64,
    pub on_frontier: bool,
    /// The hover text.
    pub detail: String,
}

const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];
const W: f64 = 560.0;
const H: f64 = 360.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 44.0;

/// A round step for about five ticks up to `max`.
fn tick_step(max: f64) -> f64 {
    let raw = (max / 5.0).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// The chart: `title`, axes from 0, the frontier (points flagged `on_frontier`, joined in
/// order of x) and the points. `better_x_is_lower` says which way the frontier steps.
pub fn scatter(
    id: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[Point],
    better_x_is_lower: bool,
) -> String {
    let x_max = points.iter().map(|p| p.x).fold(0.0, f64::max) * 1.1 + 1e-9;
    let y_max = (points.iter().map(|p| p.y).fold(0.0, f64::max) * 1.15).clamp(5.0, 100.0);
    let (xs, ys) = (tick_step(x_max), tick_step(y_max));
    let px = |x: f64| LEFT + x / x_max * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - y / y_max * (H - TOP - BOTTOM);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" id="{id}" viewBox="0 0 {W} {H}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = escape(title)
    );
    let _ = write!(
        s,
        r#"<text class="chart-title" x="{}" y="18" text-anchor="middle">{}</text>"#,
        W / 2.0,
        escape(title)
    );
    // Grid and ticks.
    let mut v = 0.0;
    while v <= y_max + 1e-9 {
        let y = py(v);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            fmt_tick(v)
        );
        v += ys;
    }
    let mut v = 0.0;
    while v <= x_max + 1e-9 {
        let x = px(v);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            H - BOTTOM,
            H - BOTTOM + 16.0,
            fmt_tick(v)
        );
        v += xs;
    }
    let _ = write!(
        s,
        r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text class="axis" x="14" y="{:.1}" text-anchor="middle" transform="rotate(-90 14 {:.1})">{}</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 8.0,
        escape(x_label),
        (TOP + H - BOTTOM) / 2.0,
        (TOP + H - BOTTOM) / 2.0,
        escape(y_label)
    );
    // The frontier as a step line through its points.
    let mut front: Vec<&Point> = points.iter().filter(|p| p.on_frontier).collect();
    front.sort_by(|a, b| a.x.total_cmp(&b.x));
    if front.len() > 1 {
        let mut d = String::new();
        for (i, p) in front.iter().enumerate() {
            if i > 0 {
                // Step so the line never claims a score between two cells.
                let prev = front[i - 1];
                let (sx, sy) = if better_x_is_lower {
                    (px(p.x), py(prev.y))
                } else {
                    (px(prev.x), py(p.y))
                };
                let _ = write!(d, " L{sx:.1},{sy:.1}");
            }
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { " L" },
                px(p.x),
                py(p.y)
            );
        }
        let _ = write!(
            s,
            r#"<path class="frontier" d="{d}"><title>efficient frontier</title></path>"#
        );
    }
    let mut models: Vec<&str> = points.iter().map(|p| p.model.as_str()).collect();
    models.sort_unstable();
    models.dedup();
    for p in points {
        let colour =
            PALETTE[models.iter().position(|m| *m == p.model).unwrap_or(0) % PALETTE.len()];
        let _ = write!(
            s,
            r#"<g class="point{}"><circle cx="{:.1}" cy="{:.1}" r="6" fill="{colour}"><title>{}</title></circle><text class="label" x="{:.1}" y="{:.1}">{}</text></g>"#,
            if p.on_frontier { " on-frontier" } else { "" },
            px(p.x),
            py(p.y),
            escape(&p.detail),
            px(p.x) + 8.0,
            py(p.y) - 8.0,
            escape(&p.label)
        );
    }
    // Legend: one swatch per model.
    for (i, m) in models.iter().enumerate() {
        let y = TOP + 6.0 + i as f64 * 16.0;
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{y:.1}" r="5" fill="{}"/><text class="legend" x="{:.1}" y="{:.1}">{}</text>"#,
            W - RIGHT - 150.0,
            PALETTE[i % PALETTE.len()],
            W - RIGHT - 140.0,
            y + 4.0,
            escape(m)
        );
    }
    s.push_str("</svg>");
    s
}

fn fmt_tick(v: f64) -> String {
    if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Which points no other beats on both axes: higher score and (x lower, or x higher when
/// `better_x_is_lower` is false). Returns a flag per point.
pub fn pareto(points: &[(f64, f64)], better_x_is_lower: bool) -> Vec<bool> {
    points
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            !points.iter().enumerate().any(|(j, &(x2, y2))| {
                let x_better = if better_x_is_lower { x2 <= x } else { x2 >= x };
                let x_strict = if better_x_is_lower { x2 < x } else { x2 > x };
                j != i && y2 >= y && x_better && (y2 > y || x_strict)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_both_ways() {
        // (memory, score): the cheapest and the best are kept, a dominated middle is not.
        let pts = [(100.0, 30.0), (200.0, 25.0), (300.0, 60.0)];
        assert_eq!(pareto(&pts, true), [true, false, true]);
        // (speed, score): faster is better.
        assert_eq!(pareto(&pts, false), [false, false, true]);
    }

    #[test]
    fn the_svg_names_every_point_for_hover() {
        let pts = vec![
            Point {
                model: "a".into(),
                label: "Q4_K_M".into(),
                x: 200.0,
                y: 30.0,
                on_frontier: true,
                detail: "a Q4_K_M: 30% at 200 MiB".into(),
            },
            Point {
                model: "a".into(),
                label: "F16 <x>".into(),
                x: 500.0,
                y: 40.0,
                on_frontier: true,
                detail: "a F16".into(),
            },
        ];
        let svg = scatter("c", "score vs memory", "MiB", "score (%)", &pts, true);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(
            svg.matches("<circle").count(),
            3,
            "two points and a legend swatch"
        );
        assert!(svg.contains("<title>a Q4_K_M: 30% at 200 MiB</title>"));
        assert!(svg.contains("F16 &lt;x&gt;"));
        assert!(svg.contains(r#"class="frontier""#));
        assert_eq!(tick_step(470.0), 100.0);
    }
}
