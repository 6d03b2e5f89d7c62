//! `slipway serve`: the whole pipeline in one process — the listener's decision on an HTTP server,
//! a durable SQLite job queue and build history, builds on the local Docker engine through
//! `slipway build`'s runner (`slipway_runner`), and notifications.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use slipway_runner::{Buildspec, SHIPPED_BUILDSPEC, SecretSource};

pub mod config;
pub mod history;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod outcome;
pub mod retention;
pub mod schedule;
pub mod store;
pub mod web;
pub mod worker;

pub use config::{EXAMPLE, ServeConfig, StartError};

/// What the command line may set over the configuration file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The configuration file (TOML). `None`: the built-in defaults.
    pub config: Option<PathBuf>,
    /// Listen on this address instead of the configuration's.
    pub listen: Option<std::net::SocketAddr>,
    /// Keep the queue, history and logs here instead of the configuration's data directory.
    pub data_dir: Option<PathBuf>,
}

fn check_data_dir(dir: &Path) -> Result<(), StartError> {
    let bad = |reason: String| StartError::DataDir {
        path: dir.to_path_buf(),
        reason,
    };
    for sub in ["logs", "work", "repos"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| bad(e.to_string()))?;
    }
    let probe = dir.join(".write-probe");
    std::fs::write(&probe, b"ok").map_err(|e| bad(format!("cannot write in it: {e}")))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

async fn check_docker() -> Result<(), StartError> {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        tokio::process::Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| StartError::NoDocker {
        reason: "`docker version` did not answer in 15 s".into(),
    })?
    .map_err(|e| StartError::NoDocker {
        reason: format!("the docker client cannot be run: {e}"),
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(StartError::NoDocker {
            reason: err
                .lines()
                .last()
                .unwrap_or("docker version failed")
                .trim()
                .to_string(),
        });
    }
    tracing::info!(engine = %String::from_utf8_lossy(&out.stdout).trim(), "Docker engine found");
    Ok(())
}

/// Runs `slipway serve` until SIGINT or SIGTERM. A start-up problem is returned, saying what to
/// fix; once listening, problems are logged and the server carries on.
pub async fn run(args: Options) -> Result<(), StartError> {
    let mut cfg = ServeConfig::load(args.config.as_deref())?;
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if let Some(d) = args.data_dir {
        cfg.data_dir = Some(d);
    }
    let listener_cfg = cfg.listener()?;
    let data_dir = cfg.data_dir();
    check_data_dir(&data_dir)?;
    let bad_config = |reason: String| StartError::ConfigInvalid {
        path: args.config.clone().unwrap_or_else(|| "(defaults)".into()),
        reason,
    };
    let buildspec_text = match &cfg.buildspec {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| bad_config(format!("cannot read buildspec {}: {e}", p.display())))?,
        None => SHIPPED_BUILDSPEC.to_string(),
    };
    let buildspec = Buildspec::parse(&buildspec_text)
        .map_err(|e| bad_config(format!("the buildspec is invalid: {e}")))?;
    // Also without a file: the default comes from SLIPWAY_BUILD_NETWORK.
    slipway_runner::check_build_network(&cfg.build_network())
        .map_err(|e| bad_config(format!("`build_network`: {e}")))?;
    let secrets = SecretSource::load(cfg.registry_secrets_file.as_deref())
        .map_err(|e| bad_config(e.to_string()))?;
    let deploy = match &cfg.deploy_targets_file {
        None => None,
        Some(p) => {
            let raw = std::fs::read_to_string(p).map_err(|e| {
                bad_config(format!(
                    "cannot read deploy_targets_file {}: {e}",
                    p.display()
                ))
            })?;
            let targets = slipway_core::notify::parse_deploy_targets(&raw)
                .map_err(|e| bad_config(format!("{}: {e}", p.display())))?;
            let hooks =
                slipway_calls::deploy::DeployCalls::new(targets, slipway_calls::FileSecrets)
                    .map_err(|e| bad_config(format!("deploy calls: {e}")))?;
            Some(hooks)
        }
    };
    let webhooks = cfg.webhook_targets().map_err(&bad_config)?;
    let retention = cfg.retention().map_err(&bad_config)?;
    let auth = web::auth::WebAuth::load(cfg.web.as_ref()).map_err(|e| bad_config(e.to_string()))?;
    check_docker().await?;

    let db = data_dir.join("slipway.db");
    let store = Arc::new(store::Store::open(&db).map_err(|e| StartError::Store {
        path: db.clone(),
        reason: e.to_string(),
    })?);
    let wake = Arc::new(tokio::sync::Notify::new());
    let socket = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| StartError::Listen {
            addr: cfg.listen,
            reason: e.to_string(),
        })?;
    let addr = socket.local_addr().unwrap_or(cfg.listen);

    let sinks = Arc::new(notify::ServeSinks {
        store: store.clone(),
        client: slipway_calls::client().map_err(|e| bad_config(format!("webhooks: {e}")))?,
        webhooks,
        send: slipway_calls::SendOptions::default(),
        deploy,
    });
    let metrics = Arc::new(metrics::Metrics::new());
    let (notifications, to_notify) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(worker::notifier(sinks, metrics.clone(), to_notify));
    tokio::spawn(retention::run(store.clone(), data_dir.clone(), retention));
    let scheduler = schedule::Scheduler::new(
        store.clone(),
        wake.clone(),
        data_dir.clone(),
        cfg.clone_rules(),
        &cfg.schedules,
        time::OffsetDateTime::now_utc(),
    )
    .map_err(&bad_config)?;
    for s in &cfg.schedules {
        tracing::info!(schedule = %s.name, expression = %s.expression, repository = %s.repository, "schedule loaded");
    }
    tokio::spawn(scheduler.run());

    let worker = Arc::new(worker::Worker {
        store: store.clone(),
        wake: wake.clone(),
        data_dir: data_dir.clone(),
        namespace: cfg.namespace.clone(),
        concurrency: cfg.concurrency,
        cancel_superseded: cfg.cancel_superseded,
        clone_rules: cfg.clone_rules(),
        keep_builds_per_image: cfg.keep_builds_per_image.max(1),
        buildspec,
        secrets,
        parameter_prefix: cfg.parameter_prefix.clone(),
        build_network: cfg.build_network(),
        notifications,
        metrics: metrics.clone(),
        running: Default::default(),
    });
    tokio::spawn(worker.clone().run());

    let state = Arc::new(http::AppState {
        listener: listener_cfg,
        queue: store::SqliteQueue {
            store: store.clone(),
            wake,
        },
        store,
        data_dir: data_dir.clone(),
        worker,
        metrics,
        auth,
    });
    tracing::info!(
        listen = %addr,
        data_dir = %data_dir.display(),
        namespace = %cfg.namespace,
        concurrency = cfg.concurrency,
        "slipway serve is listening; send webhooks to POST /hooks/github"
    );
    axum::serve(socket, http::router(state))
        .with_graceful_shutdown(async {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term => {}
            }
            tracing::info!("stopping; running builds are queued again at the next start");
        })
        .await
        .map_err(|e| StartError::Listen {
            addr,
            reason: e.to_string(),
        })
}
