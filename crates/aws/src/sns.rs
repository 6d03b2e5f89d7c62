//! Publishing to an SNS topic: a message with a subject (email) and string message attributes
//! (subscription filter policies). The one SNS adapter: the notifier publishes a build's
//! notification in its three forms ([`publish_notification`]), the tasks Lambda its summaries.

use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;
use slipway_core::notify::{MAX_SUBJECT_CHARS, Notification};

/// The `format` message attribute of each form of a notification, for subscription filter
/// policies.
pub const FORMAT_ATTRIBUTE: &str = "format";
pub const FORMAT_TEXT: &str = "text";
pub const FORMAT_JSON: &str = "json";
pub const FORMAT_CHATBOT: &str = "chatbot";

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

/// A subject SNS accepts: "UTF-8 text with no line breaks or control characters, and less than
/// 100 characters long" (SNS refuses the whole message otherwise). Control characters become
/// spaces; a longer subject is cut and ends with `…`.
pub fn subject_for_sns(subject: &str) -> String {
    let clean: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= MAX_SUBJECT_CHARS {
        return clean;
    }
    let mut cut: String = clean.chars().take(MAX_SUBJECT_CHARS - 1).collect();
    cut.push('…');
    cut
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

/// Publishes the three forms of a notification, text first, each with its `format` attribute
/// and the notification's own (`status`, `repository`, `image`). The subject goes on every
/// message: SNS shows it to email subscribers and in the envelope other subscribers receive.
pub async fn publish_notification(
    client: &aws_sdk_sns::Client,
    topic_arn: &str,
    n: &Notification,
) -> Result<(), PublishError> {
    let forms = [
        (FORMAT_TEXT, n.text.clone()),
        (FORMAT_JSON, n.json.to_string()),
        (FORMAT_CHATBOT, n.chatbot.to_string()),
    ];
    for (format, message) in forms {
        let mut attributes: Vec<(&str, &str)> = vec![(FORMAT_ATTRIBUTE, format)];
        attributes.extend(n.attributes.iter().map(|(k, v)| (*k, v.as_str())));
        publish(client, topic_arn, &n.subject, &message, &attributes)
            .await
            .map_err(|e| PublishError {
                topic: e.topic,
                reason: format!("the {format} form: {}", e.reason),
            })?;
    }
    Ok(())
}
