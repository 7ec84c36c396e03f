//! The demo's output: a readable timeline with timestamps and measured
//! latencies, then a summary table of guarantees (or JSON lines with
//! `--json`).

use std::time::{Duration, Instant};

/// One guarantee's result.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Outcome {
    pub(crate) guarantee: &'static str,
    pub(crate) held: bool,
    pub(crate) measured: String,
}

/// Prints as the demo goes and keeps the results.
pub(crate) struct Timeline {
    start: Instant,
    json: bool,
    pub(crate) outcomes: Vec<Outcome>,
}

/// A latency for people: µs below 1 ms, ms below 1 s, else seconds.
pub(crate) fn human(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{}µs", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{:.1}ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

impl Timeline {
    pub(crate) fn new(json: bool) -> Self {
        Timeline {
            start: Instant::now(),
            json,
            outcomes: Vec::new(),
        }
    }

    /// A section heading.
    pub(crate) fn section(&self, title: &str) {
        if self.json {
            self.emit("section", title, None);
        } else {
            println!("\n── {title}");
        }
    }

    /// One event, optionally with the latency it took.
    pub(crate) fn event(&self, what: &str, latency: Option<Duration>) {
        if self.json {
            self.emit("event", what, latency);
        } else {
            let t = self.start.elapsed().as_secs_f64();
            match latency {
                Some(l) => println!("[{t:7.3}s] {what}  ({})", human(l)),
                None => println!("[{t:7.3}s] {what}"),
            }
        }
    }

    fn emit(&self, kind: &str, what: &str, latency: Option<Duration>) {
        let line = serde_json::json!({
            "t_s": self.start.elapsed().as_secs_f64(),
            "kind": kind,
            "what": what,
            "latency_us": latency.map(|l| l.as_micros() as u64),
        });
        println!("{line}");
    }

    /// Record whether a guarantee held, with what was measured.
    pub(crate) fn verdict(&mut self, guarantee: &'static str, held: bool, measured: String) {
        let mark = if held { "held" } else { "DID NOT HOLD" };
        self.event(&format!("=> {guarantee}: {mark} ({measured})"), None);
        self.outcomes.push(Outcome {
            guarantee,
            held,
            measured,
        });
    }

    /// The summary table; the number of guarantees that did not hold.
    pub(crate) fn summary(&self) -> usize {
        let failed = self.outcomes.iter().filter(|o| !o.held).count();
        if self.json {
            let line = serde_json::json!({
                "kind": "summary",
                "elapsed_s": self.start.elapsed().as_secs_f64(),
                "held": self.outcomes.len() - failed,
                "failed": failed,
                "guarantees": self.outcomes,
            });
            println!("{line}");
            return failed;
        }
        let width = self
            .outcomes
            .iter()
            .map(|o| o.guarantee.chars().count())
            .max()
            .unwrap_or(10);
        println!("\n── summary ({:.1}s)", self.start.elapsed().as_secs_f64());
        println!("  {:<width$}  {:<6}  measured", "guarantee", "result");
        for o in &self.outcomes {
            let r = if o.held { "HELD" } else { "FAILED" };
            println!("  {:<width$}  {:<6}  {}", o.guarantee, r, o.measured);
        }
        println!(
            "\n{} of {} guarantees held",
            self.outcomes.len() - failed,
            self.outcomes.len()
        );
        failed
    }
}
