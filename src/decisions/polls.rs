//! How long to wait before the next look.

use std::time::Duration;

/// How long to wait before the next look at something that is expected to
/// finish soon (a drain, a provision): quickly at first, then backing off to
/// `cap`.
pub fn backoff_poll(elapsed: Duration, cap: Duration) -> Duration {
    let ms = elapsed.as_millis() as u64;
    let d = if ms < 2_000 {
        Duration::from_millis(250)
    } else if ms < 10_000 {
        Duration::from_millis(500)
    } else if ms < 60_000 {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(5)
    };
    d.min(cap)
}

/// How long to wait before the next look at the draining dynos. Every
/// moment of the drain is downtime and dynos are gone within 30 s, so look
/// often during the first seconds (a request every ~150 ms with Heroku's
/// latency), then back off; a 30 s drain costs about 60 requests.
pub fn drain_poll(elapsed: Duration) -> Duration {
    let ms = elapsed.as_millis() as u64;
    Duration::from_millis(if ms < 5_000 {
        50
    } else if ms < 15_000 {
        250
    } else if ms < 60_000 {
        1_000
    } else {
        5_000
    })
}

/// The share of the time a transfer has run that may pass before the next
/// look at it: the end is noticed at most this fraction late (and at most
/// `max`), whatever the final byte count.
pub const COPY_POLL_FRACTION: f64 = 0.1;

/// How long to wait before the next look at a transfer: a fraction of the
/// time it has run so far, never sooner than `min` nor later than `max`.
///
/// It needs no prediction of the end: `processed_bytes` counts dump bytes
/// (compressed), so it ends well below `source_bytes`, and pg_restore can
/// build indexes for a long time with no byte moving. A copy that ends at
/// time T is noticed at most `min(T * COPY_POLL_FRACTION, max)` late
/// (plus a request), and a copy of length T costs about
/// `ln(T / 1 s) / ln(1 + COPY_POLL_FRACTION)` looks until the gap reaches
/// `max`, then one every `max`.
pub fn copy_poll(elapsed: Duration, min: Duration, max: Duration) -> Duration {
    elapsed.mul_f64(COPY_POLL_FRACTION).clamp(min, max.max(min))
}
