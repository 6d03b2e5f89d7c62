//! The listener's decision for one webhook request, shared by the Lambda and `slipway serve`.
//!
//! Order of checks (cheapest refusal first, nothing read from the body before it is verified):
//! method → body size → signature → content type → event and delivery headers → payload →
//! repository, privacy and ref filters → the job. Only after the job is durably queued is 202
//! `queued` answered.

use std::future::Future;

use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use crate::job::Job;
use crate::names::{self, is_zero_sha};
use crate::push::{PayloadError, PingEvent, PushEvent, from_json};
use crate::refs::{RefRules, RepoFilter};
use crate::webhook::{SignatureError, WebhookSecrets};

/// API Gateway's own limit on a request; GitHub caps payloads at 25 MB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

pub const SIGNATURE_256: &str = "x-hub-signature-256";
pub const SIGNATURE_SHA1: &str = "x-hub-signature";
pub const EVENT: &str = "x-github-event";
pub const DELIVERY: &str = "x-github-delivery";

/// What the listener enforces. Built once at start.
#[derive(Debug)]
pub struct ListenerConfig {
    pub secrets: WebhookSecrets,
    pub repositories: RepoFilter,
    pub refs: RefRules,
    pub allow_private: bool,
    pub max_body_bytes: usize,
    /// `file://` clone URLs, for `slipway serve` building local repositories. Off on AWS.
    pub allow_file_clone_urls: bool,
}

impl ListenerConfig {
    pub fn new(secrets: WebhookSecrets) -> Self {
        Self {
            secrets,
            repositories: RepoFilter::any(),
            refs: RefRules::default(),
            allow_private: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            allow_file_clone_urls: false,
        }
    }
}

/// One request as the listener sees it, whatever server it came through.
pub struct Inbound<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The answer: an HTTP status and a JSON body. Every body has either `status` (the request was
/// handled) or `error` (it was refused), both stable codes, and a human `message`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Reply {
            status,
            body: json!({ "error": code, "message": message.into() }),
        }
    }

    /// The `error` or `status` code of the body.
    pub fn code(&self) -> &str {
        self.body
            .get("error")
            .or_else(|| self.body.get("status"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// Why a request was refused, with its status and stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("method {0} is not allowed; webhooks are POSTed")]
    MethodNotAllowed(String),
    #[error("the body is {size} bytes, over the limit of {limit} bytes")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(
        "content type {0:?} is not supported; set the webhook's content type to application/json (application/x-www-form-urlencoded also works)"
    )]
    UnsupportedMediaType(String),
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the {name} header is invalid: {reason}")]
    InvalidHeader { name: &'static str, reason: String },
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MissingHeader(_) | Self::InvalidHeader { .. } | Self::Payload(_) => {
                StatusCode::BAD_REQUEST
            }
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Signature(e) => e.code(),
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::MissingHeader(_) => "missing_header",
            Self::InvalidHeader { .. } => "invalid_header",
            Self::Payload(e) => e.code(),
        }
    }

    pub fn reply(&self) -> Reply {
        let mut r = Reply::error(self.status(), self.code(), self.to_string());
        match self {
            Self::Payload(p) => {
                if let Some(f) = p.field() {
                    r.body["field"] = json!(f);
                }
            }
            Self::MissingHeader(h) | Self::InvalidHeader { name: h, .. } => {
                r.body["header"] = json!(h);
            }
            _ => {}
        }
        r
    }
}

/// Why a valid push queued nothing. Answered with 202: GitHub did nothing wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filtered {
    RepositoryNotAllowed,
    PrivateRepository,
    RefDeleted,
    RefNotBuilt,
}

impl Filtered {
    pub fn code(self) -> &'static str {
        match self {
            Self::RepositoryNotAllowed => "repository_not_allowed",
            Self::PrivateRepository => "private_repository",
            Self::RefDeleted => "ref_deleted",
            Self::RefNotBuilt => "ref_not_built",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::RepositoryNotAllowed => "this repository is not on slipway's allow-list",
            Self::PrivateRepository => {
                "the repository is private and private repositories are not enabled"
            }
            Self::RefDeleted => "the ref was deleted; there is nothing to build",
            Self::RefNotBuilt => "no branch or tag rule builds this ref",
        }
    }
}

/// What to do with a request: answer now, or queue a job and then answer.
#[derive(Debug)]
pub enum Decision {
    Reply(Reply),
    Enqueue(Box<Job>),
}

/// What the request was, for the log line (never secrets, never the signature).
#[derive(Debug, Default, Clone)]
pub struct Facts {
    pub event: Option<String>,
    pub delivery: Option<String>,
    pub repository: Option<String>,
    pub git_ref: Option<String>,
}

/// Decides what to do with a request. Pure: no I/O.
pub fn decide(cfg: &ListenerConfig, req: &Inbound<'_>, facts: &mut Facts) -> Decision {
    match decide_inner(cfg, req, facts) {
        Ok(d) => d,
        Err(refusal) => Decision::Reply(refusal.reply()),
    }
}

fn header_values<'h>(headers: &'h HeaderMap, name: &str) -> Vec<&'h [u8]> {
    headers.get_all(name).iter().map(|v| v.as_bytes()).collect()
}

fn single_header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, Refusal> {
    let values = header_values(headers, name);
    match values.as_slice() {
        [] => Err(Refusal::MissingHeader(name)),
        [one] => std::str::from_utf8(one)
            .map(str::trim)
            .map_err(|_| Refusal::InvalidHeader {
                name,
                reason: "not valid UTF-8".into(),
            }),
        _ => Err(Refusal::InvalidHeader {
            name,
            reason: "sent more than once".into(),
        }),
    }
}

enum Encoding {
    Json,
    Form,
}

fn content_encoding(headers: &HeaderMap) -> Result<Encoding, Refusal> {
    let raw = single_header(headers, "content-type").map_err(|e| match e {
        Refusal::MissingHeader(_) => Refusal::UnsupportedMediaType(String::new()),
        other => other,
    })?;
    let mime = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(Encoding::Json),
        "application/x-www-form-urlencoded" => Ok(Encoding::Form),
        _ => Err(Refusal::UnsupportedMediaType(
            mime.chars().take(100).collect(),
        )),
    }
}

fn decide_inner(
    cfg: &ListenerConfig,
    req: &Inbound<'_>,
    facts: &mut Facts,
) -> Result<Decision, Refusal> {
    if req.method != Method::POST {
        return Err(Refusal::MethodNotAllowed(
            req.method.as_str().chars().take(20).collect(),
        ));
    }
    if req.body.len() > cfg.max_body_bytes {
        return Err(Refusal::PayloadTooLarge {
            size: req.body.len(),
            limit: cfg.max_body_bytes,
        });
    }
    cfg.secrets.verify(
        &header_values(req.headers, SIGNATURE_256),
        req.headers.contains_key(SIGNATURE_SHA1),
        req.body,
    )?;
    // From here on the body is GitHub's (or a holder of an active secret's).
    let encoding = content_encoding(req.headers)?;
    let event = single_header(req.headers, EVENT)?;
    names::check_event_name(event).map_err(|e| Refusal::InvalidHeader {
        name: EVENT,
        reason: e.to_string(),
    })?;
    facts.event = Some(event.to_string());
    let delivery = single_header(req.headers, DELIVERY)?;
    names::check_delivery_id(delivery).map_err(|e| Refusal::InvalidHeader {
        name: DELIVERY,
        reason: e.to_string(),
    })?;
    facts.delivery = Some(delivery.to_string());

    let form_payload;
    let json_body: &[u8] = match encoding {
        Encoding::Json => req.body,
        Encoding::Form => {
            form_payload = form_urlencoded::parse(req.body)
                .find(|(k, _)| k == "payload")
                .map(|(_, v)| v.into_owned())
                .ok_or_else(|| PayloadError::MissingField("payload".into()))?;
            form_payload.as_bytes()
        }
    };

    match event {
        "ping" => {
            let ping: PingEvent = from_json(json_body)?;
            Ok(Decision::Reply(Reply {
                status: StatusCode::OK,
                body: json!({
                    "status": "pong",
                    "hook_id": ping.hook_id,
                    "delivery_id": delivery,
                    "message": "slipway received the ping; push events will be built",
                }),
            }))
        }
        "push" => decide_push(cfg, json_body, delivery, facts),
        other => Ok(Decision::Reply(Reply {
            status: StatusCode::ACCEPTED,
            body: json!({
                "status": "ignored",
                "event": other,
                "delivery_id": delivery,
                "message": format!("slipway builds on push events; {other} events are ignored"),
            }),
        })),
    }
}

fn decide_push(
    cfg: &ListenerConfig,
    body: &[u8],
    delivery: &str,
    facts: &mut Facts,
) -> Result<Decision, Refusal> {
    let push = PushEvent::parse(body)?;
    facts.repository = Some(push.repository.full_name.to_string());
    facts.git_ref = Some(push.git_ref.to_string());
    if !cfg.allow_file_clone_urls && push.repository.clone_url.starts_with("file:") {
        return Err(PayloadError::InvalidField {
            field: "repository.clone_url".into(),
            reason: "must be an https:// URL".into(),
        }
        .into());
    }
    let filtered = if !cfg.repositories.allows(&push.repository.full_name) {
        Some(Filtered::RepositoryNotAllowed)
    } else if push.repository.private && !cfg.allow_private {
        Some(Filtered::PrivateRepository)
    } else if push.deleted || is_zero_sha(&push.after) {
        Some(Filtered::RefDeleted)
    } else if !cfg.refs.builds(&push.git_ref, push.default_branch()) {
        Some(Filtered::RefNotBuilt)
    } else {
        None
    };
    if let Some(f) = filtered {
        return Ok(Decision::Reply(Reply {
            status: StatusCode::ACCEPTED,
            body: json!({
                "status": "filtered",
                "reason": f.code(),
                "delivery_id": delivery,
                "repository": push.repository.full_name,
                "ref": push.git_ref,
                "message": format!("nothing queued: {}", f.message()),
            }),
        }));
    }
    Ok(Decision::Enqueue(Box::new(Job::from_push(&push, delivery))))
}

/// Whether the queue took the job or already had it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// The queue already holds a job for this delivery (GitHub redelivered it).
    Duplicate,
}

/// The queue could not take the job; nothing was accepted. Either way the fault is slipway's
/// (the listener answers 503): the sender may deliver again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The queue did not answer, or failed to store the job: retrying later may succeed.
    #[error("the job queue is unavailable: {0}")]
    Unavailable(String),
    /// The queue refused this message (its size or an attribute): retrying the same will not help.
    #[error("the job queue refused the message: {0}")]
    Refused(String),
}

impl QueueError {
    pub fn code(&self) -> &'static str {
        match self {
            QueueError::Unavailable(_) => "queue_unavailable",
            QueueError::Refused(_) => "queue_refused",
        }
    }
}

/// Where accepted jobs go: SQS on AWS, SQLite under `slipway serve`.
pub trait JobQueue: Send + Sync {
    /// Durably stores the job, deduplicated by `job.id`. Returns only once the job is safe.
    fn enqueue(&self, job: &Job) -> impl Future<Output = Result<Enqueued, QueueError>> + Send;
}

/// Handles one request end to end: decide, queue, answer, and write one log line.
pub async fn handle<Q: JobQueue>(cfg: &ListenerConfig, queue: &Q, req: &Inbound<'_>) -> Reply {
    let mut facts = Facts::default();
    let reply = match decide(cfg, req, &mut facts) {
        Decision::Reply(r) => r,
        Decision::Enqueue(job) => match queue.enqueue(&job).await {
            Ok(outcome) => Reply {
                status: StatusCode::ACCEPTED,
                body: json!({
                    "status": match outcome { Enqueued::Queued => "queued", Enqueued::Duplicate => "duplicate" },
                    "job_id": job.id,
                    "delivery_id": job.delivery_id,
                    "repository": job.repository,
                    "ref": job.git_ref,
                    "commit": job.commit,
                    "message": match outcome {
                        Enqueued::Queued => "the push was queued for planning",
                        Enqueued::Duplicate => "this delivery was queued before; nothing new was queued",
                    },
                }),
            },
            Err(e) => {
                tracing::error!(delivery = ?facts.delivery, code = e.code(), error = %e, "job not queued");
                Reply::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "queue_unavailable",
                    "the job queue is unavailable; nothing was queued. Redeliver the webhook from GitHub once it is back",
                )
            }
        },
    };
    let code = reply.code();
    if reply.status.is_success() {
        tracing::info!(
            status = reply.status.as_u16(),
            outcome = code,
            event = facts.event.as_deref(),
            delivery = facts.delivery.as_deref(),
            repository = facts.repository.as_deref(),
            git_ref = facts.git_ref.as_deref(),
            reason = reply.body.get("reason").and_then(serde_json::Value::as_str),
            "webhook handled"
        );
    } else {
        tracing::warn!(
            status = reply.status.as_u16(),
            outcome = code,
            event = facts.event.as_deref(),
            delivery = facts.delivery.as_deref(),
            repository = facts.repository.as_deref(),
            field = reply.body.get("field").and_then(serde_json::Value::as_str),
            "webhook refused"
        );
    }
    reply
}
