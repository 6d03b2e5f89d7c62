//! The Lambda side of AWS (feature `aws`), for the tests and benches that run a Lambda binary as
//! AWS would: a local runtime API ([`RuntimeApi`], the `/2018-06-01/runtime/...` endpoints a
//! Lambda sandbox serves) that hands one instance of a function its invocations one at a time and
//! keeps what the instance answered and when; the headers of an invocation; and the record the SQS
//! event source mapping hands a function for a message ([`sqs_record`]).
//!
//! The suites keep their own parts: what they spawn under the runtime API with which variables,
//! and what they measure.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot, watch};

/// The headers of `GET /2018-06-01/runtime/invocation/next` for invocation `request_id` of the
/// function `function`: its id, a deadline `timeout` away, the function's ARN and an X-Ray trace
/// id.
pub fn invocation_headers(request_id: &str, function: &str, timeout: Duration) -> HeaderMap {
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis()
        + timeout.as_millis();
    let value = |s: String| HeaderValue::from_str(&s).expect("an ASCII header value");
    let mut h = HeaderMap::new();
    h.insert(
        "lambda-runtime-aws-request-id",
        value(request_id.to_string()),
    );
    h.insert("lambda-runtime-deadline-ms", value(deadline.to_string()));
    h.insert(
        "lambda-runtime-invoked-function-arn",
        value(format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{function}"
        )),
    );
    h.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
        ),
    );
    h
}

/// A call the function's instance made to the runtime API, with the moment it arrived.
#[derive(Debug, Clone)]
pub enum Seen {
    /// `GET /invocation/next`: the instance asked for an event (its first ask ends its init).
    Next { at: Instant },
    /// `POST /invocation/{id}/response`: the instance's answer to invocation `id`.
    Response {
        at: Instant,
        id: String,
        body: String,
    },
    /// `POST /invocation/{id}/error`: the instance reported invocation `id` failed.
    Error {
        at: Instant,
        id: String,
        body: String,
    },
    /// `POST /init/error`: the instance failed to start.
    InitError { at: Instant, body: String },
}

/// What the instance answered to one invocation, and when the answer arrived.
#[derive(Debug)]
pub struct Answer {
    /// When the runtime API received the answer.
    pub at: Instant,
    /// `Ok(result)` from `/response`, `Err(error object)` from `/error`: the body parsed as JSON,
    /// or the body as a JSON string when it is not JSON.
    pub result: Result<Value, Value>,
}

/// Why [`Invocation::answer`] has no answer.
#[derive(Debug)]
pub enum NoAnswer {
    /// The instance reported an init error (this body) instead: it will answer nothing.
    InitError(String),
    /// No answer within the time given.
    TimedOut(Duration),
    /// The runtime API was stopped before the answer came.
    Stopped,
}

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoAnswer::InitError(body) => write!(f, "the function reported an init error: {body}"),
            NoAnswer::TimedOut(t) => write!(f, "the function did not answer within {t:?}"),
            NoAnswer::Stopped => write!(f, "the runtime API was stopped before the answer"),
        }
    }
}

/// One invocation handed to [`RuntimeApi::invoke`]: its request id, and its answer to wait for.
#[derive(Debug)]
pub struct Invocation {
    /// The request id the instance gets in `lambda-runtime-aws-request-id`.
    pub id: String,
    answer: oneshot::Receiver<Answer>,
    init_error: watch::Receiver<Option<String>>,
}

impl Invocation {
    /// Waits up to `timeout` for the instance's answer. An init error ends the wait at once: an
    /// instance that reported one answers nothing.
    pub async fn answer(self, timeout: Duration) -> Result<Answer, NoAnswer> {
        let Invocation {
            answer,
            mut init_error,
            ..
        } = self;
        let init_failed = async move {
            let failed = init_error
                .wait_for(Option::is_some)
                .await
                .map(|body| body.clone().unwrap_or_default());
            match failed {
                Ok(body) => NoAnswer::InitError(body),
                // The runtime API is gone; the answer's channel says so.
                Err(_) => std::future::pending().await,
            }
        };
        let wait = async {
            tokio::select! {
                biased;
                answer = answer => answer.map_err(|_| NoAnswer::Stopped),
                failed = init_failed => Err(failed),
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(NoAnswer::TimedOut(timeout)))
    }
}

/// An invocation waiting for the instance to ask for it: request id, event, where its answer goes.
type Pending = (String, Vec<u8>, oneshot::Sender<Answer>);

struct Runtime {
    function: String,
    timeout: Duration,
    pending: Mutex<VecDeque<Pending>>,
    ready: Notify,
    inflight: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    seen: Mutex<Vec<Seen>>,
    init_error: watch::Sender<Option<String>>,
}

/// A lock that a panicked holder does not poison for the rest of the test.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn next(State(rt): State<Arc<Runtime>>) -> (HeaderMap, Vec<u8>) {
    lock(&rt.seen).push(Seen::Next { at: Instant::now() });
    loop {
        let item = lock(&rt.pending).pop_front();
        if let Some((id, event, answer)) = item {
            lock(&rt.inflight).insert(id.clone(), answer);
            return (invocation_headers(&id, &rt.function, rt.timeout), event);
        }
        // No invocation yet: the instance waits here, as a Lambda instance does between events
        // (until the test ends it).
        rt.ready.notified().await;
    }
}

/// The body as JSON, or as a JSON string when it is not JSON.
fn parsed(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()))
}

async fn response(
    State(rt): State<Arc<Runtime>>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    let at = Instant::now();
    let result = Ok(parsed(&body));
    let tx = lock(&rt.inflight).remove(&id);
    // Kept before the answer goes out, so whoever the answer wakes finds it in `seen`.
    lock(&rt.seen).push(Seen::Response { at, id, body });
    if let Some(tx) = tx {
        let _ = tx.send(Answer { at, result });
    }
    StatusCode::ACCEPTED
}

async fn error(State(rt): State<Arc<Runtime>>, Path(id): Path<String>, body: String) -> StatusCode {
    let at = Instant::now();
    let result = Err(parsed(&body));
    let tx = lock(&rt.inflight).remove(&id);
    // Kept before the answer goes out, so whoever the answer wakes finds it in `seen`.
    lock(&rt.seen).push(Seen::Error { at, id, body });
    if let Some(tx) = tx {
        let _ = tx.send(Answer { at, result });
    }
    StatusCode::ACCEPTED
}

async fn init_error(State(rt): State<Arc<Runtime>>, body: String) -> StatusCode {
    let at = Instant::now();
    lock(&rt.seen).push(Seen::InitError {
        at,
        body: body.clone(),
    });
    rt.init_error.send_replace(Some(body));
    StatusCode::ACCEPTED
}

/// A local Lambda runtime API on its own port on 127.0.0.1, for one instance of one function:
/// [`RuntimeApi::invoke`] queues an event, the instance takes it with `GET /invocation/next` and
/// its answer goes back to the [`Invocation`]. Every call the instance makes is kept
/// ([`RuntimeApi::seen`]). Dropping it stops the server.
pub struct RuntimeApi {
    rt: Arc<Runtime>,
    address: String,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Serves the runtime API of function `function`, whose invocations each have `timeout` to
    /// run (their deadline).
    pub async fn start(function: &str, timeout: Duration) -> RuntimeApi {
        let rt = Arc::new(Runtime {
            function: function.to_string(),
            timeout,
            pending: Mutex::default(),
            ready: Notify::new(),
            inflight: Mutex::default(),
            seen: Mutex::default(),
            init_error: watch::Sender::new(None),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(rt.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port on 127.0.0.1 for the runtime API");
        let address = listener
            .local_addr()
            .expect("the runtime API's address")
            .to_string();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RuntimeApi {
            rt,
            address,
            server,
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The function's name.
    pub fn function(&self) -> &str {
        &self.rt.function
    }

    /// A command for `bin` as Lambda starts an instance of the function under this runtime API:
    /// an empty environment but for Lambda's own variables (128 MB), killed when dropped. The
    /// suite adds the function's variables, `RUST_LOG` and its standard streams.
    pub fn command(&self, bin: impl AsRef<OsStr>) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(bin);
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", &self.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.rt.function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", self.rt.function),
            )
            .kill_on_drop(true);
        cmd
    }

    /// Queues `event` for the instance and returns at once; [`Invocation::answer`] waits for the
    /// answer. Events are handed out in the order they were queued, one per `next`.
    pub fn invoke(&self, event: impl Into<Vec<u8>>) -> Invocation {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        lock(&self.rt.pending).push_back((id.clone(), event.into(), tx));
        self.rt.ready.notify_one();
        Invocation {
            id,
            answer: rx,
            init_error: self.rt.init_error.subscribe(),
        }
    }

    /// Every call the instance made so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.rt.seen).clone()
    }

    /// How many times the instance asked for an event.
    pub fn asked(&self) -> usize {
        lock(&self.rt.seen)
            .iter()
            .filter(|s| matches!(s, Seen::Next { .. }))
            .count()
    }

    /// When the instance first asked for an event: the end of its init.
    pub fn first_asked(&self) -> Option<Instant> {
        lock(&self.rt.seen).iter().find_map(|s| match s {
            Seen::Next { at } => Some(*at),
            _ => None,
        })
    }

    /// The body of the instance's init error, if it reported one.
    pub fn init_error(&self) -> Option<String> {
        self.rt.init_error.borrow().clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The record Lambda's SQS event source mapping hands a function for message `m` of the queue
/// `queue_arn` (one of an `SqsEvent`'s `Records`): its system attributes and message attributes
/// as the mapping spells them.
pub fn sqs_record(m: &aws_sdk_sqs::types::Message, queue_arn: &str) -> Value {
    let attrs: serde_json::Map<String, Value> = m
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_string(), json!(v)))
                .collect()
        })
        .unwrap_or_default();
    let msg_attrs: serde_json::Map<String, Value> = m
        .message_attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        json!({
                            "stringValue": v.string_value(),
                            "dataType": v.data_type(),
                            "stringListValues": [], "binaryListValues": []
                        }),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "messageId": m.message_id(),
        "receiptHandle": m.receipt_handle(),
        "body": m.body(),
        "attributes": attrs,
        "messageAttributes": msg_attrs,
        "md5OfBody": m.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    })
}
