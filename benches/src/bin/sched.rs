//! Only the tick-job and queued-work rows of the end-to-end bench:
//! tether's scheduler service against one tokio task per job, 100k jobs at
//! a 1 s interval, each side in its own child process
//! (`tether_benches::sched`), then the runner's poke→drive latency against
//! the 400 ms-poll baseline (`tether_benches::queued_e2e`).
//!
//! ```text
//! cargo run --release -p tether-benches --bin sched            # 10 s windows
//! cargo run --release -p tether-benches --bin sched -- --quick # 3 s windows
//! ```

use tether_benches::sched;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(pos) = args.iter().position(|a| a == "--sched") {
        let which = args.get(pos + 1).map(String::as_str).unwrap_or("");
        println!("{}", sched::child(which, quick));
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    println!("| figure | tether | baseline | ratio |");
    println!("|---|---|---|---|");
    let mut rows = sched::rows(&exe, quick);
    rows.extend(tether_benches::queued_e2e::rows(quick));
    for r in rows {
        println!(
            "| {} | {} | {} | {} |",
            r.what, r.tether, r.baseline, r.ratio
        );
    }
}
