//! AWS adapters. Each wraps one SDK client behind a trait that `slipway-core` (or a Lambda's
//! handler) defines, so the logic is tested without AWS and the adapters against moto.

pub mod cleanup;
pub mod clock;
pub mod codebuild;
pub mod deliveries;
pub mod ecr;
pub mod logging;
pub mod metrics;
pub mod sns;
pub mod sqs;
pub mod ssm;
