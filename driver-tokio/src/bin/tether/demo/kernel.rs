//! The demo steps for the runtime's kernel services: the queued-work runner
//! and the periodic job scheduler. (Replaced when those services land; until
//! then they report that they did not run.)

use super::timeline::Timeline;

pub(crate) async fn queued_work(tl: &mut Timeline) {
    tl.section("7. queued work poked many times while in flight, driven once");
    tl.verdict(
        "pokes coalesce, one drive at a time",
        false,
        "runner not built yet".into(),
    );
}

pub(crate) async fn periodic_job(tl: &mut Timeline) {
    tl.section("8. a periodic job failing, backing off, then recovering");
    tl.verdict(
        "failing job backs off, then recovers",
        false,
        "scheduler not built yet".into(),
    );
}
