//! The PNG plots, from plain numbers: loss and accuracy per epoch, the learning rate (and
//! momentum) per iteration, the range test's loss curve and the confusion matrix. Text is drawn
//! with an embedded DejaVu Sans, so plots are readable on machines without fonts.

use std::ops::Range;
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};
use crate::history::EpochRecord;

const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is valid; if it were not, text would be missing, not the plot.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

fn plot_error(path: &Path) -> impl FnOnce(String) -> Error + '_ {
    move |message| Error::plot(path, message)
}

/// A series of `(x, y)` points with its legend label and colour.
struct Series<'a> {
    label: &'a str,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

/// Titles and axis settings of one chart.
struct Panel<'a> {
    title: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    /// Epochs count from 1, iterations from 0.
    x_start: f64,
    y_format: fn(&f64) -> String,
    /// Where the legend goes: where the curves usually are not.
    legend: SeriesLabelPosition,
    /// Start the y axis at 0 (losses, rates) or fit it to the values (momentum).
    y_from_zero: bool,
}

fn fixed(v: &f64) -> String {
    format!("{v:.2}")
}

fn scientific(v: &f64) -> String {
    format!("{v:.1e}")
}

/// Epochs and iterations are whole: ticks between them get no label.
fn whole_numbers_only(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

/// Loss (left) and accuracy (right), train and validation, per epoch.
pub fn plot_training(epochs: &[EpochRecord], path: &Path) -> Result<()> {
    register_font();
    let err = plot_error(path);
    let series = |label, color, f: fn(&EpochRecord) -> f64| Series {
        label,
        color,
        points: epochs.iter().map(|e| (e.epoch as f64, f(e))).collect(),
    };
    let loss = [
        series("train loss", BLUE, |e| e.train_loss),
        series("val loss", RED, |e| e.val_loss),
    ];
    let accuracy = [
        series("train accuracy", BLUE, |e| e.train_accuracy),
        series("val accuracy", RED, |e| e.val_accuracy),
    ];
    // loss falls and accuracy rises: legends go where the curves are headed away from
    let loss_panel = epoch_panel(
        "Training and validation loss",
        "Loss",
        SeriesLabelPosition::UpperRight,
    );
    let accuracy_panel = epoch_panel(
        "Training and validation accuracy",
        "Accuracy",
        SeriesLabelPosition::LowerRight,
    );
    render_png(path, (1200, 500), |root| {
        let (left, right) = root.split_horizontally(600);
        draw_panel(&left, &loss_panel, &loss)?;
        draw_panel(&right, &accuracy_panel, &accuracy)
    })
    .map_err(err)
}

/// A panel of values per epoch, on an axis from 0.
fn epoch_panel<'a>(title: &'a str, y_desc: &'a str, legend: SeriesLabelPosition) -> Panel<'a> {
    Panel {
        title,
        x_desc: "Epoch",
        y_desc,
        x_start: 1.0,
        y_format: fixed,
        legend,
        y_from_zero: true,
    }
}

/// The learning rate of every training iteration, under `title`; when the momentum cycles too
/// (`momenta` is `Some`), a second panel below shows it on its own axis.
pub fn plot_lr(lrs: &[f64], momenta: Option<&[f64]>, title: &str, path: &Path) -> Result<()> {
    register_font();
    let err = plot_error(path);
    let per_iteration = |label, color, values: &[f64]| Series {
        label,
        color,
        points: values
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as f64, v))
            .collect(),
    };
    let lr_series = [per_iteration("learning rate", BLUE, lrs)];
    let lr_panel = Panel {
        title,
        x_desc: "Training iteration",
        y_desc: "Learning rate",
        x_start: 0.0,
        y_format: scientific,
        legend: SeriesLabelPosition::UpperRight,
        y_from_zero: true,
    };
    let Some(momenta) = momenta else {
        return render_png(path, (900, 500), |root| {
            draw_panel(root, &lr_panel, &lr_series)
        })
        .map_err(err);
    };
    let momentum_series = [per_iteration("momentum", RED, momenta)];
    let momentum_panel = Panel {
        title: "Momentum",
        y_desc: "Momentum",
        y_format: fixed,
        legend: SeriesLabelPosition::UpperRight,
        y_from_zero: false,
        ..lr_panel
    };
    render_png(path, (900, 800), |root| {
        let (top, bottom) = root.split_vertically(500);
        draw_panel(&top, &lr_panel, &lr_series)?;
        draw_panel(&bottom, &momentum_panel, &momentum_series)
    })
    .map_err(err)
}

/// Draw on a white RGB canvas of `size`, then encode it as PNG (with the `image` crate the rest
/// of the project uses, rather than plotters' older copy of it).
fn render_png(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    image::save_buffer_with_format(
        path,
        &pixels,
        width,
        height,
        image::ExtendedColorType::Rgb8,
        image::ImageFormat::Png,
    )
    .map_err(|e| e.to_string())
}

/// From a little below the lowest to a little above the highest finite value.
fn tight_span(values: impl Iterator<Item = f64> + Clone) -> Range<f64> {
    let finite = values.filter(|v| v.is_finite());
    let low = finite.clone().fold(f64::INFINITY, f64::min);
    let high = finite.fold(f64::NEG_INFINITY, f64::max);
    if low > high {
        return 0.0..1.0;
    }
    let pad = ((high - low) * 0.05).max(1e-3);
    low - pad..high + pad
}

/// From 0 (or the lowest value, if negative) to a little above the highest finite value.
fn span(values: impl Iterator<Item = f64> + Clone) -> Range<f64> {
    let finite = values.filter(|v| v.is_finite());
    let lo = finite.clone().fold(f64::INFINITY, f64::min);
    let hi = finite.fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 1e-3).max(1e-12);
    lo.min(0.0)..hi + pad
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    series: &[Series],
) -> std::result::Result<(), String> {
    let all = || series.iter().flat_map(|s| s.points.iter().copied());
    let x_max = all().map(|p| p.0).fold(1.0, f64::max);
    let x_range = panel.x_start..x_max.max(panel.x_start + 1.0);
    let y_range = if panel.y_from_zero {
        span(all().map(|p| p.1))
    } else {
        tight_span(all().map(|p| p.1))
    };
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, (FONT, 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(x_range, y_range)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(panel.x_desc)
        .y_desc(panel.y_desc)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .x_label_formatter(&whole_numbers_only)
        .y_label_formatter(&panel.y_format)
        .draw()
        .map_err(|e| e.to_string())?;
    for s in series {
        let color = s.color;
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(s.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        if s.points.len() <= 50 {
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
    }
    if series.len() < 2 {
        return Ok(()); // the title says what the one curve is
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(panel.legend.clone())
        .draw()
        .map_err(|e| e.to_string())
}

/// The range test: smoothed loss against the learning rate on a log axis, each suggestion
/// marked and labelled. `marks` are `(label, lr, smoothed loss there)`.
pub fn plot_lr_find(
    lrs: &[f64],
    smoothed: &[f64],
    marks: &[(String, f64, f64)],
    path: &Path,
) -> Result<()> {
    register_font();
    let err = plot_error(path);
    render_png(path, (900, 550), |root| {
        let finite = || {
            lrs.iter()
                .zip(smoothed)
                .filter(|(l, s)| **l > 0.0 && s.is_finite())
        };
        let lr_min = finite().map(|(l, _)| *l).fold(f64::INFINITY, f64::min);
        let lr_max = finite().map(|(l, _)| *l).fold(0.0, f64::max);
        let (lr_min, lr_max) = if lr_min < lr_max {
            (lr_min, lr_max)
        } else {
            (1e-7, 10.0)
        };
        // a tight range: the interesting part is a small dip, not the distance from zero
        let y_range = tight_span(finite().map(|(_, s)| *s));
        let mut chart = ChartBuilder::on(root)
            .caption("Learning-rate range test", (FONT, 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(75)
            .build_cartesian_2d((lr_min..lr_max).log_scale(), y_range)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("Learning rate (log scale)")
            .y_desc("Smoothed loss")
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .y_label_formatter(&fixed)
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                finite().map(|(l, s)| (*l, *s)),
                BLUE.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label("smoothed loss")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        let colours = [RED, GREEN, MAGENTA, BLACK];
        for (k, (label, lr, loss)) in marks.iter().enumerate() {
            let colour = colours[k % colours.len()];
            let text = format!("{label}: {lr:.2e}");
            chart
                .draw_series([Circle::new((*lr, *loss), 6, colour.filled())])
                .map_err(|e| e.to_string())?
                .label(text)
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, colour.filled()));
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())
    })
    .map_err(err)
}

/// What [`plot_comparison`] shows of one run.
pub struct RunCurves<'a> {
    /// Legend text.
    pub label: &'a str,
    /// `(epoch, validation accuracy)`, epochs from 1.
    pub val_accuracy: Vec<(f64, f64)>,
    /// `(epoch, validation loss)`.
    pub val_loss: Vec<(f64, f64)>,
    /// Learning rate of every iteration, iteration 0 first.
    pub lrs: &'a [f64],
}

/// Colours told apart at a glance, one per run (repeating after ten).
const RUN_COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Several runs side by side: validation accuracy and validation loss per epoch on top, the
/// learning rate per iteration of every run overlaid below (log scale when the rates span more
/// than two decades), one colour per run throughout.
pub fn plot_comparison(runs: &[RunCurves], path: &Path) -> Result<()> {
    register_font();
    let err = plot_error(path);
    let series = |points: &dyn Fn(&RunCurves) -> Vec<(f64, f64)>| -> Vec<Series> {
        runs.iter()
            .enumerate()
            .map(|(k, run)| Series {
                label: run.label,
                color: RUN_COLOURS[k % RUN_COLOURS.len()],
                points: points(run),
            })
            .collect()
    };
    let accuracy = epoch_panel(
        "Validation accuracy",
        "Accuracy",
        SeriesLabelPosition::LowerRight,
    );
    let loss = epoch_panel("Validation loss", "Loss", SeriesLabelPosition::UpperRight);
    render_png(path, (1200, 950), |root| {
        let (top, bottom) = root.split_vertically(500);
        let (left, right) = top.split_horizontally(600);
        draw_panel(&left, &accuracy, &series(&|r| r.val_accuracy.clone()))?;
        draw_panel(&right, &loss, &series(&|r| r.val_loss.clone()))?;
        draw_lr_overlay(&bottom, runs)
    })
    .map_err(err)
}

/// Every run's learning rate per iteration in one panel, on a log axis when the rates span
/// more than two decades.
fn draw_lr_overlay<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    runs: &[RunCurves],
) -> std::result::Result<(), String> {
    let positive = || {
        runs.iter()
            .flat_map(|r| r.lrs.iter().copied())
            .filter(|&v| v > 0.0)
    };
    let low = positive().fold(f64::INFINITY, f64::min);
    let high = positive().fold(0.0, f64::max);
    // a little room around the curves, so the decades at both ends get their labels
    let (low, high) = if low < high {
        (low / 1.25, high * 1.25)
    } else {
        (1e-7, 1.0)
    };
    let iterations = runs.iter().map(|r| r.lrs.len()).max().unwrap_or(1).max(2) as f64;
    if high / low > 100.0 {
        let axis = LrAxis {
            desc: "Learning rate (log scale)",
            format: &|v| format!("{v:.0e}"),
        };
        draw_lr_lines(area, runs, 0.0..iterations, (low..high).log_scale(), axis)
    } else {
        let axis = LrAxis {
            desc: "Learning rate",
            format: &scientific,
        };
        draw_lr_lines(
            area,
            runs,
            0.0..iterations,
            span([low, high].into_iter()),
            axis,
        )
    }
}

/// How the learning-rate axis is labelled.
struct LrAxis<'a> {
    desc: &'a str,
    format: &'a dyn Fn(&f64) -> String,
}

fn draw_lr_lines<DB, Y>(
    area: &DrawingArea<DB, Shift>,
    runs: &[RunCurves],
    x: Range<f64>,
    y: Y,
    axis: LrAxis,
) -> std::result::Result<(), String>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption("Learning rate per iteration (colours as above)", (FONT, 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(x, y)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("Training iteration")
        .y_desc(axis.desc)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .x_label_formatter(&whole_numbers_only)
        .y_label_formatter(axis.format)
        .draw()
        .map_err(|e| e.to_string())?;
    for (k, run) in runs.iter().enumerate() {
        let colour = RUN_COLOURS[k % RUN_COLOURS.len()];
        let points = run
            .lrs
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0.0)
            .map(|(i, &v)| (i as f64, v));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Pixel layout of the confusion-matrix picture.
struct Grid {
    classes: usize,
    cell: i32,
    left: i32,
    top: i32,
}

impl Grid {
    fn new(classes: usize) -> Self {
        let cell = (720 / classes.max(1) as i32).clamp(14, 72);
        Self {
            classes,
            cell,
            left: 150,
            top: 70,
        }
    }

    fn size(&self) -> (u32, u32) {
        let side = self.cell * self.classes as i32;
        (
            (self.left + side + 40) as u32,
            (self.top + side + 80) as u32,
        )
    }

    /// Top-left corner of cell (row, column).
    fn corner(&self, row: usize, column: usize) -> (i32, i32) {
        (
            self.left + column as i32 * self.cell,
            self.top + row as i32 * self.cell,
        )
    }
}

/// White (0) to dark blue (1).
fn shade(share: f64) -> RGBColor {
    let mix = |to: f64| (255.0 + (to - 255.0) * share.clamp(0.0, 1.0)).round() as u8;
    RGBColor(mix(8.0), mix(48.0), mix(107.0))
}

/// A name cut to about `max_px` pixels of 12-point text.
fn fit_label(name: &str, max_px: i32) -> String {
    let max_chars = (max_px / 7).max(3) as usize;
    if name.chars().count() <= max_chars {
        name.to_string()
    } else {
        name.chars().take(max_chars - 1).collect::<String>() + "…"
    }
}

/// The confusion matrix: counts in the cells (when they fit), colours by share of the row (the
/// true class), class names on both axes. `counts[true][predicted]`.
pub fn plot_confusion(counts: &[Vec<usize>], names: &[String], path: &Path) -> Result<()> {
    register_font();
    let err = plot_error(path);
    let grid = Grid::new(names.len());
    render_png(path, grid.size(), |root| {
        let text = |size: u32, colour: &'static RGBColor, h: HPos, v: VPos| {
            TextStyle::from((FONT, size).into_font())
                .color(colour)
                .pos(Pos::new(h, v))
        };
        let draw_text = |s: &str, style: &TextStyle, at: (i32, i32)| {
            root.draw_text(s, style, at).map_err(|e| e.to_string())
        };
        let title = "Confusion matrix (rows: true class; colour: share of the row)";
        let (width, _) = grid.size();
        let centre = text(18, &BLACK, HPos::Center, VPos::Center);
        draw_text(title, &centre, (width as i32 / 2, 25))?;
        let side = grid.cell * grid.classes as i32;
        let axis = text(15, &BLACK, HPos::Center, VPos::Center);
        draw_text(
            "Predicted class",
            &axis,
            (grid.left + side / 2, grid.top + side + 60),
        )?;
        draw_text("True class", &axis, (grid.left / 2, grid.top - 15))?;
        let label = text(12, &BLACK, HPos::Right, VPos::Center);
        let column_label = text(12, &BLACK, HPos::Center, VPos::Top);
        for (i, name) in names.iter().enumerate() {
            let (x, y) = grid.corner(i, i);
            let half = grid.cell / 2;
            draw_text(
                &fit_label(name, grid.left - 12),
                &label,
                (grid.left - 6, y + half),
            )?;
            let short = fit_label(name, grid.cell + 4);
            draw_text(&short, &column_label, (x + half, grid.top + side + 6))?;
        }
        for (row, counts_row) in counts.iter().enumerate() {
            let total: usize = counts_row.iter().sum();
            for (column, &count) in counts_row.iter().enumerate() {
                let share = if total == 0 {
                    0.0
                } else {
                    count as f64 / total as f64
                };
                let (x, y) = grid.corner(row, column);
                let cell = [(x, y), (x + grid.cell, y + grid.cell)];
                root.draw(&Rectangle::new(cell, shade(share).filled()))
                    .and_then(|_| root.draw(&Rectangle::new(cell, RGBColor(200, 200, 200))))
                    .map_err(|e| e.to_string())?;
                if grid.cell >= 28 {
                    let ink = if share > 0.5 { &WHITE } else { &BLACK };
                    let style = text(13, ink, HPos::Center, VPos::Center);
                    let half = grid.cell / 2;
                    draw_text(&count.to_string(), &style, (x + half, y + half))?;
                }
            }
        }
        Ok(())
    })
    .map_err(err)
}
