//! The live terminal output: a time-stamped timeline, and (on a TTY) a progress line redrawn
//! below it with plain ANSI escapes. Without a TTY the progress becomes a status line every
//! 5 s and colours are off; `--quiet` prints nothing but the summary.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::workload::Live;

/// How output is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputMode {
    /// Colours and a live progress line (stdout is a terminal).
    Interactive,
    /// Timeline lines and a periodic status line, no escapes (pipes, CI logs).
    Plain,
    /// Nothing live; the caller prints the report if it wants.
    Quiet,
}

impl OutputMode {
    /// Interactive on a terminal (unless `NO_COLOR` or `TERM=dumb`), plain otherwise.
    pub(crate) fn detect() -> Self {
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        if std::io::stdout().is_terminal() && !dumb && std::env::var_os("NO_COLOR").is_none() {
            Self::Interactive
        } else {
            Self::Plain
        }
    }
}

/// The colour (and symbol) of a timeline line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    /// A fault was injected.
    Fault,
    /// A fault was healed.
    Heal,
    /// The session lost its connection.
    Lost,
    /// The session is back.
    Back,
    /// Something unexpected.
    Warn,
    /// Anything else.
    Info,
}

impl Tone {
    fn style(self) -> (&'static str, &'static str) {
        match self {
            Self::Fault => ("\x1b[1;31m", "!!"),
            Self::Heal => ("\x1b[36m", "++"),
            Self::Lost => ("\x1b[33m", "->"),
            Self::Back => ("\x1b[1;32m", "<-"),
            Self::Warn => ("\x1b[35m", " *"),
            Self::Info => ("\x1b[2m", "  "),
        }
    }
}

const RESET: &str = "\x1b[0m";
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

#[derive(Debug, Default)]
struct State {
    t0: Option<Instant>,
    total: Duration,
    /// The progress line currently on screen (interactive mode).
    progress: Option<String>,
    frame: usize,
}

/// The terminal.
#[derive(Debug)]
pub(crate) struct Ui {
    mode: OutputMode,
    state: Mutex<State>,
}

impl Ui {
    pub(crate) fn new(mode: OutputMode) -> Self {
        Self {
            mode,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether ANSI colours are used.
    pub(crate) fn color(&self) -> bool {
        self.mode == OutputMode::Interactive
    }

    /// The workload starts now and runs `total`.
    pub(crate) fn start(&self, t0: Instant, total: Duration) {
        let mut s = self.lock();
        s.t0 = Some(t0);
        s.total = total;
    }

    /// A set-up line (before the timeline starts).
    pub(crate) fn setup(&self, text: &str) {
        if self.mode == OutputMode::Quiet {
            return;
        }
        let line = if self.color() {
            format!("\x1b[1m==>{RESET} {text}")
        } else {
            format!("==> {text}")
        };
        self.print(&mut self.lock(), &line);
    }

    /// A time-stamped timeline line.
    pub(crate) fn event(&self, tone: Tone, text: &str) {
        if self.mode == OutputMode::Quiet {
            return;
        }
        let mut s = self.lock();
        let t = s.t0.map_or(0.0, |t0| t0.elapsed().as_secs_f64());
        let (color, symbol) = tone.style();
        let line = if self.color() {
            format!("\x1b[2m{t:8.3} s{RESET} {color}{symbol} {text}{RESET}")
        } else {
            format!("{t:8.3} s {symbol} {text}")
        };
        self.print(&mut s, &line);
    }

    /// Prints a block of lines (the summary).
    pub(crate) fn block(&self, text: &str) {
        if self.mode == OutputMode::Quiet {
            return;
        }
        self.print(&mut self.lock(), text);
    }

    /// Removes the progress line for good.
    pub(crate) fn end_progress(&self) {
        let mut s = self.lock();
        if s.progress.take().is_some() {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
        }
    }

    /// Prints `line` above the progress line (which is redrawn).
    fn print(&self, s: &mut State, line: &str) {
        let mut out = std::io::stdout().lock();
        if s.progress.is_some() {
            let _ = write!(out, "\r\x1b[2K");
        }
        let _ = writeln!(out, "{line}");
        if let Some(p) = &s.progress {
            let _ = write!(out, "{p}");
        }
        let _ = out.flush();
    }

    /// Redraws the progress line (interactive) or prints a status line (plain).
    fn progress(&self, live: &Live) {
        let mut s = self.lock();
        let Some(t0) = s.t0 else { return };
        let elapsed = t0.elapsed();
        let total = s.total.max(Duration::from_millis(1));
        let done = (elapsed.as_secs_f64() / total.as_secs_f64()).clamp(0.0, 1.0);
        let (server, state) = live.server();
        let status = format!(
            "{:5.1}/{:.0} s | on {server} ({state:?}) | writes {} ok {} lost | reads {} ok {} failed | watch events {} | resyncs {}",
            elapsed.as_secs_f64().min(total.as_secs_f64()),
            total.as_secs_f64(),
            Live::get(&live.writes_ok),
            Live::get(&live.writes_unknown) + Live::get(&live.writes_failed),
            Live::get(&live.reads_ok),
            Live::get(&live.reads_failed),
            Live::get(&live.watch_events),
            Live::get(&live.resyncs),
        );
        match self.mode {
            OutputMode::Quiet => {}
            OutputMode::Plain => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{:8.3} s    [{status}]", elapsed.as_secs_f64());
                let _ = out.flush();
            }
            OutputMode::Interactive => {
                const WIDTH: usize = 20;
                // `done` is within 0..=1.
                let filled = ((done * WIDTH as f64).round() as usize).min(WIDTH);
                s.frame = (s.frame + 1) % SPINNER.len();
                let mut line = format!(
                    "{} [{}{}] {status}",
                    SPINNER[s.frame],
                    "#".repeat(filled),
                    ".".repeat(WIDTH - filled)
                );
                let columns = std::env::var("COLUMNS")
                    .ok()
                    .and_then(|c| c.parse::<usize>().ok())
                    .unwrap_or(160);
                if line.chars().count() >= columns {
                    line = line.chars().take(columns.saturating_sub(1)).collect();
                }
                let line = format!("\x1b[36m{line}{RESET}");
                let mut out = std::io::stdout().lock();
                let _ = write!(out, "\r\x1b[2K{line}");
                let _ = out.flush();
                s.progress = Some(line);
            }
        }
    }
}

/// Redraws the progress every 100 ms (interactive) or prints a status line every 5 s
/// (plain) until `end`.
pub(crate) async fn ticker(ui: Arc<Ui>, live: Arc<Live>, mut end: watch::Receiver<bool>) {
    let every = match ui.mode {
        OutputMode::Quiet => return,
        OutputMode::Plain => Duration::from_secs(5),
        OutputMode::Interactive => Duration::from_millis(100),
    };
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => ui.progress(&live),
            _ = end.changed() => break,
        }
    }
}
