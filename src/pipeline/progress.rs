//! Progress display: indicatif bars on a terminal, plain log lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::store::Stage;

/// Receives progress events from the pipeline. Implementations must be cheap:
/// they are called from async tasks.
pub trait Progress: Send + Sync {
    /// The run starts with `total` submissions.
    fn start(&self, total: usize);
    /// A stage of a candidate changed state (`running`, `done`, `skipped`, `failed: kind`, …).
    fn stage(&self, candidate: &str, stage: Stage, state: &str);
    /// A candidate is finished.
    fn finished(&self, candidate: &str, status: &str, outcome: &str);
    /// The run is over.
    fn end(&self);
}

/// Chooses bars when stderr is a terminal, log lines otherwise.
pub fn auto() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bars::new())
    } else {
        Box::new(Lines)
    }
}

/// Plain lines on stderr, one per event; good for CI logs and pipes.
pub struct Lines;

impl Progress for Lines {
    fn start(&self, total: usize) {
        eprintln!("assay: grading {total} submission(s)");
    }
    fn stage(&self, candidate: &str, stage: Stage, state: &str) {
        eprintln!("assay: {candidate}: {}: {state}", stage.as_str());
    }
    fn finished(&self, candidate: &str, status: &str, outcome: &str) {
        eprintln!("assay: {candidate}: {status} ({outcome})");
    }
    fn end(&self) {}
}

/// indicatif bars: one for the cohort, one spinner per submission in flight.
pub struct Bars {
    multi: MultiProgress,
    main: ProgressBar,
    active: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn new() -> Bars {
        let multi = MultiProgress::new();
        let main = multi.add(ProgressBar::new(0));
        main.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {elapsed_precise}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        main.set_prefix("grading");
        Bars {
            multi,
            main,
            active: Mutex::new(HashMap::new()),
        }
    }
}

impl Progress for Bars {
    fn start(&self, total: usize) {
        self.main.set_length(total as u64);
    }
    fn stage(&self, candidate: &str, stage: Stage, state: &str) {
        let mut active = self.active.lock().expect("progress lock");
        let bar = active.entry(candidate.to_string()).or_insert_with(|| {
            let b = self.multi.insert_before(&self.main, ProgressBar::new_spinner());
            b.set_style(ProgressStyle::with_template("{spinner} {prefix:>12} {msg}").expect("valid template"));
            b.set_prefix(candidate.to_string());
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        bar.set_message(format!("{}: {state}", stage.as_str()));
    }
    fn finished(&self, candidate: &str, status: &str, outcome: &str) {
        if let Some(bar) = self.active.lock().expect("progress lock").remove(candidate) {
            bar.finish_and_clear();
        }
        self.main.inc(1);
        self.multi.suspend(|| eprintln!("{candidate}: {status} ({outcome})"));
    }
    fn end(&self) {
        self.main.finish_and_clear();
    }
}
