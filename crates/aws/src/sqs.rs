//! The jobs queue on SQS: the one place that decides how a job becomes a message (its body,
//! its FIFO message group and deduplication id), for the listener, the notifier's children and
//! the spawner's narrowed retries alike.

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::MessageAttributeValue;
use slipway_core::Job;
use slipway_core::build_env;
use slipway_core::listener::{Enqueued, JobQueue, QueueError};

/// The message attribute that counts how many times a job was queued again narrowed to the
/// images that failed to start (absent: the first attempt).
pub const ATTEMPT_ATTRIBUTE: &str = "slipway_attempt";

/// Sends jobs to the jobs queue. On a FIFO queue the message group is the repository, so jobs of
/// one repository keep their order, and the job id is the deduplication id, so a webhook GitHub
/// redelivers within SQS's five-minute window yields one message.
#[derive(Debug, Clone)]
pub struct SqsJobQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsJobQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    fn is_fifo(&self) -> bool {
        self.queue_url.ends_with(".fifo")
    }

    /// Queues `job` again as attempt `attempt` (2 for the first retry), carrying the attempt
    /// in [`ATTEMPT_ATTRIBUTE`]. The job keeps its id; its deduplication id is new, since the
    /// original message's id is still within SQS's window.
    pub async fn requeue(&self, job: &Job, attempt: u32) -> Result<(), QueueError> {
        self.send(job, Some(attempt)).await
    }

    async fn send(&self, job: &Job, attempt: Option<u32>) -> Result<(), QueueError> {
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(slipway_core::job::to_json(job));
        if let Some(attempt) = attempt {
            let value = MessageAttributeValue::builder()
                .data_type("Number")
                .string_value(attempt.to_string())
                .build()
                .map_err(|e| QueueError::Refused(e.to_string()))?;
            send = send.message_attributes(ATTEMPT_ATTRIBUTE, value);
        }
        if self.is_fifo() {
            let dedup_id = match attempt {
                None => job.id.clone(),
                Some(attempt) => requeue_dedup_id(job, attempt),
            };
            send = send
                .message_group_id(job.group_id())
                .message_deduplication_id(dedup_id);
        }
        send.send().await.map_err(|e| {
            // A client error that is not throttling (a message too large, an attribute SQS
            // refuses, a denied permission) fails the same way every time; anything else (no
            // answer, a timeout, a 5xx, throttling) may pass later.
            let status = e.raw_response().map(|r| r.status().as_u16());
            let throttled = e.code().is_some_and(|c| c.contains("Throttl"));
            let reason = DisplayErrorContext(&e).to_string();
            match status {
                Some(400..=499) if status != Some(429) && !throttled => QueueError::Refused(reason),
                _ => QueueError::Unavailable(reason),
            }
        })?;
        Ok(())
    }
}

/// Deduplication id of a job queued again: the job, the attempt and the images it is narrowed
/// to (at most 128 characters, as SQS wants).
fn requeue_dedup_id(job: &Job, attempt: u32) -> String {
    let images = job.images.join(",");
    let token = build_env::idempotency_token(&job.id, &images, &attempt.to_string());
    format!("retry-{attempt}-{}", &token[..48])
}

impl JobQueue for SqsJobQueue {
    async fn enqueue(&self, job: &Job) -> Result<Enqueued, QueueError> {
        self.send(job, None).await?;
        // SQS does not say whether it dropped a duplicate; it is answered as queued.
        Ok(Enqueued::Queued)
    }
}
