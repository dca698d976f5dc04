//! Driving a store future without an async runtime.
//!
//! The sled and memory stores complete their futures immediately, so
//! synchronous callers (the bench, the replay tool's cache, tests) can run
//! them here instead of pulling in tokio. A future that would really wait
//! (a network backend) is reported, not spun on.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Polls `future` once; `Some(output)` if it completed, `None` if it would
/// have waited (use a real runtime for such stores).
pub fn now_or_never<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;

    #[test]
    fn ready_futures_complete_and_pending_ones_do_not() {
        assert_eq!(now_or_never(std::future::ready(7)), Some(7));
        assert_eq!(now_or_never(std::future::pending::<u8>()), None);
    }
}
