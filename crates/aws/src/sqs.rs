//! The jobs queue on SQS.

use aws_sdk_sqs::error::DisplayErrorContext;
use slipway_core::Job;
use slipway_core::listener::{Enqueued, JobQueue, QueueError};

/// Sends jobs to the jobs queue. On a FIFO queue the job id is the deduplication id, so a webhook
/// GitHub redelivers within SQS's five-minute window yields one message, and jobs of one
/// repository keep their order.
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
}

impl JobQueue for SqsJobQueue {
    async fn enqueue(&self, job: &Job) -> Result<Enqueued, QueueError> {
        let body = slipway_core::job::to_json(job);
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body);
        if self.is_fifo() {
            send = send
                .message_group_id(job.group_id())
                .message_deduplication_id(&job.id);
        }
        send.send()
            .await
            .map_err(|e| QueueError(DisplayErrorContext(e).to_string()))?;
        // SQS does not say whether it dropped a duplicate; it is answered as queued.
        Ok(Enqueued::Queued)
    }
}
