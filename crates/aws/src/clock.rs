//! The Lambdas' clock: the system's. In test builds (debug assertions on: the dev profile the
//! AWS bench runs the binaries in) `SLIPWAY_TEST_CLOCK_OFFSET_SECONDS` moves it, so the bench can
//! deliver a push again "an hour later" or run the weekly cleanup "a month later" without
//! waiting. Release builds — every zip `make build` makes, `lambda-ci` included — never read
//! the variable: the function that does is compiled out, and `crates/stack` reads no code after
//! the `#[cfg(debug_assertions)]` marker below, so the variable is not a setting of the template.

/// Now, as the Lambdas see it.
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + offset()
}

#[cfg(not(debug_assertions))]
fn offset() -> time::Duration {
    time::Duration::ZERO
}

#[cfg(debug_assertions)]
fn offset() -> time::Duration {
    std::env::var(TEST_CLOCK_OFFSET)
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(time::Duration::seconds)
        .unwrap_or(time::Duration::ZERO)
}

/// Seconds added to the clock in test builds.
#[cfg(debug_assertions)]
pub const TEST_CLOCK_OFFSET: &str = "SLIPWAY_TEST_CLOCK_OFFSET_SECONDS";
