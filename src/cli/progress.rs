//! Progress on stderr, for a person at a terminal (a bar) and for a log
//! file alike (one line per step when stderr is not a terminal, where a bar
//! would draw nothing). Shown with `--json` too: stdout keeps the one JSON
//! object, stderr says how far a long run has come.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// Progress of one task (training a tokenizer, an epoch loop).
pub struct Progress {
    task: String,
    bar: Option<ProgressBar>,
    start: Instant,
}

impl Progress {
    /// Starts reporting `task` (e.g. `adasid` or `gen-train`).
    pub fn new(task: &str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(1);
            bar.set_style(
                ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} {msg}")
                    .expect("valid template"),
            );
            bar.set_prefix(task.to_string());
            bar
        });
        Progress {
            task: task.to_string(),
            bar,
            start: Instant::now(),
        }
    }

    /// Step `step` of `of` is done; `message` says how it went.
    pub fn step(&self, step: usize, of: usize, message: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(of as u64);
                bar.set_position(step as u64);
                bar.set_message(message.to_string());
            }
            None => eprintln!(
                "{} {step}/{of} ({:.1}s) {message}",
                self.task,
                self.start.elapsed().as_secs_f64()
            ),
        }
    }

    /// Clears the bar (lines already printed stay).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
