//! [`AckOutbox`] and [`AckBody`]: the client's side of the invalidation
//! stream (its subscribe message, then the cumulative acks the subscription
//! machine emits), handed from the stream task to tonic's request body a
//! batch at a time.
//!
//! Guarantees:
//! - the subscribe message leaves first, then every ack in the order it was
//!   pushed, each exactly once;
//! - no ack is dropped: [`AckOutbox::push`] takes what fits and says how
//!   many it took, [`AckOutbox::room`] waits until more fits; at most
//!   `capacity` acks wait in the outbox, plus the batch the body has already
//!   taken;
//! - once the body is gone (tonic dropped it: the stream ended), pushes fail
//!   with [`BodyGone`], and a waiter for room is released;
//! - dropping the outbox ends the body after the acks already pushed.
//!
//! One lock round-trip per batch on each side, and one wake-up per batch,
//! where a channel would cost both per ack.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::Stream;
use tether_proto::gateway::SubscribeRequest;

use super::ack_codec::Outgoing;

/// The request body ended: nothing pushed now will reach the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyGone;

#[derive(Default)]
struct State {
    subscribe: Option<SubscribeRequest>,
    queued: VecDeque<u64>,
    /// The body, waiting for acks.
    body_waker: Option<Waker>,
    /// The stream task, waiting for room.
    room_waker: Option<Waker>,
    outbox_gone: bool,
    body_gone: bool,
}

struct Inner {
    capacity: usize,
    state: Mutex<State>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Change the state under the lock; wake the waker `f` hands back
    /// after releasing it.
    fn update(&self, f: impl FnOnce(&mut State) -> Option<Waker>) {
        let waker = f(&mut self.lock());
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The stream task's half: pushes acks.
pub(crate) struct AckOutbox {
    inner: Arc<Inner>,
}

/// tonic's half: the request body's stream of outgoing messages.
pub(crate) struct AckBody {
    inner: Arc<Inner>,
    /// The batch taken from the outbox, sent one message at a time.
    taken: VecDeque<u64>,
}

/// An outbox holding at most `capacity` acks (at least 1), whose body
/// sends `subscribe` first.
pub(crate) fn ack_outbox(capacity: usize, subscribe: SubscribeRequest) -> (AckOutbox, AckBody) {
    let inner = Arc::new(Inner {
        capacity: capacity.max(1),
        state: Mutex::new(State {
            subscribe: Some(subscribe),
            ..State::default()
        }),
    });
    (
        AckOutbox {
            inner: inner.clone(),
        },
        AckBody {
            inner,
            taken: VecDeque::new(),
        },
    )
}

impl AckOutbox {
    /// Queue as many of `seqs` as fit, in order; how many were taken.
    pub(crate) fn push(&self, seqs: &[u64]) -> Result<usize, BodyGone> {
        let capacity = self.inner.capacity;
        let mut taken = Err(BodyGone);
        self.inner.update(|state| {
            if state.body_gone {
                return None;
            }
            let n = capacity.saturating_sub(state.queued.len()).min(seqs.len());
            state.queued.extend(&seqs[..n]);
            taken = Ok(n);
            if n > 0 {
                state.body_waker.take()
            } else {
                None
            }
        });
        taken
    }

    /// Resolves once at least one more ack fits, or the body is gone (the
    /// next [`push`](Self::push) says which).
    pub(crate) fn room(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            let mut state = self.inner.lock();
            if state.body_gone || state.queued.len() < self.inner.capacity {
                Poll::Ready(())
            } else {
                state.room_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    /// Acks waiting in the outbox (not yet taken by the body).
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.inner.lock().queued.len()
    }
}

impl Drop for AckOutbox {
    fn drop(&mut self) {
        self.inner.update(|state| {
            state.outbox_gone = true;
            state.body_waker.take()
        });
    }
}

impl Stream for AckBody {
    type Item = Outgoing;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        if let Some(seq) = self.taken.pop_front() {
            return Poll::Ready(Some(Outgoing::Ack(seq)));
        }
        let this = &mut *self;
        let mut state = this.inner.lock();
        if let Some(first) = state.subscribe.take() {
            return Poll::Ready(Some(Outgoing::Subscribe(first)));
        }
        if state.queued.is_empty() {
            if state.outbox_gone {
                return Poll::Ready(None);
            }
            state.body_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        // Take the whole batch (the emptied buffers swap, so neither
        // allocates again) and make room for the stream task.
        std::mem::swap(&mut this.taken, &mut state.queued);
        let room = state.room_waker.take();
        drop(state);
        if let Some(w) = room {
            w.wake();
        }
        Poll::Ready(this.taken.pop_front().map(Outgoing::Ack))
    }
}

impl Drop for AckBody {
    fn drop(&mut self) {
        self.inner.update(|state| {
            state.body_gone = true;
            state.room_waker.take()
        });
    }
}

#[cfg(test)]
mod tests {
    use futures::{FutureExt, StreamExt};

    use super::*;

    fn subscribe() -> SubscribeRequest {
        SubscribeRequest {
            assembly_id: "a".into(),
            kind: None,
        }
    }

    fn next(body: &mut AckBody) -> Option<Option<Outgoing>> {
        body.next().now_or_never()
    }

    fn ack(o: Option<Option<Outgoing>>) -> u64 {
        match o {
            Some(Some(Outgoing::Ack(seq))) => seq,
            _ => panic!("expected an ack"),
        }
    }

    #[test]
    fn subscribe_first_then_acks_in_order_once_each() {
        let (outbox, mut body) = ack_outbox(4, subscribe());
        assert_eq!(outbox.push(&[1, 2]), Ok(2));
        assert!(matches!(
            next(&mut body),
            Some(Some(Outgoing::Subscribe(_)))
        ));
        assert_eq!(outbox.push(&[3]), Ok(1));
        assert_eq!(
            [
                ack(next(&mut body)),
                ack(next(&mut body)),
                ack(next(&mut body))
            ],
            [1, 2, 3]
        );
        assert!(next(&mut body).is_none(), "nothing more is ready");
        drop(outbox);
        assert!(
            matches!(next(&mut body), Some(None)),
            "ends once the outbox is gone"
        );
    }

    #[test]
    fn a_full_outbox_takes_what_fits_and_room_waits_for_the_body() {
        let (outbox, mut body) = ack_outbox(3, subscribe());
        assert_eq!(outbox.push(&[1, 2, 3, 4, 5]), Ok(3));
        assert_eq!(outbox.push(&[4, 5]), Ok(0));
        assert!(outbox.room().now_or_never().is_none(), "full: no room yet");
        let _ = next(&mut body); // the subscribe message
        assert_eq!(ack(next(&mut body)), 1); // takes the whole batch
        assert_eq!(outbox.queued(), 0);
        assert!(outbox.room().now_or_never().is_some());
        assert_eq!(outbox.push(&[4, 5]), Ok(2));
        let rest: Vec<u64> = (0..4).map(|_| ack(next(&mut body))).collect();
        assert_eq!(rest, [2, 3, 4, 5]);
    }

    #[test]
    fn a_gone_body_refuses_pushes_and_releases_a_waiter() {
        let (outbox, body) = ack_outbox(1, subscribe());
        assert_eq!(outbox.push(&[1]), Ok(1));
        let mut room = Box::pin(outbox.room());
        assert!((&mut room).now_or_never().is_none());
        drop(body);
        assert!(room.now_or_never().is_some());
        assert_eq!(outbox.push(&[2]), Err(BodyGone));
    }

    #[tokio::test]
    async fn a_waiting_body_is_woken_by_a_push() {
        let (outbox, mut body) = ack_outbox(8, subscribe());
        let _ = body.next().await;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(Outgoing::Ack(seq)) = body.next().await {
                got.push(seq);
            }
            got
        });
        tokio::task::yield_now().await;
        for chunk in [[1u64, 2], [3, 4]] {
            let mut left = &chunk[..];
            while !left.is_empty() {
                let n = outbox.push(left).expect("body alive");
                left = &left[n..];
                outbox.room().await;
            }
        }
        drop(outbox);
        assert_eq!(reader.await.expect("reader"), [1, 2, 3, 4]);
    }
}
