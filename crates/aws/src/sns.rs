//! Publishing to an SNS topic: one message with a subject (email) and string message attributes
//! (subscription filter policies). Shared by the cleanup Lambda and the notifier.

use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;

/// SNS's limit for a subject.
pub const MAX_SUBJECT: usize = 100;

#[derive(Debug, thiserror::Error)]
#[error("publishing to SNS topic {topic} failed: {reason}")]
pub struct PublishError {
    pub topic: String,
    pub reason: String,
}

impl PublishError {
    pub fn code(&self) -> &'static str {
        "sns_publish_failed"
    }
}

/// A subject SNS accepts: printable ASCII on one line, at most 100 characters (SNS refuses the
/// whole message otherwise).
pub fn subject_for_sns(subject: &str) -> String {
    let mut s: String = subject
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.len() > MAX_SUBJECT {
        s.truncate(MAX_SUBJECT - 3);
        s.push_str("...");
    }
    s
}

/// Publishes `message` to `topic_arn` and answers SNS's message id. Attribute values are sent as
/// `String` attributes; empty values are left out (SNS refuses them).
pub async fn publish(
    client: &aws_sdk_sns::Client,
    topic_arn: &str,
    subject: &str,
    message: &str,
    attributes: &[(&str, &str)],
) -> Result<String, PublishError> {
    let fail = |reason: String| PublishError {
        topic: topic_arn.to_string(),
        reason,
    };
    let mut req = client
        .publish()
        .topic_arn(topic_arn)
        .subject(subject_for_sns(subject))
        .message(message);
    for (name, value) in attributes.iter().filter(|(_, v)| !v.is_empty()) {
        let attr = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(*value)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        req = req.message_attributes(*name, attr);
    }
    let out = req
        .send()
        .await
        .map_err(|e| fail(DisplayErrorContext(e).to_string()))?;
    Ok(out.message_id().unwrap_or_default().to_string())
}
