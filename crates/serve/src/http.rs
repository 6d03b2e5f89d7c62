//! The HTTP side of `slipway serve`: the listener's decision on `POST /hooks/github`, the
//! build history, logs and badges in JSON, `/metrics`, and the pages (`crate::web`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde::Deserialize;
use serde_json::json;
use slipway_core::listener::{self, Inbound, ListenerConfig};

use super::metrics::Metrics;
use super::store::{self, SqliteQueue, Store};
use super::web;
use super::worker::{Worker, log_path};

pub struct AppState {
    pub listener: ListenerConfig,
    pub queue: SqliteQueue,
    pub store: Arc<Store>,
    pub data_dir: PathBuf,
    pub worker: Arc<Worker>,
    pub metrics: Arc<Metrics>,
    pub auth: web::auth::WebAuth,
}

pub fn router(state: Arc<AppState>) -> Router {
    // One byte over the listener's limit reaches the listener, which answers 413 in JSON.
    let limit = state.listener.max_body_bytes + 1;
    // What `[web]` protects: the history, logs, metrics and pages.
    let reading = Router::new()
        .route("/builds", get(builds))
        .route("/builds/{id}", get(build))
        .route("/builds/{id}/log", get(build_log))
        .route("/metrics", get(metrics))
        .merge(web::with_page_headers(web::routes()))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            web::read_access,
        ));
    Router::new()
        .route("/hooks/github", any(hook))
        .route("/healthz", get(healthz))
        .route("/badge/{*image}", get(badge))
        .merge(reading)
        .merge(web::action_routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({ "error": code, "message": message.into() })),
    )
        .into_response()
}

pub(crate) fn store_error(e: rusqlite::Error) -> Response {
    tracing::error!(error = %e, "the job store failed a read");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the build history cannot be read right now",
    )
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such path")
}

async fn hook(
    State(st): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = Inbound {
        method: &method,
        headers: &headers,
        body: &body,
    };
    let reply = listener::handle(&st.listener, &st.queue, &req).await;
    st.metrics
        .webhook(slipway_core::metrics::webhook_answer(&reply));
    (reply.status, axum::Json(reply.body)).into_response()
}

async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    let s = st.store.clone();
    match tokio::task::spawn_blocking(move || s.counts()).await {
        Ok(Ok(counts)) => axum::Json(json!({ "status": "ok", "counts": counts })).into_response(),
        Ok(Err(e)) => store_error(e),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store task failed",
        ),
    }
}

/// `GET /metrics`: Prometheus' text format.
async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let s = st.store.clone();
    match tokio::task::spawn_blocking(move || s.counts()).await {
        Ok(Ok(counts)) => (
            [
                (header::CONTENT_TYPE, super::metrics::CONTENT_TYPE),
                (header::CACHE_CONTROL, "no-store"),
            ],
            st.metrics.render(&counts),
        )
            .into_response(),
        Ok(Err(e)) => store_error(e),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store task failed",
        ),
    }
}

#[derive(Deserialize)]
struct BuildsQuery {
    limit: Option<usize>,
    image: Option<String>,
}

async fn builds(State(st): State<Arc<AppState>>, Query(q): Query<BuildsQuery>) -> Response {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    match st.store.builds(limit, q.image.as_deref()) {
        Ok(list) => axum::Json(json!({ "builds": list })).into_response(),
        Err(e) => store_error(e),
    }
}

fn bad_id() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_build_id",
        "a build id is a number, as listed by GET /builds",
    )
}

async fn build(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return bad_id();
    };
    match st.store.build(id) {
        Ok(Some(b)) => {
            let job = st.store.job_state(&b.job_id).ok().flatten();
            let mut v = serde_json::to_value(&b).unwrap_or_default();
            if let Some((state, err)) = job {
                v["job"] = json!({ "id": b.job_id, "state": state, "error": err });
            }
            axum::Json(v).into_response()
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "build_not_found",
            format!("there is no build {id}"),
        ),
        Err(e) => store_error(e),
    }
}

/// Streams the log: what is written so far, then new lines as the build writes them, until the
/// build is finished.
async fn build_log(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return bad_id();
    };
    match st.store.build(id) {
        Ok(Some(_)) => {}
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "build_not_found",
                format!("there is no build {id}"),
            );
        }
        Err(e) => return store_error(e),
    }
    let path = log_path(&st.data_dir, id);
    let store = st.store.clone();
    let stream = futures::stream::unfold(0u64, move |mut offset| {
        let path = path.clone();
        let store = store.clone();
        async move {
            loop {
                // Read the state before the file: a build finished before the read has all its
                // lines in the file.
                let finished = match store.build(id) {
                    Ok(Some(b)) => store::is_terminal(&b.state),
                    _ => true,
                };
                let chunk = read_from(&path, offset).await;
                if !chunk.is_empty() {
                    offset += chunk.len() as u64;
                    return Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), offset));
                }
                if finished {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

pub(crate) async fn read_from(path: &std::path::Path, offset: u64) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let Ok(mut f) = tokio::fs::File::open(path).await else {
        return Vec::new();
    };
    if f.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    let _ = (&mut f).take(256 * 1024).read_to_end(&mut buf).await;
    buf
}

/// `GET /badge/<image>.svg`: the image's last finished build, as a small SVG.
async fn badge(State(st): State<Arc<AppState>>, Path(raw): Path<String>) -> Response {
    let Some(image) = raw.strip_suffix(".svg") else {
        return error(StatusCode::NOT_FOUND, "not_found", "badges end in .svg");
    };
    if slipway_core::names::check_image_name(image).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_image",
            "not an image name",
        );
    }
    let (text, color) = match st.store.last_finished(image) {
        Ok(Some(b)) if b.state == store::SUCCEEDED => ("passing", "#4c1"),
        Ok(Some(_)) => ("failing", "#e05d44"),
        Ok(None) => ("unknown", "#9f9f9f"),
        Err(e) => return store_error(e),
    };
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        badge_svg("build", text, color),
    )
        .into_response()
}

fn badge_svg(label: &str, status: &str, color: &str) -> String {
    // Fixed words only: nothing from the request is written into the SVG.
    let lw = 6 * label.len() as u32 + 10;
    let sw = 6 * status.len() as u32 + 10;
    let w = lw + sw;
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" aria-label="{label}: {status}"><title>{label}: {status}</title><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{sw}" height="20" fill="{color}"/><g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11"><text x="{lx}" y="14">{label}</text><text x="{sx}" y="14">{status}</text></g></svg>"##,
        lx = lw / 2,
        sx = lw + sw / 2,
    )
}
