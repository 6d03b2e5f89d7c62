//! The moto server of `tests/services.sh` (feature `aws`): the SDK configuration for it, and the
//! queues and topics the tests make there, each under a unique name. Fails loudly when the server
//! is not there, so a green run always means the real API was exercised.

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};

/// The moto server's URL, from `SLIPWAY_TEST_MOTO_URL`.
pub fn moto_url() -> String {
    std::env::var("SLIPWAY_TEST_MOTO_URL").expect(
        "SLIPWAY_TEST_MOTO_URL is not set: start the services with `source tests/services.sh start`",
    )
}

/// SDK configuration pointing every client at the moto server (which must answer).
pub async fn moto_config() -> aws_config::SdkConfig {
    let url = moto_url();
    let probe = std::net::TcpStream::connect(url.trim_start_matches("http://"));
    assert!(
        probe.is_ok(),
        "moto server at {url} is unreachable: {probe:?}"
    );
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
}

/// A queue on moto.
#[derive(Debug, Clone)]
pub struct Queue {
    pub url: String,
    pub arn: String,
}

/// Creates a queue named `prefix` made unique (`.fifo` kept at the end) with `attributes`.
pub async fn queue(
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
    attributes: &[(QueueAttributeName, &str)],
) -> Queue {
    let name = match prefix.strip_suffix(".fifo") {
        Some(p) => format!("{}.fifo", crate::unique(p)),
        None => crate::unique(prefix),
    };
    queue_named(sqs, &name, attributes).await
}

/// Creates the queue `name` (the caller made it unique) with `attributes`.
pub async fn queue_named(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, &str)],
) -> Queue {
    let mut req = sqs.create_queue().queue_name(name);
    for (k, v) in attributes {
        req = req.attributes(k.clone(), *v);
    }
    let url = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("create queue {name} on moto: {e:?}"))
        .queue_url
        .expect("moto answers the queue's URL");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes on moto")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("moto answers the queue's ARN");
    Queue { url, arn }
}

/// A FIFO queue named `prefix` made unique.
pub async fn fifo_queue(sqs: &aws_sdk_sqs::Client, prefix: &str) -> Queue {
    queue(
        sqs,
        &format!("{prefix}.fifo"),
        &[(QueueAttributeName::FifoQueue, "true")],
    )
    .await
}

/// Every message on the queue, with its system attributes: received (waiting up to
/// `wait_seconds` for each batch), then deleted, until none is left.
pub async fn drain(sqs: &aws_sdk_sqs::Client, url: &str, wait_seconds: i32) -> Vec<Message> {
    let mut all = Vec::new();
    loop {
        let msgs = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .wait_time_seconds(wait_seconds)
            .send()
            .await
            .expect("receive from moto")
            .messages
            .unwrap_or_default();
        if msgs.is_empty() {
            return all;
        }
        for m in &msgs {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().expect("a receipt handle"))
                .send()
                .await
                .expect("delete on moto");
        }
        all.extend(msgs);
    }
}

/// The bodies of [`drain`]'s messages.
pub async fn drain_bodies(sqs: &aws_sdk_sqs::Client, url: &str, wait_seconds: i32) -> Vec<String> {
    drain(sqs, url, wait_seconds)
        .await
        .into_iter()
        .map(|m| m.body.unwrap_or_default())
        .collect()
}

/// Creates a topic named `prefix` made unique; its ARN.
pub async fn topic(sns: &aws_sdk_sns::Client, prefix: &str) -> String {
    sns.create_topic()
        .name(crate::unique(prefix))
        .send()
        .await
        .expect("create topic on moto")
        .topic_arn
        .expect("moto answers the topic's ARN")
}

/// Subscribes `queue` to `topic` with the subscription `attributes` (`FilterPolicy`,
/// `RawMessageDelivery`, ...).
pub async fn subscribe(
    sns: &aws_sdk_sns::Client,
    topic: &str,
    queue: &Queue,
    attributes: &[(&str, &str)],
) {
    let mut req = sns
        .subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(&queue.arn);
    for (k, v) in attributes {
        req = req.attributes(*k, *v);
    }
    req.send().await.expect("subscribe on moto");
}

/// A topic with a queue subscribed to it (SNS envelopes, every message): (topic ARN, queue).
pub async fn topic_with_queue(aws: &aws_config::SdkConfig) -> (String, Queue) {
    let sns = aws_sdk_sns::Client::new(aws);
    let topic = topic(&sns, "slipway-").await;
    let q = queue(&aws_sdk_sqs::Client::new(aws), "slipway-notes-", &[]).await;
    subscribe(&sns, &topic, &q, &[]).await;
    (topic, q)
}
