//! Streamed response bodies (exports, downloads), bounded in time: a body
//! still running at `STREAM_MAX_SECS` ends with an error, so the client sees
//! a cut response, never one that looks complete. A client that stops
//! reading is cut by its connection's watchdog instead (a stalled body is
//! not polled, so no timer of its own could fire).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::BoxError;
use axum::body::{Body, Bytes};
use futures_util::Stream;
use tokio::time::Sleep;

/// A response body from `stream` that ends, with an error, after `max`.
pub(crate) fn bounded<S, E>(stream: S, max: Duration) -> Body
where
    S: Stream<Item = Result<Bytes, E>> + Unpin + Send + 'static,
    E: Into<BoxError>,
{
    Body::from_stream(Bounded {
        stream,
        deadline: Box::pin(tokio::time::sleep(max)),
        max,
        is_done: false,
    })
}

struct Bounded<S> {
    stream: S,
    deadline: Pin<Box<Sleep>>,
    max: Duration,
    is_done: bool,
}

impl<S, E> Stream for Bounded<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<BoxError>,
{
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.is_done {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.is_done = true;
            tracing::warn!(
                max_secs = self.max.as_secs(),
                "response stream cut at STREAM_MAX_SECS"
            );
            return Poll::Ready(Some(Err("response stream time limit reached".into())));
        }
        let next = ready!(Pin::new(&mut self.stream).poll_next(cx));
        self.is_done = next.is_none();
        Poll::Ready(next.map(|item| item.map_err(Into::into)))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stream_past_its_time_ends_with_an_error() {
        let endless = futures_util::stream::repeat_with(|| Ok::<_, std::io::Error>(Bytes::new()))
            .then(|item| async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                item
            })
            .boxed();
        let mut body = bounded(endless, Duration::from_secs(600));
        let mut frames = 0;
        let end = loop {
            match body.frame().await {
                Some(Ok(_)) => frames += 1,
                other => break other,
            }
        };
        assert!(matches!(end, Some(Err(_))), "a cut body ends in an error");
        assert!((590..=600).contains(&frames), "{frames}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_within_its_time_is_untouched() {
        let chunks =
            futures_util::stream::iter(["a", "b"].map(|s| Ok::<_, std::io::Error>(Bytes::from(s))));
        let body = bounded(chunks, Duration::from_secs(1));
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(all, "ab");
    }
}
