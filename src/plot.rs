//! `tw plot FILE -o chart.svg`: a `tw watch --record` file as a chart: the
//! sockets in each state over time with the TIME_WAIT forecast, and the
//! TIME_WAIT inflow per second below.
//!
//! SVG only, drawn by plotters without its font features: text goes into the
//! file as `<text font-family="sans-serif">` and the viewer picks the font,
//! so tw reads no font file and needs no fontconfig. Text widths are
//! estimated (about 0.6 em a character) for the layout.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::analyze::watch::Record;
use crate::model::TcpState;
use crate::render::watch::{date_time, thousands};
use crate::source::input;

/// Chart size in pixels.
pub const SIZE: (u32, u32) = (1100, 960);

/// `tw plot`: reads `input`, writes the SVG to `output`; what had to be
/// left out goes to `err`.
pub fn plot(input: &Path, output: &Path, err: &mut dyn Write) -> Result<()> {
    let f = input::open(input).with_context(|| format!("{}: cannot open it", input.display()))?;
    let (records, warning) =
        read(BufReader::new(f)).map_err(|e| anyhow!("{}:{e}", input.display()))?;
    if let Some(w) = warning {
        writeln!(err, "tw: {}:{w}", input.display())?;
    }
    let svg = render(&records)?;
    std::fs::write(output, svg)
        .with_context(|| format!("-o {}: cannot write the chart", output.display()))
}

/// Longest record line read: one holds `--top` destinations, a few KiB.
pub const MAX_RECORD_LINE: usize = 1 << 20;

/// Reads JSON Lines as `tw watch` writes them; blank lines are skipped. The
/// error starts with the line number.
pub fn parse(r: impl BufRead) -> Result<Vec<Record>> {
    read(r).map(|(records, _)| records)
}

/// As [`parse`], and a last line cut short (a recording stopped mid-write)
/// is left out with a warning (starting with its line number) rather than
/// refusing the lines before it. Values that cannot be drawn are dropped
/// (see `plottable`).
pub fn read(mut r: impl BufRead) -> Result<(Vec<Record>, Option<String>)> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for n in 1.. {
        buf.clear();
        let got = (&mut r)
            .take(MAX_RECORD_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| anyhow!("{n}: reading: {e}"))?;
        if got == 0 {
            break;
        }
        let whole = buf.last() == Some(&b'\n');
        if !whole && buf.len() > MAX_RECORD_LINE {
            bail!(
                "{n}: a line over {} KiB; not a tw watch record",
                MAX_RECORD_LINE / 1024
            );
        }
        let line = String::from_utf8_lossy(&buf);
        if line.trim().is_empty() {
            continue;
        }
        let rec = match serde_json::from_str::<Record>(&line) {
            Ok(rec) => rec,
            Err(_) if !whole && !out.is_empty() => {
                return Ok((
                    out,
                    Some(format!(
                        "{n}: cut short (a recording stopped while writing?); \
                         plotted the lines before it"
                    )),
                ))
            }
            Err(e) => bail!(
                "{n}: not a tw watch record ({e}); record one with `tw watch --record FILE` \
                 or `tw watch > FILE`"
            ),
        };
        out.push(plottable(rec).ok_or_else(|| {
            anyhow!("{n}: a tw watch record with a time out of range; record it again")
        })?);
    }
    if out.is_empty() {
        bail!("0: no records; record some with `tw watch --record FILE`");
    }
    Ok((out, None))
}

/// Largest value drawn: past it (or not finite) a value is left out, since
/// an axis up to infinity never finishes its labels.
const MAX_VALUE: f64 = 1e15;

fn drawable(v: f64) -> Option<f64> {
    (v.is_finite() && v.abs() <= MAX_VALUE).then_some(v)
}

/// The record with what cannot be drawn dropped; `None` when its time
/// itself cannot be (every point sits on it).
fn plottable(mut r: Record) -> Option<Record> {
    drawable(r.time)?;
    drawable(r.elapsed_s)?;
    r.interval_s = r.interval_s.and_then(drawable).filter(|s| *s >= 0.0);
    let tw = &mut r.time_wait;
    for v in [
        &mut tw.inflow_per_s,
        &mut tw.rate_per_s,
        &mut tw.rate_window_s,
    ] {
        *v = v.and_then(drawable);
    }
    Some(r)
}

/// The colour of a state's line; the ones an operator watches stand out.
fn state_color(s: TcpState) -> RGBColor {
    match s {
        TcpState::TimeWait => RGBColor(214, 130, 0),
        TcpState::Established => RGBColor(40, 150, 60),
        TcpState::CloseWait => RGBColor(200, 40, 40),
        TcpState::Listen => RGBColor(30, 150, 190),
        TcpState::FinWait2 => RGBColor(140, 90, 190),
        TcpState::FinWait1 => RGBColor(180, 120, 200),
        TcpState::SynSent => RGBColor(90, 90, 220),
        TcpState::SynRecv => RGBColor(60, 60, 140),
        TcpState::LastAck => RGBColor(150, 100, 60),
        TcpState::Closing => RGBColor(120, 120, 120),
        TcpState::Close | TcpState::NewSynRecv => RGBColor(80, 80, 80),
    }
}

/// The chart as an SVG document.
pub fn render(records: &[Record]) -> Result<String> {
    let mut svg = String::new();
    draw(
        SVGBackend::with_string(&mut svg, SIZE).into_drawing_area(),
        records,
    )
    .map_err(|e| anyhow!("drawing the chart: {e}"))?;
    Ok(svg)
}

type DrawResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;
type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// How many destinations the ports panel draws, the busiest ones.
const PLOT_DESTINATIONS: usize = 5;
/// Their colours; red is kept for the usable line.
const DESTINATION_COLORS: [RGBColor; PLOT_DESTINATIONS] = [
    RGBColor(30, 90, 200),
    RGBColor(140, 70, 180),
    RGBColor(0, 140, 130),
    RGBColor(150, 100, 40),
    RGBColor(90, 90, 90),
];

fn draw(root: Area, records: &[Record]) -> DrawResult {
    root.fill(&WHITE)?;
    let first = &records[0];
    let t0 = first.elapsed_s - first.interval_s.unwrap_or(0.0);
    let span = (records[records.len() - 1].elapsed_s - t0).max(1.0);
    let x = |r: &Record| r.elapsed_s - t0;
    let netns = first
        .netns
        .as_ref()
        .map_or(String::new(), |n| format!(" in netns {n}"));
    let title = format!(
        "tw watch{netns}, {}: {} intervals over {:.0} s",
        date_time(first.time - first.interval_s.unwrap_or(0.0)),
        records.len(),
        span
    );
    let root = root.titled(&title, ("sans-serif", 22))?;
    let dests = busiest_destinations(records);
    let panels = if dests.is_empty() { 2 } else { 3 };
    let areas = root.split_evenly((panels, 1));

    // Sockets by state, with the TIME_WAIT forecast dashed.
    let states: Vec<TcpState> = TcpState::ALL
        .into_iter()
        .filter(|s| records.iter().any(|r| count(r, *s) > 0))
        .collect();
    let forecast = |r: &Record| r.time_wait.forecast;
    let peak = records
        .iter()
        .flat_map(|r| states.iter().map(|s| count(r, *s)).chain(forecast(r)))
        .max()
        .unwrap_or(0);
    let mut chart = panel(
        &areas[0],
        "Sockets by state (dashed: where TIME_WAIT settles at the current rate)",
        "sockets",
        span,
        peak as f64,
    )?;
    for s in &states {
        let color = state_color(*s);
        let points = records.iter().map(|r| (x(r), count(r, *s) as f64));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(s.name())
            .legend(move |p| legend_line(p, color, 2));
    }
    if records.iter().any(|r| forecast(r).is_some()) {
        let color = state_color(TcpState::TimeWait);
        let points = records
            .iter()
            .filter_map(|r| Some((x(r), forecast(r)? as f64)));
        chart
            .draw_series(DashedLineSeries::new(points, 6, 4, color.stroke_width(1)))?
            .label("TIME_WAIT forecast")
            .legend(move |p| legend_line(p, color, 1));
    }
    legend(&mut chart)?;

    // TIME_WAIT inflow: the kernel's counter and the rate behind the
    // forecast under the per-interval line.
    // An interval of 0 (a hand-made record) would be an infinite rate.
    let kernel = |r: &Record| {
        let interval = r.interval_s.filter(|s| *s > 0.0)?;
        drawable(r.time_wait.kernel_tw? as f64 / interval)
    };
    type Series<'a> = (&'a str, RGBColor, u32, &'a dyn Fn(&Record) -> Option<f64>);
    let lines: [Series; 3] = [
        (
            "kernel TcpExt TW counter",
            RGBColor(30, 120, 200),
            1,
            &kernel,
        ),
        (
            "rate behind the forecast (10 s mean)",
            RGBColor(60, 60, 60),
            1,
            &|r| r.time_wait.rate_per_s,
        ),
        (
            "new per second, each interval",
            state_color(TcpState::TimeWait),
            2,
            &|r| r.time_wait.inflow_per_s,
        ),
    ];
    let peak = records
        .iter()
        .flat_map(|r| lines.iter().filter_map(|l| (l.3)(r)))
        .fold(0.0, f64::max);
    let mut chart = panel(
        &areas[1],
        "TIME_WAIT inflow: new TIME_WAIT 4-tuples per second",
        "per second",
        span,
        peak,
    )?;
    for (label, color, width, value) in lines {
        if records.iter().all(|r| value(r).is_none()) {
            continue;
        }
        let points = records.iter().filter_map(|r| Some((x(r), value(r)?)));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(width)))?
            .label(label)
            .legend(move |p| legend_line(p, color, width));
    }
    legend(&mut chart)?;

    // Ports held per destination against what connect() can use.
    if let Some(ports) = areas.get(2) {
        let usable = records
            .iter()
            .flat_map(|r| r.destinations.iter().map(|d| d.usable))
            .max()
            .unwrap_or(0);
        let peak = records
            .iter()
            .flat_map(|r| r.destinations.iter().map(|d| d.held))
            .chain([usable])
            .max()
            .unwrap_or(0);
        let mut chart = panel(
            ports,
            "Ephemeral ports held per outbound destination (dashed: usable)",
            "ports",
            span,
            peak as f64,
        )?;
        for (i, (local, peer)) in dests.iter().enumerate() {
            let color = DESTINATION_COLORS[i % DESTINATION_COLORS.len()];
            let points = records.iter().filter_map(|r| {
                let d = r
                    .destinations
                    .iter()
                    .find(|d| &d.local == local && &d.peer == peer)?;
                Some((x(r), d.held as f64))
            });
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(format!("{local} -> {peer}"))
                .legend(move |(lx, ly)| {
                    PathElement::new([(lx, ly), (lx + 18, ly)], color.stroke_width(2))
                });
        }
        let limit = [(0.0, usable as f64), (span, usable as f64)];
        chart.draw_series(DashedLineSeries::new(limit, 6, 4, RED.stroke_width(1)))?;
        legend(&mut chart)?;
    }
    root.present()?;
    Ok(())
}

/// One panel: a caption, axes from 0, integer labels.
fn panel<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
    y_desc: &str,
    span: f64,
    peak: f64,
) -> DrawResult<Chart<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(34)
        .y_label_area_size(70)
        // Headroom above the peak for the legend, drawn at the upper left.
        .build_cartesian_2d(0f64..span, 0f64..(peak.max(1.0) * 1.4))?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc(y_desc)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| thousands(v.round() as u64))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    Ok(chart)
}

fn legend_line((x, y): (i32, i32), color: RGBColor, width: u32) -> PathElement<(i32, i32)> {
    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(width))
}

fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> DrawResult {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// Destinations by the most ports they ever held, at most
/// [`PLOT_DESTINATIONS`].
fn busiest_destinations(records: &[Record]) -> Vec<(String, String)> {
    let mut most: HashMap<(String, String), u64> = HashMap::new();
    for d in records.iter().flat_map(|r| &r.destinations) {
        let m = most.entry((d.local.clone(), d.peer.clone())).or_insert(0);
        *m = (*m).max(d.held);
    }
    let mut v: Vec<((String, String), u64)> = most.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.into_iter()
        .take(PLOT_DESTINATIONS)
        .map(|(k, _)| k)
        .collect()
}

fn count(r: &Record, s: TcpState) -> u64 {
    r.states.get(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../fixtures/watch/exhaustion.jsonl");

    #[test]
    fn records_parse_and_bad_lines_are_named() {
        let recs = parse(FIXTURE.as_bytes()).unwrap();
        assert_eq!(recs.len(), FIXTURE.lines().count());
        let e = parse("\n{\"time\": 1}\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("2: not a tw watch record"), "{e}");
        let e = parse("not json".as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("1: "), "{e}");
        let e = parse("\n\n".as_bytes()).unwrap_err().to_string();
        assert!(e.contains("no records"), "{e}");
    }

    #[test]
    fn the_chart_has_its_panels_lines_and_words() {
        let recs = parse(FIXTURE.as_bytes()).unwrap();
        let svg = render(&recs).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        for text in [
            "Sockets by state",
            "TIME_WAIT forecast",
            "TIME_WAIT inflow",
            "kernel TcpExt TW counter",
            "Ephemeral ports held per outbound destination",
            "127.0.0.1 -&gt; 127.0.0.2:8080",
            "2,000",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        // Text is left to the viewer's sans-serif: no font is embedded.
        assert!(svg.contains(r#"font-family="sans-serif""#));
        assert!(!svg.contains("@font-face"));
        // Lines through every record: one per state present (ESTABLISHED,
        // TIME_WAIT, LISTEN), the inflow, its mean and the kernel's, one
        // per destination (2). Dashes and legend keys are short segments.
        let full = svg
            .split("<polyline")
            .skip(1)
            .filter(|p| {
                let points = p
                    .split("points=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                points.split_whitespace().count() == recs.len()
            })
            .count();
        assert_eq!(full, 3 + 3 + 2);
    }

    #[test]
    fn the_title_names_the_namespace_watched() {
        let mut recs = parse(FIXTURE.as_bytes()).unwrap();
        assert!(!render(&recs).unwrap().contains("netns"));
        recs[0].netns = Some("edge".into());
        assert!(render(&recs).unwrap().contains("tw watch in netns edge, "));
    }

    /// Issue 12 item 6: a record with `interval_s: 0` made the kernel rate infinite and
    /// plotters spun for ever on an axis up to infinity; values past any axis did the same.
    #[test]
    fn an_interval_of_zero_or_huge_values_plot_without_spinning() {
        let line = FIXTURE.lines().nth(1).unwrap();
        let mut rec: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(rec["time_wait"]["kernel_tw"].as_i64().unwrap() > 0, "{rec}");
        rec["interval_s"] = 0.0.into();
        rec["time_wait"]["rate_per_s"] = 1e300.into();
        rec["time_wait"]["inflow_per_s"] = (-1e300).into();
        let text = format!("{}\n{rec}\n", FIXTURE.lines().next().unwrap());
        let (recs, warning) = read(text.as_bytes()).unwrap();
        assert_eq!((recs.len(), warning), (2, None));
        assert_eq!(recs[1].interval_s, Some(0.0));
        assert_eq!(recs[1].time_wait.rate_per_s, None);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(render(&recs).map(|s| s.len())).unwrap());
        let drawn = rx.recv_timeout(std::time::Duration::from_secs(20));
        assert!(matches!(drawn, Ok(Ok(n)) if n > 0), "{drawn:?}");
        // A time no axis can hold is refused, naming the line.
        rec["elapsed_s"] = 1e300.into();
        let e = parse(format!("{rec}\n").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("1: ") && e.contains("out of range"), "{e}");
    }

    /// Issue 12 item 6: a recording stopped mid-write (its last line cut short) is plotted up to
    /// that line, with a warning naming it; a broken line elsewhere is still refused.
    #[test]
    fn a_cut_last_line_plots_the_lines_before_it_with_a_warning() {
        let cut = &FIXTURE[..FIXTURE.len() - 40];
        let (recs, warning) = read(cut.as_bytes()).unwrap();
        let n = FIXTURE.lines().count();
        assert_eq!(recs.len(), n - 1);
        let w = warning.unwrap();
        assert!(w.starts_with(&format!("{n}: cut short")), "{w}");
        let broken = format!("{}\n{}", &FIXTURE[..FIXTURE.len() - 40], FIXTURE);
        assert!(read(broken.as_bytes()).is_err());
        // A line with no end is bounded.
        let endless = std::io::repeat(b'x').take(2 * MAX_RECORD_LINE as u64);
        let e = read(std::io::BufReader::new(endless))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a line over 1024 KiB"), "{e}");
    }

    #[test]
    fn one_record_is_enough() {
        let recs = parse(FIXTURE.lines().next().unwrap().as_bytes()).unwrap();
        assert!(render(&recs).unwrap().contains("1 intervals"));
    }
}
