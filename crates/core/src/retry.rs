//! The retry policy every outgoing call shares: which answers are worth another attempt, and how
//! long to wait before it. Pure: the caller sleeps (and adds jitter where many callers could
//! retry in lockstep).

use std::time::Duration;

/// Whether an HTTP answer is worth another attempt: server errors, throttling (429) and request
/// timeouts (408) are; any other answer is final (a 404 or an unexpected 200 does not change by
/// asking again).
pub fn retryable_status(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

/// The wait before retry `retry` (1 = the first retry): `base * 2^(retry - 1)`, capped at `max`.
/// Retry 0 (the first attempt) waits nothing.
pub fn backoff(retry: u32, base: Duration, max: Duration) -> Duration {
    if retry == 0 {
        return Duration::ZERO;
    }
    // 2^20 times any base worth waiting is past every cap; the shift never overflows.
    let exp = (retry - 1).min(20);
    base.saturating_mul(1u32 << exp).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert!(retryable_status(500) && retryable_status(503) && retryable_status(429));
        assert!(retryable_status(408));
        assert!(!retryable_status(404) && !retryable_status(200) && !retryable_status(301));
    }

    #[test]
    fn waits_double_up_to_the_cap() {
        let (b, m) = (Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(backoff(0, b, m), Duration::ZERO);
        assert_eq!(backoff(1, b, m), Duration::from_millis(100));
        assert_eq!(backoff(2, b, m), Duration::from_millis(200));
        assert_eq!(backoff(3, b, m), Duration::from_millis(400));
        assert_eq!(backoff(8, b, m), m);
        assert_eq!(backoff(u32::MAX, b, m), m);
        assert_eq!(
            backoff(u32::MAX, Duration::from_secs(u64::MAX / 2), Duration::MAX),
            Duration::MAX,
            "saturates instead of overflowing"
        );
    }
}
