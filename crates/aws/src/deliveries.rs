//! Durable delivery deduplication: a DynamoDB table of the GitHub deliveries the listener queued,
//! written (a conditional put on the delivery id) before the job goes on the queue.
//!
//! Why: SQS FIFO deduplicates for five minutes only, and GitHub lets a user redeliver any delivery
//! of the last three days ("Redeliver" in Recent Deliveries, or the REST API); GitHub keeps the
//! delivery's `X-GitHub-Delivery` id on a redelivery. The table remembers each delivery for
//! [`DELIVERY_TTL`] (the three days and a margin); DynamoDB's TTL deletes the items afterwards
//! (lazily — up to days later — so the put's condition also treats an expired item as absent).
//!
//! Failure rules (nothing accepted is lost):
//! - the table is unreachable: the job is queued anyway (fail open). SQS still deduplicates within
//!   its window, and a duplicate build is harmless by construction; a lost push is not.
//! - the queue refuses the job after the put: the item is deleted again, so GitHub's redelivery
//!   of the 503 is queued; if that delete fails too, the error line names the delivery.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::AttributeValue;
use slipway_core::Job;
use slipway_core::listener::{Enqueued, JobQueue, QueueError};

/// How long a delivery is remembered: GitHub redelivers deliveries of the past three days.
pub const DELIVERY_TTL: time::Duration = time::Duration::days(4);

/// The table's key attribute (a string: the `X-GitHub-Delivery` id).
pub const KEY: &str = "delivery_id";
/// The TTL attribute (epoch seconds), enabled on the table in the template.
pub const EXPIRES_AT: &str = "expires_at";

/// Whether a delivery was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    First,
    /// Recorded before and not expired.
    Seen,
}

#[derive(Debug, thiserror::Error)]
#[error("the deliveries table {table} is unavailable: {reason}")]
pub struct DeliveriesError {
    pub table: String,
    pub reason: String,
}

impl DeliveriesError {
    pub fn code(&self) -> &'static str {
        "deliveries_table_unavailable"
    }
}

/// The deliveries table.
#[derive(Debug)]
pub struct Deliveries {
    config: aws_config::SdkConfig,
    client: std::sync::OnceLock<aws_sdk_dynamodb::Client>,
    table: String,
}

impl Deliveries {
    /// The table, its client built on first use: the listener's start-up answers no delivery, so
    /// it does not pay for the client (issue 22 keeps the cold start to what the first answer needs).
    pub fn lazy(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            config: config.clone(),
            client: std::sync::OnceLock::new(),
            table: table.into(),
        }
    }

    fn client(&self) -> &aws_sdk_dynamodb::Client {
        self.client
            .get_or_init(|| aws_sdk_dynamodb::Client::new(&self.config))
    }

    fn fail(&self, e: impl std::fmt::Display) -> DeliveriesError {
        DeliveriesError {
            table: self.table.clone(),
            reason: e.to_string(),
        }
    }

    /// Records `delivery` (queued as `job_id`) at `now`, unless it is recorded and not expired.
    pub async fn record(
        &self,
        delivery: &str,
        job_id: &str,
        now: time::OffsetDateTime,
    ) -> Result<Recorded, DeliveriesError> {
        let expires = (now + DELIVERY_TTL).unix_timestamp();
        let result = self
            .client()
            .put_item()
            .table_name(&self.table)
            .item(KEY, AttributeValue::S(delivery.to_string()))
            .item("job_id", AttributeValue::S(job_id.to_string()))
            .item(
                "recorded_at",
                AttributeValue::N(now.unix_timestamp().to_string()),
            )
            .item(EXPIRES_AT, AttributeValue::N(expires.to_string()))
            .condition_expression("attribute_not_exists(#k) OR #e < :now")
            .expression_attribute_names("#k", KEY)
            .expression_attribute_names("#e", EXPIRES_AT)
            .expression_attribute_values(
                ":now",
                AttributeValue::N(now.unix_timestamp().to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Recorded::First),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(Recorded::Seen),
            Err(e) => Err(self.fail(DisplayErrorContext(e))),
        }
    }

    /// Forgets `delivery` (its job could not be queued).
    pub async fn forget(&self, delivery: &str) -> Result<(), DeliveriesError> {
        self.client()
            .delete_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(delivery.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.fail(DisplayErrorContext(e)))
    }
}

/// A job queue that records each job's delivery first and queues only new deliveries (without a
/// table, it is `inner` alone).
pub struct DedupQueue<Q> {
    pub deliveries: Option<Deliveries>,
    pub inner: Q,
    pub now: fn() -> time::OffsetDateTime,
}

impl<Q: JobQueue> JobQueue for DedupQueue<Q> {
    async fn enqueue(&self, job: &Job) -> Result<Enqueued, QueueError> {
        let Some(deliveries) = &self.deliveries else {
            return self.inner.enqueue(job).await;
        };
        let recorded = deliveries
            .record(&job.delivery_id, &job.id, (self.now)())
            .await;
        match &recorded {
            Ok(Recorded::Seen) => {
                tracing::info!(delivery = %job.delivery_id, job_id = %job.id, "delivery seen before; nothing queued");
                return Ok(Enqueued::Duplicate);
            }
            Ok(Recorded::First) => {}
            Err(e) => {
                tracing::warn!(delivery = %job.delivery_id, code = e.code(), error = %e, "delivery not recorded; queued without durable deduplication");
            }
        }
        match self.inner.enqueue(job).await {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                if recorded.is_ok()
                    && let Err(f) = deliveries.forget(&job.delivery_id).await
                {
                    tracing::error!(delivery = %job.delivery_id, code = f.code(), error = %f,
                        "the job was not queued and its delivery stays recorded: a redelivery would be answered duplicate; delete the item to let it through");
                }
                Err(e)
            }
        }
    }
}
