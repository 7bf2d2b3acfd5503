//! SVG plots of a few sample devices: the metric, each detector's normal range (where it has
//! one), the attack window and the datapoints each detector flagged.

use anyhow::Context;
use plotters::prelude::*;
use std::collections::HashMap;
use std::path::Path;
use thingward_datasets::Labels;
use thingward_models::time::EpochMillis;
use thingward_models::{Datapoint, Metric};

/// One sampled series: (device, metric) of an attack, with its datapoints and flags.
#[derive(Debug)]
struct Sample {
    device: String,
    metric: Metric,
    class: String,
    start: EpochMillis,
    end: EpochMillis,
    /// (time, value, flag per column, upper bound per column)
    points: Vec<Point>,
}

type Point = (EpochMillis, f64, Vec<bool>, Vec<Option<f64>>);

/// One plotted (detector, level).
#[derive(Debug, Clone)]
pub(crate) struct Column {
    /// Legend label.
    pub(crate) label: String,
    /// Index of the detector.
    pub(crate) detector: usize,
    /// Index of its level.
    pub(crate) level: usize,
}

/// The series recorded for plotting.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    series: Vec<Sample>,
    index: HashMap<(String, Metric), usize>,
}

impl Samples {
    /// Picks up to `n` attacks of different classes (their first device and metric).
    pub(crate) fn choose(labels: &Labels, n: usize) -> Self {
        let mut s = Self::default();
        let mut classes = std::collections::HashSet::new();
        for e in labels.attacks() {
            if s.series.len() >= n {
                break;
            }
            let (Some(device), Some(metric)) = (e.devices.first(), e.metrics.first()) else {
                continue;
            };
            if !classes.insert(e.kind.as_str().to_owned()) {
                continue;
            }
            let key = (device.as_str().to_owned(), metric.clone());
            if s.index.contains_key(&key) {
                continue;
            }
            s.index.insert(key, s.series.len());
            s.series.push(Sample {
                device: device.as_str().to_owned(),
                metric: metric.clone(),
                class: e.kind.as_str().to_owned(),
                start: e.start_ms,
                end: e.end_ms,
                points: Vec::new(),
            });
        }
        s
    }

    /// Whether `dp` belongs to a sample.
    pub(crate) fn wants(&self, dp: &Datapoint) -> bool {
        !self.series.is_empty()
            && self
                .index
                .contains_key(&(dp.thing.as_str().to_owned(), dp.metric.clone()))
    }

    /// Records a scored datapoint if it belongs to a sample, with each column's flag and
    /// upper bound.
    pub(crate) fn record(
        &mut self,
        dp: &Datapoint,
        x: f64,
        flags: &[bool],
        bounds: &[Option<f64>],
    ) {
        if let Some(&i) = self
            .index
            .get(&(dp.thing.as_str().to_owned(), dp.metric.clone()))
        {
            self.series[i]
                .points
                .push((dp.timestamp, x, flags.to_vec(), bounds.to_vec()));
        }
    }

    /// Writes one SVG per sample into `out`; returns how many.
    ///
    /// # Errors
    /// When a file cannot be written.
    pub(crate) fn render(&self, out: &Path, columns: &[Column]) -> anyhow::Result<usize> {
        let mut written = 0;
        for (i, s) in self.series.iter().enumerate() {
            if s.points.is_empty() {
                continue;
            }
            let path = out.join(format!("sample-{i}-{}.svg", s.class));
            draw(&path, s, columns).with_context(|| format!("Cannot draw {}", path.display()))?;
            written += 1;
        }
        Ok(written)
    }
}

const COLORS: [RGBColor; 6] = [
    RED,
    MAGENTA,
    GREEN,
    CYAN,
    RGBColor(255, 140, 0),
    RGBColor(120, 60, 0),
];

fn draw(path: &Path, s: &Sample, columns: &[Column]) -> anyhow::Result<()> {
    let t0 = s.points.first().map_or(0, |p| p.0);
    let hours = |t: EpochMillis| (t - t0) as f64 / 3_600_000.0;
    let x_max = hours(s.points.last().map_or(t0, |p| p.0)).max(1.0);
    // The y range follows the values and the bounds of the first levels, not a HIGH bound far
    // above everything.
    let value_max = s.points.iter().map(|p| p.1).fold(1.0_f64, f64::max);
    let y_max = s
        .points
        .iter()
        .flat_map(|p| p.3.iter().flatten().copied())
        .filter(|b| *b <= value_max * 3.0)
        .fold(value_max, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!("{} — {} ({})", s.device, s.metric, s.class);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("hours since the evaluation start")
        .y_desc(s.metric.as_str())
        .draw()?;
    let (a, b) = (hours(s.start).max(0.0), hours(s.end).min(x_max));
    if a < b {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(a, 0.0), (b, y_max)],
                RGBColor(255, 230, 200).filled(),
            )))?
            .label("attack window")
            .legend(|(x, y)| {
                Rectangle::new(
                    [(x, y - 5), (x + 10, y + 5)],
                    RGBColor(255, 230, 200).filled(),
                )
            });
    }
    chart
        .draw_series(LineSeries::new(
            s.points.iter().map(|p| (hours(p.0), p.1)),
            &BLUE,
        ))?
        .label("value")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLUE));
    for (k, column) in columns.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let bound: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter_map(|p| {
                p.3.get(k)
                    .copied()
                    .flatten()
                    .map(|b| (hours(p.0), b.min(y_max)))
            })
            .collect();
        if !bound.is_empty() {
            chart.draw_series(LineSeries::new(bound, color.stroke_width(1)))?;
        }
        chart
            .draw_series(
                s.points
                    .iter()
                    .filter(|p| p.2.get(k).copied().unwrap_or(false))
                    .map(|p| Circle::new((hours(p.0), p.1), 3, color.filled())),
            )?
            .label(format!("{} alarms (line: upper bound)", column.label))
            .legend(move |(x, y)| Circle::new((x + 5, y), 3, color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
