//! `frontier.svg`: mean score against peak RSS and against file size, one colour per model,
//! the efficient frontier drawn as a line (plotters, SVG backend), rendered from a
//! [`Comparison`].

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::analysis::{task_title, Comparison};

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

struct Point {
    model: String,
    label: String,
    score: f64,
    rss_mib: f64,
    file_mib: f64,
    on_frontier: bool,
}

/// The SVG text; `None` when no cell has a score to plot.
pub fn frontier_svg(c: &Comparison) -> Result<Option<String>> {
    let tasks = &c.common_tasks;
    let points: Vec<Point> = c
        .rows
        .iter()
        .filter_map(|r| {
            Some(Point {
                model: r.model.clone(),
                label: r.quant.clone(),
                score: r.mean_score? * 100.0,
                rss_mib: r.memory_bytes as f64 / 1048576.0,
                file_mib: r.file_size as f64 / 1048576.0,
                on_frontier: r.on_frontier,
            })
        })
        .collect();
    if points.is_empty() {
        return Ok(None);
    }
    let mut models: Vec<String> = points.iter().map(|p| p.model.clone()).collect();
    models.dedup();
    models.sort();
    models.dedup();
    let title = format!(
        "mean score over {}",
        tasks
            .iter()
            .map(|t| task_title(*t))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1200, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (left, right) = root.split_horizontally(600);
        panel(&left, &points, &models, &title, "peak RSS (MiB)", |p| {
            p.rss_mib
        })?;
        panel(&right, &points, &models, &title, "file size (MiB)", |p| {
            p.file_mib
        })?;
        root.present().map_err(plot_err)?;
    }
    Ok(Some(svg))
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing the frontier plot: {e:?}")
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    points: &[Point],
    models: &[String],
    title: &str,
    x_label: &str,
    x_of: impl Fn(&Point) -> f64,
) -> Result<()> {
    let x_max = points.iter().map(&x_of).fold(0.0, f64::max) * 1.15 + 1.0;
    let y_max = (points.iter().map(|p| p.score).fold(0.0, f64::max) * 1.2).clamp(5.0, 100.0);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{title} vs {x_label}"), ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("score (%)")
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(plot_err)?;

    // The frontier: its cells by increasing memory, joined by a step line.
    let mut front: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.on_frontier)
        .map(|p| (x_of(p), p.score))
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    if front.len() > 1 {
        chart
            .draw_series(LineSeries::new(front, BLACK.stroke_width(2)))
            .map_err(plot_err)?
            .label("efficient frontier")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(2)));
    }
    for (i, model) in models.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let mine: Vec<&Point> = points.iter().filter(|p| &p.model == model).collect();
        chart
            .draw_series(
                mine.iter()
                    .map(|p| Circle::new((x_of(p), p.score), 6, color.filled())),
            )
            .map_err(plot_err)?
            .label(model.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
        chart
            .draw_series(mine.iter().map(|p| {
                Text::new(
                    p.label.clone(),
                    (x_of(p), p.score),
                    ("sans-serif", 12).into_font(),
                )
            }))
            .map_err(plot_err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(plot_err)?;
    Ok(())
}
