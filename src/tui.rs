//! The live view of `tw watch` on a terminal: the TIME_WAIT inflow and where
//! it settles, a sparkline per state, the inflow over time next to the
//! TIME_WAIT time-left histogram, and the outbound destinations nearest to
//! running out of ports.
//!
//! Samples are taken on their own thread so a slow dump never delays a key.
//! The terminal is put back (raw mode off, main screen, cursor shown) on `q`,
//! Esc, Ctrl-C, SIGTERM/SIGHUP, an error, or a panic.

use std::collections::VecDeque;
use std::io::{self, stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, LazyLock, Once};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, Result};
use crossterm::cursor::{Hide, Show};
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};
use ratatui::{Frame, Terminal};

use crate::analyze::watch::Record;
use crate::model::TcpState;
use crate::render::watch::{seconds, thousands};

/// Samples kept for the sparklines: more than any terminal is wide.
const HISTORY: usize = 1000;

/// What feeds the live view: paced samples (`app::watch::Sampling`).
pub trait Feed {
    /// The baseline sample, at once.
    fn first(&mut self) -> Result<Record>;
    /// The next sample, after `wait` (false: stop early); `None` when done.
    fn next(&mut self, wait: &mut dyn FnMut(Duration) -> bool) -> Option<Result<Record>>;
    /// A note to show once (a fallback reader, a capture).
    fn take_note(&mut self) -> Option<String>;
}

/// Runs the live view until the user quits or `--count` intervals are done.
///
/// `open` makes the feed on the sampler thread, which takes every sample.
pub fn run<F: Feed>(
    open: impl FnOnce() -> Result<F> + Send + 'static,
    interval: Duration,
) -> Result<()> {
    let (first_tx, first_rx) = mpsc::channel::<Result<(Record, Option<String>)>>();
    let (tx, rx) = mpsc::channel::<Result<Record>>();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let sampler = thread::spawn(move || {
        let opened = open().and_then(|mut s| {
            let first = s.first()?;
            let note = s.take_note();
            Ok((s, first, note))
        });
        let mut sampling = match opened {
            Ok((s, first, note)) => {
                if first_tx.send(Ok((first, note))).is_err() {
                    return;
                }
                s
            }
            Err(e) => {
                let _ = first_tx.send(Err(e));
                return;
            }
        };
        let mut wait = |d| matches!(stop_rx.recv_timeout(d), Err(RecvTimeoutError::Timeout));
        while let Some(r) = sampling.next(&mut wait) {
            let failed = r.is_err();
            if tx.send(r).is_err() || failed {
                break;
            }
        }
    });
    // The baseline before the screen changes, so a failing read (no
    // permission, a bad filter) prints its error on the normal screen.
    let (first, note) = match first_rx.recv() {
        Ok(Ok(first)) => first,
        Ok(Err(e)) => {
            let _ = sampler.join();
            return Err(e);
        }
        // The sampler panicked; the hook has said why.
        Err(_) => {
            let _ = sampler.join();
            return Err(anyhow!("watch: the sampler stopped"));
        }
    };
    let mut view = View::new(interval, note);
    view.push(first);

    let result = Screen::enter().and_then(|_screen| {
        let mut terminal = Terminal::new(CrosstermBackend::new(stdout()))?;
        event_loop(&mut terminal, &rx, &mut view)
    });
    // The screen is restored here (its guard dropped). Stop the sampler; it
    // finishes a read in progress first.
    drop(stop_tx);
    drop(rx);
    let _ = sampler.join();
    result
}

fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
    rx: &mpsc::Receiver<Result<Record>>,
    view: &mut View,
) -> Result<()> {
    loop {
        if !ACTIVE.load(Ordering::SeqCst) {
            // A panic hook restored the screen under us.
            return Err(anyhow!("watch: the sampler stopped"));
        }
        terminal.draw(|f| draw(f, view))?;
        if event::poll(Duration::from_millis(100))? {
            match event::read()? {
                Event::Key(k) if k.kind == KeyEventKind::Press => {
                    let ctrl_c =
                        k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                    if ctrl_c || matches!(k.code, KeyCode::Char('q' | 'Q') | KeyCode::Esc) {
                        return Ok(());
                    }
                }
                // A resize needs only the redraw at the top of the loop.
                _ => {}
            }
        }
        if TERMINATE.load(Ordering::SeqCst) || terminal_gone() {
            return Ok(());
        }
        loop {
            match rx.try_recv() {
                Ok(Ok(r)) => view.push(r),
                Ok(Err(e)) => return Err(e),
                Err(TryRecvError::Empty) => break,
                // --count intervals done: show the last one, then leave.
                Err(TryRecvError::Disconnected) => {
                    terminal.draw(|f| draw(f, view))?;
                    return Ok(());
                }
            }
        }
    }
}

/// True when the terminal has hung up (its window closed, the ssh session
/// dropped, tmux killed) even if no SIGHUP reached us: nothing to draw on,
/// nothing to restore.
pub(crate) fn terminal_gone() -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let out = std::io::stdout();
    let mut fds = [PollFd::new(&out, PollFlags::empty())];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&now)).is_ok_and(|n| n > 0)
        && fds[0]
            .revents()
            .intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL)
}

/// True while the terminal is in raw mode on the alternate screen.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Set by SIGTERM, SIGHUP or SIGINT.
static TERMINATE: LazyLock<Arc<AtomicBool>> = LazyLock::new(Arc::default);

/// The terminal in raw mode on the alternate screen, cursor hidden, until
/// dropped.
pub(crate) struct Screen;

impl Screen {
    pub(crate) fn enter() -> Result<Screen> {
        static HOOKS: Once = Once::new();
        HOOKS.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
            for sig in [SIGTERM, SIGHUP, SIGINT] {
                // Best effort: without it, a signal ends tw the default way
                // and the terminal is left raw.
                let _ = signal_hook::flag::register(sig, Arc::clone(&TERMINATE));
            }
        });
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let screen = Screen;
        execute!(stdout(), EnterAlternateScreen, Hide)?;
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// SIGTERM, SIGHUP or SIGINT seen (`tw trace` checks it between drains;
/// [`catch_signals`] or [`Screen::enter`] installs the handlers).
pub(crate) fn terminated() -> bool {
    TERMINATE.load(Ordering::SeqCst)
}

/// Turns SIGTERM, SIGHUP and SIGINT into [`terminated`], so a loop can end
/// its last interval cleanly.
pub(crate) fn catch_signals() {
    for sig in [SIGTERM, SIGHUP, SIGINT] {
        // Best effort: without it, a signal ends tw the default way.
        let _ = signal_hook::flag::register(sig, Arc::clone(&TERMINATE));
    }
}

/// Puts the terminal back, once, whoever asks first (the guard or the
/// panic hook).
fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = disable_raw_mode();
        let _ = execute!(stdout(), LeaveAlternateScreen, Show);
    }
}

/// What the view shows: the samples so far and the states ever seen.
pub struct View {
    interval: Duration,
    note: Option<String>,
    history: VecDeque<Record>,
    /// States with a socket at any sample, in kernel order, so rows appear
    /// but never move or vanish.
    states: Vec<TcpState>,
}

impl View {
    pub fn new(interval: Duration, note: Option<String>) -> View {
        View {
            interval,
            note,
            history: VecDeque::new(),
            states: Vec::new(),
        }
    }

    pub fn push(&mut self, r: Record) {
        for s in TcpState::ALL {
            if r.states.get(s) > 0 && !self.states.contains(&s) {
                self.states.push(s);
            }
        }
        self.states.sort();
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(r);
    }

    /// The last `n` values of `f`, oldest first.
    fn series(&self, n: usize, f: impl Fn(&Record) -> u64) -> Vec<u64> {
        let skip = self.history.len().saturating_sub(n);
        self.history.iter().skip(skip).map(f).collect()
    }
}

const DIM: Style = Style::new().fg(Color::DarkGray);
const BOLD: Style = Style::new().add_modifier(Modifier::BOLD);

fn state_style(s: TcpState) -> Style {
    match s {
        TcpState::TimeWait => Style::new().fg(Color::Yellow),
        TcpState::CloseWait => Style::new().fg(Color::Red),
        TcpState::Established => Style::new().fg(Color::Green),
        TcpState::Listen => Style::new().fg(Color::Cyan),
        _ => Style::new(),
    }
}

/// Draws the whole view into the frame.
pub fn draw(f: &mut Frame, view: &View) {
    let Some(last) = view.history.back() else {
        return;
    };
    let area = f.area();
    // States and destinations get their rows; the inflow chart what is
    // left: 4 rows up to a third of the screen.
    let states_h = view.states.len() as u16 + 1;
    let dests_h = last.destinations.len().max(1) as u16 + 2;
    let inflow_h = area
        .height
        .saturating_sub(2 + states_h + dests_h)
        .clamp(4, (area.height / 3).max(10));
    let [header, headline, states, inflow, dests, _] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(states_h),
        Constraint::Length(inflow_h),
        Constraint::Length(dests_h),
        Constraint::Min(0),
    ])
    .areas(area);
    draw_header(f, header, view, last);
    f.render_widget(Paragraph::new(headline_text(last)), headline);
    draw_states(f, states, view, last);
    draw_inflow(f, inflow, view, last);
    draw_destinations(f, dests, view, last);
}

fn draw_header(f: &mut Frame, area: Rect, view: &View, last: &Record) {
    let every = humantime(view.interval);
    // The namespace watched (--netns), within a third of the line so the
    // clock and "q quits" still show.
    let netns = last.netns.as_ref().map_or_else(String::new, |n| {
        format!(" · netns {}", clip(n, (area.width as usize / 3).max(8)))
    });
    let left = format!(
        " tw watch{netns} · every {every} · {} · {}",
        crate::render::watch::clock(last.time),
        elapsed(last.elapsed_s)
    );
    // A note (such as a fallback to /proc) gets what room is left, so
    // "q quits" always shows.
    let room = (area.width as usize).saturating_sub(left.chars().count() + "q quits ".len() + 4);
    let right = match &view.note {
        Some(n) if room >= 10 => format!("{} · q quits ", clip(n, room)),
        _ => "q quits ".to_string(),
    };
    let pad = (area.width as usize).saturating_sub(left.chars().count() + right.chars().count());
    let line = format!("{left}{}{right}", " ".repeat(pad));
    f.render_widget(
        Paragraph::new(line).style(Style::new().add_modifier(Modifier::REVERSED)),
        area,
    );
}

/// The one line that answers the question: how fast, and where it settles.
fn headline_text(r: &Record) -> Line<'static> {
    let tw = &r.time_wait;
    let mut spans = vec![
        Span::styled(
            "TIME_WAIT ",
            state_style(TcpState::TimeWait).add_modifier(Modifier::BOLD),
        ),
        Span::styled(thousands(tw.count), BOLD),
    ];
    match (r.interval_s, tw.inflow_per_s, tw.rate_per_s) {
        (None, _, Some(avg)) => {
            spans.push(Span::raw(format!("  in {}/s", rate(avg))));
            spans.push(Span::styled(" (last 10s, from timer ages)", DIM));
        }
        (None, _, _) => spans.push(Span::styled("  measuring the inflow…", DIM)),
        (Some(_), None, _) | (Some(_), _, None) => {
            spans.push(Span::styled("  (not in --state: no inflow)", DIM))
        }
        (Some(secs), Some(now), Some(avg)) => {
            spans.push(Span::raw(format!("  in {}/s", rate(now))));
            let window = tw.rate_window_s.unwrap_or(0.0);
            spans.push(Span::styled(
                format!(" ({window:.0}s avg {}/s", rate(avg)),
                DIM,
            ));
            if let Some(k) = tw.kernel_tw {
                spans.push(Span::styled(
                    format!(", kernel {}/s", rate(k as f64 / secs)),
                    DIM,
                ));
            }
            spans.push(Span::styled(")", DIM));
            if let Some(fc) = tw.forecast {
                spans.push(Span::raw("  settles at "));
                spans.push(Span::styled(thousands(fc), BOLD));
            }
            if let Some(e) = crate::render::watch::events_text(r) {
                spans.push(Span::styled(format!("  ({e})"), DIM));
            }
        }
    }
    Line::from(spans)
}

fn section(title: &str) -> Block<'_> {
    Block::new()
        .borders(Borders::TOP)
        .border_style(DIM)
        .title(Span::styled(format!(" {title} "), BOLD))
}

fn draw_states(f: &mut Frame, area: Rect, view: &View, last: &Record) {
    let block = section("States, each line scaled to its own peak");
    let inner = block.inner(area);
    f.render_widget(block, area);
    const NAME: usize = 12;
    const COUNT: usize = 9;
    let spark_w = (inner.width as usize).saturating_sub(NAME + COUNT + 2);
    let lines: Vec<Line> = view
        .states
        .iter()
        .take(inner.height as usize)
        .map(|s| {
            let now = last.states.get(*s);
            let values = view.series(spark_w, |r| r.states.get(*s));
            Line::from(vec![
                Span::styled(format!("{:<NAME$}", s.name()), state_style(*s)),
                Span::styled(format!("{:>COUNT$}", thousands(now)), BOLD),
                Span::raw("  "),
                Span::styled(spark(&values), state_style(*s)),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

fn draw_inflow(f: &mut Frame, area: Rect, view: &View, last: &Record) {
    // The time-left histogram needs 24 columns for its 12 slots.
    let hist_w = if area.width >= 70 { 28 } else { 0 };
    let [left, right] =
        Layout::horizontal([Constraint::Min(10), Constraint::Length(hist_w)]).areas(area);
    // Intervals only: the baseline sample has no inflow.
    let all: Vec<u64> = view
        .history
        .iter()
        .filter_map(|r| r.time_wait.inflow_per_s.map(|v| v.round() as u64))
        .collect();
    let values = &all[all.len().saturating_sub(left.width as usize)..];
    let peak = values.iter().copied().max().unwrap_or(0);
    let title = format!("TIME_WAIT inflow per second, peak {}/s", thousands(peak));
    let block = section(&title);
    let inner = block.inner(left);
    f.render_widget(block, left);
    f.render_widget(
        Sparkline::default()
            .data(values)
            .style(state_style(TcpState::TimeWait)),
        inner,
    );
    if hist_w == 0 {
        return;
    }
    let block = section("Expiring, per 5 s").borders(Borders::TOP | Borders::LEFT);
    let inner = block.inner(right);
    f.render_widget(block, right);
    let [bars, axis] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    // Each slot two columns wide; the soonest on the left.
    let doubled: Vec<u64> = last
        .time_wait
        .left_5s_slots
        .iter()
        .flat_map(|n| [*n, *n])
        .collect();
    f.render_widget(
        Sparkline::default()
            .data(&doubled)
            .style(DIM.fg(Color::Yellow)),
        bars,
    );
    f.render_widget(
        Paragraph::new(Span::styled(format!("{:<12}{:<9}60s", "0s", "30s"), DIM)),
        axis,
    );
}

fn draw_destinations(f: &mut Frame, area: Rect, view: &View, last: &Record) {
    if area.height < 2 {
        return;
    }
    let usable = last.destinations.first().map_or(0, |d| d.usable);
    let title = format!(
        "Outbound destinations: ports held of {} usable each",
        thousands(usable)
    );
    let block = section(&title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if last.destinations.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled(
                "none: no connect()ed socket holds an ephemeral port",
                DIM,
            )),
            inner,
        );
        return;
    }
    // DESTINATION gets what the numbers leave, up to 47 (two IPv6 addresses).
    const NUMS: usize = 7 + 8 + 9 + 9 + 9;
    let dest_w = (inner.width as usize)
        .saturating_sub(NUMS + 2 + 8)
        .clamp(12, 47);
    let spark_w = (inner.width as usize).saturating_sub(dest_w + NUMS + 2);
    let mut lines = vec![Line::styled(
        format!(
            "{:<dest_w$}{:>7}{:>8}{:>9}{:>9}{:>9}  {}",
            "DESTINATION", "HELD", "FREE", "NEW/S", "SETTLES", "FULL IN", "HISTORY"
        ),
        DIM,
    )];
    for d in last.destinations.iter().take(inner.height as usize - 1) {
        let name = format!("{} → {}", d.local, d.peer);
        let name = if name.chars().count() > dest_w - 1 {
            let cut: String = name.chars().take(dest_w - 2).collect();
            format!("{cut}…")
        } else {
            name
        };
        let settles = if d.usable == 0 {
            "-".to_string()
        } else {
            format!("{:.0}%", d.settles_at as f64 * 100.0 / d.usable as f64)
        };
        let full_style = match d.exhausted_in_s {
            Some(_) => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            None if d.settles_at * 10 >= d.usable * 7 => Style::new().fg(Color::Yellow),
            None => Style::new(),
        };
        let held = view.series(spark_w, |r| {
            r.destinations
                .iter()
                .find(|x| x.local == d.local && x.peer == d.peer)
                .map_or(0, |x| x.held)
        });
        lines.push(Line::from(vec![
            Span::raw(format!("{name:<dest_w$}")),
            Span::styled(format!("{:>7}", thousands(d.held)), BOLD),
            Span::raw(format!("{:>8}", thousands(d.free))),
            Span::raw(format!("{:>9}", d.rate_per_s.map_or("-".into(), rate))),
            Span::raw(format!("{settles:>9}")),
            Span::styled(format!("{:>9}", full_in(d)), full_style),
            Span::raw("  "),
            Span::styled(spark(&held), DIM.fg(Color::Yellow)),
        ]));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

/// `text` cut to `max` characters (at least 1), the last one `…` when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        text.chars().take(max.max(1) - 1).chain(['…']).collect()
    } else {
        text.to_string()
    }
}

/// `never` is only said once a rate is known.
fn full_in(d: &crate::analyze::watch::DestinationRecord) -> String {
    match (d.exhausted_in_s, d.rate_per_s) {
        (None, None) => "-".to_string(),
        (t, _) => seconds(t),
    }
}

/// A rate with sensible precision: `0.4`, `12.5`, `201`.
fn rate(v: f64) -> String {
    if v < 100.0 {
        format!("{v:.1}")
    } else {
        thousands(v.round() as u64)
    }
}

/// Values as one line of block characters scaled to their peak; zero is a
/// space, anything above zero at least the lowest block.
pub fn spark(values: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if v == 0 || max == 0 {
                ' '
            } else {
                let i = ((v as f64 / max as f64) * 7.0).round() as usize;
                BARS[i.min(7)]
            }
        })
        .collect()
}

fn humantime(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn elapsed(s: f64) -> String {
    let s = s as u64;
    if s < 3600 {
        format!("{}:{:02}", s / 60, s % 60)
    } else {
        format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::watch::{DestinationRecord, TimeWaitRecord};
    use ratatui::backend::TestBackend;

    fn record(elapsed: f64, tw: u64, rate: Option<f64>) -> Record {
        let states = crate::analyze::watch::StateCounts {
            time_wait: tw,
            established: 40,
            listen: 2,
            ..Default::default()
        };
        let mut left = [0; crate::analyze::aggregate::TW_SLOTS];
        left[11] = tw;
        Record {
            schema_version: crate::model::schema::SchemaVersion,
            time: 1.7e9 + elapsed,
            elapsed_s: elapsed,
            interval_s: rate.map(|_| 1.0),
            total: tw + 42,
            states,
            time_wait: TimeWaitRecord {
                count: tw,
                inbound: 0,
                outbound: tw,
                new: rate.map(|r| r as u64),
                inflow_per_s: rate,
                rate_per_s: rate,
                rate_window_s: rate.map(|_| elapsed),
                forecast: rate.map(|r| (r * 60.0) as u64),
                kernel_tw: rate.map(|r| r as i64),
                kernel_recycled: Some(0),
                left_5s_slots: left,
                count_from: None,
                connect_failed: None,
                tw_reused: None,
            },
            destinations: vec![DestinationRecord {
                local: "127.0.0.1".into(),
                peer: "127.0.0.2:8080".into(),
                held: tw + 20,
                time_wait: tw,
                usable: 2000,
                usable_first_choice: Some(1000),
                held_first_choice: Some(tw + 20),
                free: 2000 - (tw + 20),
                new: rate.map(|r| r as u64),
                rate_per_s: rate,
                settles_at: 20 + rate.map_or(0, |r| (r * 60.0) as u64),
                exhausted_in_s: rate.map(|r| (2000 - (tw + 20)) as f64 / r),
                connect_failed: None,
                tw_reused: None,
            }],
            netns: None,
            inflow_from: None,
            dump_age_s: None,
            processes: None,
            events_lost: None,
        }
    }

    fn screen(view: &View, w: u16, h: u16) -> Vec<String> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, view)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..h)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>())
            .collect()
    }

    fn view() -> View {
        let mut v = View::new(Duration::from_secs(1), None);
        v.push(record(0.0, 0, None));
        for t in 1..=6 {
            v.push(record(t as f64, t * 200, Some(200.0)));
        }
        v
    }

    #[test]
    fn the_view_answers_rate_forecast_and_time_to_exhaustion_at_80x24() {
        let s = screen(&view(), 80, 24);
        let text = s.join("\n");
        assert!(s[0].starts_with(" tw watch · every 1s · "), "{text}");
        assert!(s[0].trim_end().ends_with("q quits"), "{text}");
        assert!(
            s[1].starts_with(
                "TIME_WAIT 1,200  in 200/s (6s avg 200/s, kernel 200/s)  settles at 12,000"
            ),
            "{text}"
        );
        // States in kernel order, each with a sparkline of its history.
        assert!(s[2].contains("States"), "{text}");
        assert!(s[3].starts_with("ESTABLISHED        40  "), "{text}");
        // 0 (the baseline) is blank; 200 of 1,200 the second step.
        assert!(s[4].starts_with("TIME_WAIT       1,200   ▂▃▅▆▇█"), "{text}");
        assert!(s[5].starts_with("LISTEN              2  "), "{text}");
        assert!(
            text.contains("TIME_WAIT inflow per second, peak 200/s"),
            "{text}"
        );
        assert!(text.contains("Expiring, per 5 s"), "{text}");
        assert!(text.contains("0s          30s      60s"), "{text}");
        let dest = s
            .iter()
            .find(|l| l.starts_with("127.0.0.1 → 127.0.0.2:8080"))
            .expect(&text);
        // 780 free at 200/s: 3.9 s.
        let cols: Vec<&str> = dest.split_whitespace().collect();
        assert_eq!(
            &cols[3..9],
            ["1,220", "780", "200", "601%", "4s", "▁▂▃▅▆▇█"],
            "{dest}"
        );
        assert!(text.contains("ports held of 2,000 usable each"), "{text}");
    }

    #[test]
    fn the_first_sample_says_it_is_measuring() {
        let mut v = View::new(Duration::from_millis(500), Some("note".into()));
        v.push(record(0.0, 10, None));
        let s = screen(&v, 80, 24);
        assert!(s[0].contains("every 500ms"), "{}", s[0]);
        assert!(s[0].trim_end().ends_with("note · q quits"), "{}", s[0]);
        let long = "sock_diag netlink unavailable (Operation not permitted); reading /proc/net/tcp";
        let mut v = View::new(Duration::from_secs(1), Some(long.into()));
        v.push(record(0.0, 10, None));
        let s = screen(&v, 80, 24);
        assert!(s[0].contains("sock_diag netlink"), "{}", s[0]);
        assert!(s[0].trim_end().ends_with("… · q quits"), "{}", s[0]);
        assert!(s[1].contains("measuring the inflow"), "{}", s[1]);
        let dest = s.iter().find(|l| l.starts_with("127.0.0.1")).unwrap();
        assert!(dest.contains("  -  "), "no rate yet, no verdict: {dest}");
    }

    #[test]
    fn the_header_names_the_namespace_watched() {
        let mut v = View::new(Duration::from_secs(1), None);
        let mut r = record(0.0, 10, None);
        r.netns = Some("blue".into());
        v.push(r);
        let s = screen(&v, 80, 24);
        assert!(
            s[0].starts_with(" tw watch · netns blue · every 1s · "),
            "{}",
            s[0]
        );
        let mut r = record(1.0, 10, Some(1.0));
        r.netns = Some(format!("/proc/{}/ns/net", "9".repeat(40)));
        v.push(r);
        let s = screen(&v, 80, 24);
        assert!(s[0].contains(" · netns /proc/9"), "{}", s[0]);
        assert!(s[0].contains("… · every 1s · "), "{}", s[0]);
        assert!(s[0].trim_end().ends_with("q quits"), "{}", s[0]);
    }

    #[test]
    fn any_size_draws_without_panicking() {
        let v = view();
        for (w, h) in [(20, 5), (40, 12), (80, 24), (132, 43), (250, 80), (1, 1)] {
            let s = screen(&v, w, h);
            assert_eq!(s.len(), h as usize);
        }
        // Wider terminals show more of the destination.
        let wide = screen(&v, 200, 50).join("\n");
        assert!(wide.contains("127.0.0.1 → 127.0.0.2:8080"), "{wide}");
    }

    #[test]
    fn sparklines_scale_to_their_peak() {
        assert_eq!(spark(&[0, 1, 2, 4, 8]), " ▂▃▅█");
        assert_eq!(spark(&[5, 5]), "██");
        assert_eq!(spark(&[0, 0]), "  ");
        assert_eq!(spark(&[]), "");
    }
}
