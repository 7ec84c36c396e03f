//! Polling a future by hand, so a bench can register a waiter, resolve it
//! and see it complete without an executor round trip on either side.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Poll `fut` once with a no-op waker.
pub fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    fut.poll(&mut cx)
}
