//! slipway's domain. Everything here is pure: no network, no files, no clock reads, no AWS SDK.
//! Adapters (SQS, CodeBuild, SQLite, the local Docker engine) live in other crates and reach this
//! code through the small traits defined next to the logic that needs them.

pub mod build_cache;
pub mod build_env;
pub mod build_graph;
pub mod calls;
pub mod deploy;
pub mod ecr;
pub mod job;
pub mod listener;
pub mod metrics;
pub mod names;
pub mod notify;
pub mod plan;
pub mod push;
pub mod readme;
pub mod refs;
pub mod retention;
pub mod retry;
pub mod schedule;
pub mod secrets;
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhook;

pub use job::{Job, Trigger};
pub use listener::{Inbound, JobQueue, ListenerConfig, Reply};
pub use push::PushEvent;
pub use refs::{RefRules, RepoFilter};
pub use webhook::WebhookSecrets;
