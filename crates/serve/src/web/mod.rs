//! `slipway serve`'s face: server-rendered pages (overview, build, image, push), the live log
//! as server-sent events, the cancel and retry actions shared by the pages and the JSON API, and
//! the access rules of `[web]`.
//!
//! Pages are `maud` templates (`pages`), compiled into the binary with the one stylesheet and
//! the one script (`static/`). The script only follows a running build's log; everything else
//! works without it. Every response carries a Content-Security-Policy that allows the server's
//! own files only.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;
use serde_json::json;

pub mod auth;
pub mod pages;

use crate::http::AppState;
use crate::store::{self, CancelRequest, RetryRequest};
use crate::worker::log_path;
use auth::{Denied, Principal};

/// The most of a log a page renders (its end); the plain-text log has it all.
const PAGE_LOG_BYTES: u64 = 2 * 1024 * 1024;

const APP_JS: &str = include_str!("static/app.js");
const APP_CSS: &str = include_str!("static/app.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The pages and the actions. Reading routes go through [`read_access`]; the actions check
/// credentials, origin and token themselves.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(overview))
        .route("/web/builds/{id}", get(build_page))
        .route("/web/builds/{id}/events", get(build_events))
        .route("/web/images/{*image}", get(image_page))
        .route("/web/jobs/{id}", get(job_page))
        .route("/web/static/app.js", get(app_js))
        .route("/web/static/app.css", get(app_css))
}

/// The actions, open to the JSON API and the pages' forms alike.
pub fn action_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/builds/{id}/cancel", post(cancel))
        .route("/builds/{id}/retry", post(retry))
        .route("/csrf-token", get(csrf_token))
}

fn now_s() -> i64 {
    store::now_ms() / 1000
}

fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({ "error": code, "message": message.into() })),
    )
        .into_response()
}

fn denied(st: &AppState, d: Denied) -> Response {
    let status = match d {
        Denied::Unauthenticated | Denied::BadCredentials => StatusCode::UNAUTHORIZED,
        Denied::CrossSite | Denied::BadCsrfToken => StatusCode::FORBIDDEN,
    };
    tracing::info!(refusal = d.code(), "web request refused");
    let mut r = json_error(status, d.code(), d.to_string());
    if status == StatusCode::UNAUTHORIZED && st.auth.offers_basic() {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"slipway\", charset=\"UTF-8\""),
        );
    }
    r
}

/// Middleware of the reading routes (pages, JSON history, logs, metrics): `[web]` decides.
pub async fn read_access(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match st
        .auth
        .principal(req.headers())
        .and_then(|p| st.auth.may_read(&p))
    {
        Ok(()) => next.run(req).await,
        Err(d) => denied(&st, d),
    }
}

/// Security headers on every page.
pub async fn page_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

pub fn with_page_headers(r: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    r.layer(middleware::from_fn(page_headers))
}

fn html(m: Markup) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        m.into_string(),
    )
        .into_response()
}

fn page_error(status: StatusCode, title: &str, message: &str) -> Response {
    let mut r = html(pages::problem(title, message));
    *r.status_mut() = status;
    r
}

fn store_failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "the job store failed a page read");
    page_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "The history cannot be read",
        "The job store failed; try again in a moment.",
    )
}

fn ctx(st: &AppState, headers: &HeaderMap) -> pages::Ctx {
    // Reading routes passed `read_access`: credentials here are valid or absent.
    let p = st.auth.principal(headers).unwrap_or(Principal::Anonymous);
    pages::Ctx {
        csrf: st.auth.csrf_token(&p, now_s()),
        origin: st
            .auth
            .origin(headers)
            .unwrap_or_else(|| "http://localhost".into()),
    }
}

/// Runs a store read off the async workers.
async fn read<T: Send + 'static>(
    st: &Arc<AppState>,
    f: impl FnOnce(&store::Store) -> Result<T, rusqlite::Error> + Send + 'static,
) -> Result<T, Response> {
    let s = st.store.clone();
    match tokio::task::spawn_blocking(move || f(&s)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(store_failed(e)),
        Err(e) => Err(store_failed(e)),
    }
}

async fn overview(State(st): State<Arc<AppState>>) -> Response {
    match read(&st, |s| {
        Ok((s.active_builds()?, s.last_results()?, s.recent_jobs(20)?))
    })
    .await
    {
        Ok((active, last, jobs)) => html(pages::overview(&active, &last, &jobs)),
        Err(r) => r,
    }
}

fn parse_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|i| *i > 0)
}

/// The end of the log, cut to whole lines: what a page shows, and where the live log goes on.
async fn log_tail(path: &std::path::Path) -> (String, u64, u64) {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let Ok(mut f) = tokio::fs::File::open(path).await else {
        return (String::new(), 0, 0);
    };
    let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(PAGE_LOG_BYTES);
    if f.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return (String::new(), 0, 0);
    }
    let mut buf = Vec::new();
    let _ = (&mut f).take(len - start).read_to_end(&mut buf).await;
    // Start after a line break when cut; end after the last one (a line being written is
    // sent by the live log once whole).
    let from = if start > 0 {
        buf.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1)
    } else {
        0
    };
    let to = buf
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(from, |i| i + 1);
    let to = to.max(from);
    let text = String::from_utf8_lossy(&buf[from..to]).into_owned();
    (text, start + to as u64, start + from as u64)
}

async fn build_page(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return page_error(
            StatusCode::BAD_REQUEST,
            "No such build",
            "A build id is a number.",
        );
    };
    let found = read(&st, move |s| {
        let Some(b) = s.build(id)? else {
            return Ok(None);
        };
        let job = s.job_record(&b.job_id)?;
        let links = s.retry_links(id)?;
        Ok(Some((b, job, links)))
    })
    .await;
    let (b, job, (retry_of, retried_by)) = match found {
        Ok(Some(x)) => x,
        Ok(None) => {
            return page_error(
                StatusCode::NOT_FOUND,
                "No such build",
                &format!("There is no build {id}."),
            );
        }
        Err(r) => return r,
    };
    let (log, log_offset, log_omitted) = log_tail(&log_path(&st.data_dir, id)).await;
    let view = pages::BuildView {
        build: &b,
        job: job.as_ref(),
        log: &log,
        log_offset,
        log_omitted,
        retry_of,
        retried_by,
    };
    html(pages::build(&view, &ctx(&st, &headers)))
}

async fn image_page(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(image): Path<String>,
) -> Response {
    if slipway_core::names::check_image_name(&image).is_err() {
        return page_error(
            StatusCode::BAD_REQUEST,
            "No such image",
            "That is not an image name.",
        );
    }
    let name = image.clone();
    let history = match read(&st, move |s| s.builds(100, Some(&name))).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    if history.is_empty() {
        return page_error(
            StatusCode::NOT_FOUND,
            "No such image",
            "No build of this image is in the history.",
        );
    }
    // Each tag's newest push: history is newest first.
    let mut tags: Vec<(String, String, i64)> = Vec::new();
    for b in history.iter().filter(|b| b.state == store::SUCCEEDED) {
        let Some(d) = &b.digest else { continue };
        for t in &b.tags {
            if !tags.iter().any(|(x, _, _)| x == t) {
                tags.push((t.clone(), d.clone(), b.id));
            }
        }
    }
    let view = pages::ImageView {
        name: &image,
        history: &history,
        tags: &tags,
    };
    html(pages::image(&view, &ctx(&st, &headers)))
}

async fn job_page(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let key = id.clone();
    let found = read(&st, move |s| {
        Ok(s.job_record(&key)?.map(|j| (j, s.job_builds(&key))))
    })
    .await;
    match found {
        Ok(Some((j, Ok(builds)))) => html(pages::job(&j, &builds)),
        Ok(Some((_, Err(e)))) => store_failed(e),
        Ok(None) => page_error(
            StatusCode::NOT_FOUND,
            "No such push",
            "No job with this id is in the history.",
        ),
        Err(r) => r,
    }
}

async fn app_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        APP_JS,
    )
        .into_response()
}

async fn app_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        APP_CSS,
    )
        .into_response()
}

#[derive(Deserialize)]
struct EventsQuery {
    from: Option<u64>,
}

/// Text a server-sent event can carry: line breaks are `\n` (an event's data may not hold `\r`).
fn event_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .replace("\r\n", "\n")
        .replace('\r', "\n")
}

/// `GET /web/builds/{id}/events`: the log from `from` (or the `Last-Event-ID` a reconnecting
/// browser sends) as `log` events of whole lines, each with the offset after it as its id, then
/// one `end` event with the final state.
async fn build_events(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_build_id",
            "a build id is a number",
        );
    };
    match read(&st, move |s| s.build(id)).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return json_error(
                StatusCode::NOT_FOUND,
                "build_not_found",
                format!("there is no build {id}"),
            );
        }
        Err(r) => return r,
    }
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let start = resume.or(q.from).unwrap_or(0);
    let path = log_path(&st.data_dir, id);
    let store = st.store.clone();
    struct Tail {
        offset: u64,
        done: bool,
    }
    let stream = futures::stream::unfold(
        Tail {
            offset: start,
            done: false,
        },
        move |mut t| {
            let path = path.clone();
            let store = store.clone();
            async move {
                if t.done {
                    return None;
                }
                loop {
                    // The state before the file: a build that ended before the read has all
                    // its lines in the file.
                    let state = store
                        .build(id)
                        .ok()
                        .flatten()
                        .map(|b| b.state)
                        .unwrap_or_else(|| "deleted".into());
                    let ended = store::is_terminal(&state) || state == "deleted";
                    let chunk = crate::http::read_from(&path, t.offset).await;
                    let whole = if ended {
                        chunk.len()
                    } else {
                        chunk.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
                    };
                    if whole > 0 {
                        t.offset += whole as u64;
                        let text = event_text(&chunk[..whole]);
                        let ev = Event::default()
                            .event("log")
                            .id(t.offset.to_string())
                            .data(text.strip_suffix('\n').unwrap_or(&text));
                        return Some((Ok::<_, Infallible>(ev), t));
                    }
                    if ended {
                        t.done = true;
                        return Some((Ok(Event::default().event("end").data(state)), t));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Who acts, after the credential, origin and token checks of an action.
fn check_action(
    st: &AppState,
    headers: &HeaderMap,
    form_token: Option<&str>,
) -> Result<Principal, Denied> {
    let p = st.auth.principal(headers)?;
    st.auth.may_act(&p)?;
    st.auth.same_origin(headers)?;
    let token = headers
        .get("x-slipway-csrf")
        .and_then(|v| v.to_str().ok())
        .or(form_token)
        .ok_or(Denied::BadCsrfToken)?;
    st.auth.check_csrf(&p, token, now_s())?;
    Ok(p)
}

/// A page's form (form-encoded, answered with a redirect) or an API call (answered in JSON).
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

fn form_token(headers: &HeaderMap, body: &Bytes) -> Option<String> {
    if !is_form(headers) {
        return None;
    }
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
}

fn who(p: &Principal) -> String {
    match p {
        Principal::Anonymous => "cancelled from the web".into(),
        Principal::User(u) => format!("cancelled by {u}"),
        Principal::Token => "cancelled through the API (token)".into(),
    }
}

async fn cancel(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let token = form_token(&headers, &body);
    let p = match check_action(&st, &headers, token.as_deref()) {
        Ok(p) => p,
        Err(d) => return denied(&st, d),
    };
    let Some(id) = parse_id(&id) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_build_id",
            "a build id is a number",
        );
    };
    let worker = st.worker.clone();
    let reason = who(&p);
    let r = tokio::task::spawn_blocking(move || worker.cancel(id, &reason)).await;
    let answer = match r {
        Ok(Ok(CancelRequest::Queued(_))) => json!({ "status": "cancelled", "build_id": id }),
        Ok(Ok(CancelRequest::Running)) => json!({ "status": "cancelling", "build_id": id }),
        Ok(Ok(CancelRequest::Finished(state))) => {
            return json_error(
                StatusCode::CONFLICT,
                "build_finished",
                format!("build {id} has ended ({state}); nothing to cancel"),
            );
        }
        Ok(Ok(CancelRequest::NotFound)) => {
            return json_error(
                StatusCode::NOT_FOUND,
                "build_not_found",
                format!("there is no build {id}"),
            );
        }
        Ok(Err(e)) => return crate::http::store_error(e),
        Err(_) => {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store task failed",
            );
        }
    };
    if is_form(&headers) {
        Redirect::to(&format!("/web/builds/{id}")).into_response()
    } else {
        (StatusCode::ACCEPTED, axum::Json(answer)).into_response()
    }
}

async fn retry(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let token = form_token(&headers, &body);
    if let Err(d) = check_action(&st, &headers, token.as_deref()) {
        return denied(&st, d);
    }
    let Some(id) = parse_id(&id) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_build_id",
            "a build id is a number",
        );
    };
    let worker = st.worker.clone();
    let new_id = match tokio::task::spawn_blocking(move || worker.retry(id)).await {
        Ok(Ok(RetryRequest::Queued(n))) => n,
        Ok(Ok(RetryRequest::NotFinished(state))) => {
            return json_error(
                StatusCode::CONFLICT,
                "build_not_finished",
                format!("build {id} is {state}; cancel it or wait for it to end"),
            );
        }
        Ok(Ok(RetryRequest::NotFound)) => {
            return json_error(
                StatusCode::NOT_FOUND,
                "build_not_found",
                format!("there is no build {id}"),
            );
        }
        Ok(Err(e)) => return crate::http::store_error(e),
        Err(_) => {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store task failed",
            );
        }
    };
    if is_form(&headers) {
        Redirect::to(&format!("/web/builds/{new_id}")).into_response()
    } else {
        (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "status": "queued", "build_id": new_id, "retry_of": id })),
        )
            .into_response()
    }
}

/// `GET /csrf-token`: the action token for the caller's credentials, for API clients (pages
/// carry it in their forms). Reading it needs what acting needs.
async fn csrf_token(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match st
        .auth
        .principal(&headers)
        .and_then(|p| st.auth.may_act(&p).map(|()| p))
    {
        Ok(p) => p,
        Err(d) => return denied(&st, d),
    };
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({ "csrf_token": st.auth.csrf_token(&p, now_s()) })),
    )
        .into_response()
}
