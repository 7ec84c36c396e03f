//! [`CheckSlotGate`]: the driver of the core's `CheckSlots` machine, which
//! bounds the `CheckAction` calls in flight on the checks' connection.
//!
//! Guarantees: no decision here: whether a check is sent now, queued,
//! refused, admitted from the queue or expired in it is the machine's
//! (`SLOTS_*` invariants); a check holds its slot exactly while its
//! [`SlotPermit`] lives, and a check whose future is dropped while queued
//! leaves nothing behind (its queue entry and its waiter go with it); every
//! change of the counts is published in [`ClientStatus::checks`] under the
//! machine's lock, so the status never shows an older count after a newer
//! one, and in the `tether_checks_*` gauges.
//!
//! [`ClientStatus::checks`]: super::status::ClientStatus::checks

use std::sync::Arc;
use std::time::Duration;

use tether_core::check_slots::{
    Admission, CheckSlots, CheckSlotsAction, CheckSlotsConfig, SlotId, SlotRefusal, SlotStats,
};
use tokio::sync::oneshot;

use super::error::CheckCapacityError;
use super::status::StatusBoard;
use crate::metrics_names as m;
use crate::runtime::{CancelGuard, Clock, Driven, TimerTask, Waiters};

/// How a queued check's wait ended.
#[derive(Clone, Copy, Debug)]
enum Grant {
    Admitted,
    Expired,
}

/// The check-slot machine, its waiters and its timer. Cheap to clone.
#[derive(Clone)]
pub(crate) struct CheckSlotGate {
    cell: Arc<Driven<CheckSlots>>,
    waiters: Waiters<SlotId, Grant>,
    status: StatusBoard,
    queue_timeout: Duration,
    _timer: Arc<TimerTask>,
}

/// A slot held by one check; dropping it frees the slot.
pub(crate) struct SlotPermit {
    gate: CheckSlotGate,
    id: SlotId,
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        let id = self.id;
        let status = self.gate.status.clone();
        self.gate.cell.with(|m, now| {
            m.on_release(now, id);
            publish(&status, m.stats());
        });
    }
}

impl CheckSlotGate {
    /// Start the machine and its timer on the current runtime.
    pub(crate) fn new(config: CheckSlotsConfig, clock: Clock, status: StatusBoard) -> Self {
        let waiters: Waiters<SlotId, Grant> = Waiters::default();
        let exec = waiters.clone();
        let queue_timeout = config.clamped().queue_timeout;
        let machine = CheckSlots::new(config);
        let cell = Driven::new(machine, clock, move |a: CheckSlotsAction| match a {
            CheckSlotsAction::Admit(id) => exec.complete(&id, Grant::Admitted),
            CheckSlotsAction::Expire(id) => exec.complete(&id, Grant::Expired),
        });
        let timer = Arc::new(cell.spawn_timer());
        let gate = CheckSlotGate {
            cell,
            waiters,
            status,
            queue_timeout,
            _timer: timer,
        };
        let stats = gate.cell.read(|m| m.stats());
        publish(&gate.status, stats);
        gate
    }

    /// A slot for one check: at once, after a wait in the queue, or a typed
    /// refusal. Cancellation-safe: dropping the future while queued
    /// withdraws the check.
    pub(crate) async fn acquire(&self) -> Result<SlotPermit, CheckCapacityError> {
        let waiters = self.waiters.clone();
        let status = self.status.clone();
        let step = self.cell.with(|m, now| {
            let admission = m.on_request(now);
            let stats = m.stats();
            publish(&status, stats);
            match admission {
                Admission::Admitted(id) => Ok(Ok(id)),
                Admission::Queued(id) => {
                    let (tx, rx) = oneshot::channel();
                    waiters.register(id, tx);
                    Ok(Err((id, rx)))
                }
                Admission::Refused(SlotRefusal::QueueFull { queued }) => {
                    Err(CheckCapacityError::QueueFull {
                        in_flight: stats.in_flight,
                        queued,
                    })
                }
                Admission::Refused(_) => Err(CheckCapacityError::QueueFull {
                    in_flight: stats.in_flight,
                    queued: stats.queued,
                }),
            }
        });
        let id = match step {
            Ok(Ok(id)) => return Ok(self.permit(id)),
            Ok(Err((id, rx))) => {
                let guard = CancelGuard::new(|| {
                    self.cell.with(|m, now| {
                        m.on_cancel(now, id);
                        publish(&self.status, m.stats());
                    });
                    self.waiters.remove(&id);
                });
                let grant = rx.await;
                guard.disarm();
                match grant {
                    Ok(Grant::Admitted) => id,
                    Ok(Grant::Expired) | Err(_) => {
                        metrics::counter!(m::CHECK_SLOT_REFUSALS, "reason" => "queue_timeout")
                            .increment(1);
                        // The timer expired us: show the shorter queue.
                        let in_flight = self.cell.beside(|m| {
                            let stats = m.stats();
                            publish(&self.status, stats);
                            stats.in_flight
                        });
                        return Err(CheckCapacityError::QueueTimeout {
                            waited: self.queue_timeout,
                            in_flight,
                        });
                    }
                }
            }
            Err(e) => {
                metrics::counter!(m::CHECK_SLOT_REFUSALS, "reason" => "queue_full").increment(1);
                return Err(e);
            }
        };
        // The release that admitted us published the counts already.
        Ok(self.permit(id))
    }

    fn permit(&self, id: SlotId) -> SlotPermit {
        SlotPermit {
            gate: self.clone(),
            id,
        }
    }
}

/// Show `stats` in the status and the gauges.
fn publish(status: &StatusBoard, stats: SlotStats) {
    status.update_if(|s| {
        let c = &mut s.checks;
        let changed = c.in_flight != stats.in_flight || c.queued != stats.queued;
        c.in_flight = stats.in_flight;
        c.queued = stats.queued;
        c.max_in_flight = stats.max_in_flight;
        c.max_queued = stats.max_queued;
        changed
    });
    metrics::gauge!(m::CHECKS_IN_FLIGHT).set(stats.in_flight as f64);
    metrics::gauge!(m::CHECKS_QUEUED).set(stats.queued as f64);
}
