//! A timer armed only when something first waits on it, so a request that never waits
//! (a body already there, an answer written at once) costs no timer at all.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

#[derive(Default)]
pub struct LazyTimer(Option<Pin<Box<Sleep>>>);

impl LazyTimer {
    /// Ready once `at` has passed; otherwise registers `cx` to be woken then. A deadline
    /// that moves later costs nothing until the timer armed for the earlier one fires
    /// (it is then moved on), so moving it per request touches no timer.
    pub fn poll_until(&mut self, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let timer = self
            .0
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        loop {
            std::task::ready!(timer.as_mut().poll(cx));
            if Instant::now() >= at {
                return Poll::Ready(());
            }
            timer.as_mut().reset(at);
        }
    }
}
