//! The dashboard's charts, drawn on the server as SVG geometry the
//! template writes out: bars as `<rect>`s with presentation attributes and
//! classes (the pages' CSP allows no inline style), each chart labelled
//! for assistive technology, its numbers also given as a table.

use serde::Serialize;

/// The drawing's coordinate space (the `viewBox`); CSS scales it.
const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 36.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;

/// One number in SVG, to a tenth.
fn n(v: f64) -> String {
    format!("{v:.1}")
}

#[derive(Debug, Serialize)]
pub struct Bar {
    x: String,
    y: String,
    width: String,
    height: String,
    class: &'static str,
    /// Shown as the bar's tooltip (`<title>`).
    label: String,
}

#[derive(Debug, Serialize)]
pub struct Text {
    x: String,
    y: String,
    anchor: &'static str,
    text: String,
}

#[derive(Debug, Serialize)]
pub struct Line {
    x1: String,
    y1: String,
    x2: String,
    y2: String,
}

/// One series: its class (its colour in ui.css) and its name.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Series {
    pub class: &'static str,
    pub name: &'static str,
}

/// A chart ready for the template.
#[derive(Debug, Serialize)]
pub struct Chart {
    id: &'static str,
    title: &'static str,
    /// What the chart shows, in a sentence (the SVG's `<desc>`).
    summary: String,
    width: String,
    height: String,
    legend: Vec<Series>,
    bars: Vec<Bar>,
    texts: Vec<Text>,
    grid: Vec<Line>,
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `max` (at least 1): the
/// scale's top, so gridlines fall on round numbers.
fn nice_ceiling(max: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let top = step.saturating_mul(m);
            if top >= max || top == u64::MAX {
                return top.max(1);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// Vertical bars, one group per column, one bar per series in each group;
/// `values[column][series]`; `labels[column]` names each column and is
/// written under every `label_every`-th one.
pub fn columns(
    id: &'static str,
    title: &'static str,
    summary: String,
    series: &[Series],
    labels: &[String],
    values: &[Vec<u64>],
    label_every: usize,
) -> Chart {
    let max = values.iter().flatten().copied().max().unwrap_or(0);
    let top = nice_ceiling(max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / values.len().max(1) as f64;
    let bar_w = slot * 0.8 / series.len().max(1) as f64;
    let base = TOP + plot_h;
    let mut bars = Vec::new();
    let mut texts = Vec::new();
    for (col, row) in values.iter().enumerate() {
        let x0 = LEFT + slot * col as f64 + slot * 0.1;
        let label = labels.get(col).map_or("", String::as_str);
        for (i, (v, s)) in row.iter().zip(series).enumerate() {
            let h = plot_h * (*v as f64) / top as f64;
            bars.push(Bar {
                x: n(x0 + bar_w * i as f64),
                y: n(base - h),
                width: n(bar_w),
                height: n(h),
                class: s.class,
                label: format!("{label}: {v} {}", s.name),
            });
        }
        if label_every > 0 && col % label_every == 0 {
            texts.push(Text {
                x: n(x0 + slot * 0.4),
                y: n(HEIGHT - 6.0),
                anchor: "middle",
                text: label.to_owned(),
            });
        }
    }
    let (grid, scale) = scale(top, plot_h);
    texts.extend(scale);
    Chart {
        id,
        title,
        summary,
        width: n(WIDTH),
        height: n(HEIGHT),
        legend: series.to_vec(),
        bars,
        texts,
        grid,
    }
}

/// Horizontal gridlines at 0, half and the top, with their numbers.
fn scale(top: u64, plot_h: f64) -> (Vec<Line>, Vec<Text>) {
    let mut grid = Vec::new();
    let mut texts = Vec::new();
    let marks: &[u64] = if top >= 2 && top.is_multiple_of(2) {
        &[0, 1, 2]
    } else {
        &[0, 2]
    };
    for m in marks {
        let value = top * m / 2;
        let y = TOP + plot_h - plot_h * (value as f64) / top as f64;
        grid.push(Line {
            x1: n(LEFT),
            y1: n(y),
            x2: n(WIDTH - RIGHT),
            y2: n(y),
        });
        texts.push(Text {
            x: n(LEFT - 4.0),
            y: n(y + 4.0),
            anchor: "end",
            text: value.to_string(),
        });
    }
    (grid, texts)
}

/// Horizontal bars, one per row, each with its name and its number.
pub fn rows(
    id: &'static str,
    title: &'static str,
    summary: String,
    series: Series,
    rows: &[(&'static str, u64)],
) -> Chart {
    const LABEL_W: f64 = 84.0;
    const ROW_H: f64 = 28.0;
    let height = TOP + ROW_H * rows.len() as f64 + 4.0;
    let max = rows.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let plot_w = WIDTH - LABEL_W - 48.0;
    let mut bars = Vec::new();
    let mut texts = Vec::new();
    for (i, (name, v)) in rows.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let w = plot_w * (*v as f64) / max as f64;
        texts.push(Text {
            x: n(LABEL_W - 8.0),
            y: n(y + 16.0),
            anchor: "end",
            text: (*name).to_owned(),
        });
        bars.push(Bar {
            x: n(LABEL_W),
            y: n(y + 4.0),
            width: n(w),
            height: n(ROW_H - 10.0),
            class: series.class,
            label: format!("{name}: {v} {}", series.name),
        });
        texts.push(Text {
            x: n(LABEL_W + w + 6.0),
            y: n(y + 16.0),
            anchor: "start",
            text: v.to_string(),
        });
    }
    Chart {
        id,
        title,
        summary,
        width: n(WIDTH),
        height: n(height),
        legend: vec![series],
        bars,
        texts,
        grid: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_end_on_round_numbers() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(200), 200);
        assert_eq!(nice_ceiling(201), 500);
    }

    #[test]
    fn bars_are_as_tall_as_their_share_of_the_scale() {
        let s = [Series {
            class: "ok",
            name: "logins",
        }];
        let chart = columns(
            "c",
            "T",
            "s".into(),
            &s,
            &["a".into(), "b".into()],
            &[vec![5], vec![10]],
            1,
        );
        let plot_h = HEIGHT - TOP - BOTTOM;
        assert_eq!(chart.bars[1].height, n(plot_h));
        assert_eq!(chart.bars[0].height, n(plot_h / 2.0));
        assert_eq!(chart.bars[0].label, "a: 5 logins");
        // An empty chart draws no bar taller than nothing.
        let empty = columns("e", "T", "s".into(), &s, &[], &[vec![0]], 1);
        assert_eq!(empty.bars[0].height, n(0.0));
    }
}
