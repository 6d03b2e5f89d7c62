//! What slipway's test suites share, so that no suite writes it again: git repositories made by
//! the tests ([`git`]), the htpasswd registry and Docker engine of `tests/services.sh`
//! ([`registry`]), a running `slipway serve` ([`serve`]), local stand-ins for the services slipway
//! calls ([`stand_in`]), the moto server's clients, queues and topics, a local Lambda runtime API
//! and captured log lines ([`moto`], [`lambda`], [`logs`]; feature `aws`), unique names and free
//! ports.
//!
//! A dev-dependency only (`publish = false`): no product crate may depend on it. A test that
//! needs a service fails loudly here when the service is missing; nothing skips itself.

pub mod git;
#[cfg(feature = "aws")]
pub mod lambda;
#[cfg(feature = "aws")]
pub mod logs;
#[cfg(feature = "aws")]
pub mod moto;
pub mod registry;
pub mod serve;
pub mod stand_in;

/// A name no other test (of this run or of another engineer's) uses: `prefix`, the process id
/// and the time in nanoseconds. Lower case letters, digits and `x` after the prefix, so it fits a
/// Docker repository path, an SQS queue name and a compose project.
pub fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos();
    format!("{prefix}{}x{n}", std::process::id())
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}
