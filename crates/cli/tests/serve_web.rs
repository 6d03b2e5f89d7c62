//! `slipway serve`'s pages in a real browser: Debian's headless Chromium driven over WebDriver
//! (chromedriver) with `fantoccini`, against a real `slipway serve` with the Docker engine and
//! the htpasswd registry of `tests/services.sh`; and `/metrics` read as Prometheus' text format.
//!
//! With `SLIPWAY_SCREENSHOTS=docs/screenshots` (relative to the workspace root), the browser test
//! saves a picture of each page there.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use slipway_testkit::git::{commit_all, init, write};
use slipway_testkit::registry::{docker, registry};
use slipway_testkit::serve::{SECRET, Server};
use slipway_testkit::{free_port, serve_setup, unique};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, and a headless Chromium session with a fresh profile. Both are
/// stopped when dropped (chromedriver ends the browser with the session).
struct Browser {
    driver: Child,
    client: Option<Client>,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        for p in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(p).exists(),
                "{p} is missing: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                    "--window-size=1280,900",
                ],
            },
        }))
        .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let t = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    assert!(
                        t.elapsed() < Duration::from_secs(30),
                        "no WebDriver session from {CHROMEDRIVER}: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        Browser {
            driver,
            client: Some(client),
            _profile: profile,
        }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    async fn text(&self, css: &str) -> String {
        self.c()
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
            .text()
            .await
            .unwrap()
    }

    async fn js(&self, script: &str) -> Value {
        self.c().execute(script, vec![]).await.unwrap()
    }

    /// Polls `cond` on the page's text of `css` until it holds.
    async fn wait_text(
        &self,
        css: &str,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&str) -> bool,
    ) -> String {
        let t = Instant::now();
        loop {
            let text = match self.c().find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if cond(&text) {
                return text;
            }
            assert!(t.elapsed() < timeout, "{what}: {css} shows {text:?}");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("SLIPWAY_SCREENSHOTS") else {
            return;
        };
        let dir = workspace_root().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.c().screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn build_of<'a>(builds: &'a [Value], image: &str, commit: &str) -> Option<&'a Value> {
    builds
        .iter()
        .find(|b| b["image"] == image && b["commit"] == commit)
}

fn wait_build(
    server: &Server,
    image: &str,
    commit: &str,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let t = Instant::now();
    loop {
        let builds = server.builds();
        if let Some(b) = build_of(&builds, image, commit)
            && cond(b)
        {
            return b.clone();
        }
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "{what}: {builds:#?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// Processes whose command line contains `needle` (the test's own work directories, a marker
/// in a Dockerfile's `RUN`): what a cancelled build must leave none of.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if !e
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        if let Ok(raw) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// `curl` with extra arguments; returns (status, body).
fn curl(args: &[&str], url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-m", "30", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

/// A file whose name is markup: it becomes a changed path, so a reason the pages show.
const HTML_FILE: &str = "<img src=x onerror=alert(1)>.txt";
/// A log line that is markup.
const HTML_LOG: &str = "<b id=injected>not bold</b>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_show_pushes_live_logs_failures_and_cancel_a_running_build() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let ns_path = unique("web");
    let namespace = format!("{}/{ns_path}", r.host);
    let marker = unique("victim-running-");
    // In every RUN: no step is served from BuildKit's cache of an earlier run.
    let run = unique("run-");
    let repo = tmp.path().join("site");
    init(&repo);
    let image_dir = |name: &str, run: &str| {
        std::fs::create_dir_all(repo.join(name)).unwrap();
        std::fs::copy(&r.busybox, repo.join(name).join("busybox")).unwrap();
        write(
            &repo,
            &format!("{name}/Dockerfile"),
            &format!(
                // The engine has no bridge network; a step that needs none says so.
                "FROM scratch\nCOPY busybox /bin/busybox\nRUN --network=none [\"/bin/busybox\", \"sh\", \"-c\", {}]\n",
                serde_json::to_string(run).unwrap()
            ),
        );
    };
    // Long enough to watch its log arrive: a line a second.
    image_dir(
        "slow",
        &format!(
            "echo {run}; echo '{HTML_LOG}'; for i in 1 2 3 4 5 6; do echo tick-$i; /bin/busybox sleep 1; done"
        ),
    );
    image_dir("broken", &format!("echo {run}; echo about to fail; exit 3"));
    let c1 = commit_all(&repo, "slow and broken");

    let serve = serve_setup!(&r, tmp.path(), &ns_path, "concurrency = 2");
    let server = serve.start(1);
    let browser = Browser::start().await;
    let b = &browser;
    let base = server.base.clone();
    let slow = format!("{namespace}/slow");
    let broken = format!("{namespace}/broken");

    // 1. A push appears on the overview.
    let answer = server.push(&repo, None, &c1, "web-1");
    assert_eq!(answer["status"], "queued", "{answer}");
    b.c().goto(&format!("{base}/")).await.unwrap();
    let t = Instant::now();
    loop {
        let text = b.text("#pushes").await;
        if text.contains("push-web-1") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the push is not on the overview: {text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.c().refresh().await.unwrap();
    }

    // 2. The build page shows log lines arriving while the build runs, without a reload.
    let running = wait_build(&server, &slow, &c1, "slow runs", |x| {
        x["state"] == "running"
    });
    let id = running["id"].as_i64().unwrap();
    b.c()
        .goto(&format!("{base}/web/builds/{id}"))
        .await
        .unwrap();
    b.js("window.slipwayTestMark = 'same page'; return null")
        .await;
    let first = b
        .wait_text("#log", "a first tick", Duration::from_secs(60), |t| {
            t.contains("tick-")
        })
        .await;
    let later = b
        .wait_text("#log", "more ticks", Duration::from_secs(60), |t| {
            t.contains("tick-4")
        })
        .await;
    assert!(later.len() > first.len());
    assert_eq!(
        b.js("return window.slipwayTestMark || null").await,
        json!("same page"),
        "the page reloaded instead of streaming"
    );
    assert_eq!(
        b.text("#state").await,
        "running",
        "tick-4 arrived while it ran"
    );
    b.screenshot("build-running").await;
    // The page reloads itself when the build ends.
    b.wait_text("#state", "slow succeeds", Duration::from_secs(120), |t| {
        t.contains("succeeded")
    })
    .await;
    let log = b.text("#log").await;
    assert!(log.contains("tick-6"), "{log}");

    // 3. A log line with markup is text.
    assert!(log.contains(HTML_LOG), "{log}");
    assert_eq!(
        b.js("return document.querySelectorAll('img[src=\"x\"], #injected').length")
            .await,
        json!(0),
        "markup from the payload or the log became elements"
    );
    let phases = b.text("#phases").await;
    assert!(
        phases.contains("BUILD") && phases.contains("POST_BUILD"),
        "{phases}"
    );
    b.screenshot("build-succeeded").await;

    // 4. A failed build is shown with its error.
    let failed = wait_build(&server, &broken, &c1, "broken fails", |x| {
        x["state"] == "failed"
    });
    let fid = failed["id"].as_i64().unwrap();
    b.c()
        .goto(&format!("{base}/web/builds/{fid}"))
        .await
        .unwrap();
    assert_eq!(b.text("#state").await, "failed");
    let error = b.text("#error").await;
    assert!(
        error.contains("BUILD") && error.contains("exited with"),
        "{error}"
    );
    assert!(b.text("#log").await.contains("about to fail"));
    b.screenshot("build-failed").await;

    // The overview: failures first in the last results.
    b.c().goto(&format!("{base}/")).await.unwrap();
    let last = b.text("#last").await;
    let (pb, ps) = (last.find(&broken).unwrap(), last.find(&slow).unwrap());
    assert!(pb < ps, "the failure is not first: {last}");
    b.screenshot("overview").await;

    // The push page: what was planned and why.
    b.c()
        .goto(&format!("{base}/web/jobs/push-web-1"))
        .await
        .unwrap();
    let planned = b.text("#planned").await;
    assert!(
        planned.contains(&slow) && planned.contains(&broken),
        "{planned}"
    );
    b.screenshot("push").await;

    // The image page: history, tags and digests, the badge's Markdown.
    b.c()
        .goto(&format!("{base}/web/images/{slow}"))
        .await
        .unwrap();
    let tags = b.text("#tags").await;
    assert!(
        tags.contains(running["tags"][0].as_str().unwrap()),
        "{tags}"
    );
    assert!(tags.contains("sha256:"), "{tags}");
    let md = b.text("#markdown").await;
    assert_eq!(
        md,
        format!("[![build]({base}/badge/{slow}.svg)]({base}/web/images/{slow})")
    );
    b.screenshot("image").await;

    // 5. Actions refuse cross-site requests and requests without the page's token.
    let (code, body) = curl(
        &[
            "-X",
            "POST",
            "-H",
            "Origin: https://evil.example",
            "-H",
            "Content-Type: application/x-www-form-urlencoded",
            "--data",
            "csrf=x",
        ],
        &format!("{base}/builds/{fid}/retry"),
    );
    assert_eq!(
        (code, body.contains("cross_site_request")),
        (403, true),
        "{body}"
    );
    let (code, body) = curl(&["-X", "POST"], &format!("{base}/builds/{fid}/retry"));
    assert_eq!(
        (code, body.contains("csrf_token_invalid")),
        (403, true),
        "{body}"
    );

    // 6. Retry queues the same job's image again.
    b.c()
        .goto(&format!("{base}/web/builds/{fid}"))
        .await
        .unwrap();
    b.c()
        .find(Locator::Css("#retry-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let t = Instant::now();
    let new_id = loop {
        let url = b.c().current_url().await.unwrap();
        let n: i64 = url
            .path()
            .rsplit('/')
            .next()
            .unwrap()
            .parse()
            .unwrap_or(fid);
        if n != fid {
            break n;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "retry did not lead to a new build: {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let retried = server.get_json(&format!("/builds/{new_id}"));
    assert_eq!(
        (retried["image"].as_str(), retried["job_id"].as_str()),
        (Some(broken.as_str()), Some("push-web-1"))
    );

    // 7. Cancel stops a running build: its processes go, nothing is pushed, it is cancelled.
    image_dir("victim", &format!("echo {marker}; /bin/busybox sleep 120"));
    write(
        &repo,
        &format!("victim/{HTML_FILE}"),
        "markup in a file name\n",
    );
    let c2 = commit_all(&repo, "a long build");
    server.push(&repo, Some(&c1), &c2, "web-2");
    let victim = format!("{namespace}/victim");
    let v = wait_build(&server, &victim, &c2, "victim runs", |x| {
        x["state"] == "running"
    });
    let vid = v["id"].as_i64().unwrap();
    b.c()
        .goto(&format!("{base}/web/builds/{vid}"))
        .await
        .unwrap();
    b.wait_text(
        "#log",
        "the RUN step started",
        Duration::from_secs(90),
        |t| t.contains(&marker),
    )
    .await;
    // A payload value with markup (a changed path) is text.
    let reasons = b.text("#reasons").await;
    assert!(reasons.contains(HTML_FILE), "{reasons}");
    assert_eq!(
        b.js("return document.querySelectorAll('img[src=\"x\"]').length")
            .await,
        json!(0),
        "a changed path became an element"
    );
    b.c()
        .goto(&format!("{base}/web/jobs/push-web-2"))
        .await
        .unwrap();
    let planned = b.text("#planned").await;
    assert!(planned.contains(HTML_FILE), "{planned}");
    let left_out = b.text("#skipped").await;
    assert!(
        left_out.contains(&slow) && left_out.contains("nothing under its context"),
        "{left_out}"
    );
    b.screenshot("push-with-skipped").await;
    b.c()
        .goto(&format!("{base}/web/builds/{vid}"))
        .await
        .unwrap();
    // The runner's processes (bash, the docker buildx client) are visible: the check after the
    // cancel can fail. (The RUN step's own process runs in the engine's BuildKit, visible here
    // only when the engine shares this PID namespace: checked by its marker when it does.)
    let work = serve.data_dir.join("work").display().to_string();
    assert!(
        !processes_with(&work).is_empty(),
        "the build's processes are not visible"
    );
    b.c()
        .find(Locator::Css("#cancel-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_text(
        "#state",
        "the build is cancelled",
        Duration::from_secs(60),
        |t| t.contains("cancelled"),
    )
    .await;
    let error = b.text("#error").await;
    assert!(error.contains("cancelled"), "{error}");
    b.screenshot("build-cancelled").await;
    let t = Instant::now();
    loop {
        let left: Vec<String> = processes_with(&marker)
            .into_iter()
            .chain(processes_with(&work))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "processes outlived the cancel: {left:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let done = server.get_json(&format!("/builds/{vid}"));
    assert_eq!(done["state"], "cancelled", "{done:#}");
    assert!(done["digest"].is_null(), "{done:#}");
    for tag in done["tags"].as_array().unwrap() {
        assert_eq!(
            r.manifest_digest(&format!("{ns_path}/victim"), tag.as_str().unwrap()),
            None,
            "a cancelled build pushed {tag}"
        );
    }
    let events = server.events();
    assert!(
        events
            .iter()
            .any(|e| e["build_id"].as_str() == Some(&vid.to_string()) && e["status"] == "STOPPED"),
        "{events:#?}"
    );

    // Readable on a phone: the build page in a phone's width, without horizontal scrolling.
    b.c().set_window_size(390, 844).await.unwrap();
    b.c()
        .goto(&format!("{base}/web/builds/{fid}"))
        .await
        .unwrap();
    assert_eq!(
        b.js("return document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        json!(true),
        "the build page scrolls sideways on a phone"
    );
    b.screenshot("build-phone").await;

    let _ = b.c().clone().close().await;
    for name in ["slow", "broken"] {
        for t in ["main", "latest", &format!("sha-{}", &c1[..7])] {
            let _ = docker(
                &["rmi", "--force", &format!("{namespace}/{name}:{t}")],
                None,
            );
        }
    }
}

fn metric<'a>(
    scrape: &'a prometheus_parse::Scrape,
    name: &str,
    label: Option<(&str, &str)>,
) -> Option<&'a prometheus_parse::Sample> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    match metric(scrape, name, label).map(|s| &s.value) {
        Some(prometheus_parse::Value::Counter(v))
        | Some(prometheus_parse::Value::Gauge(v))
        | Some(prometheus_parse::Value::Untyped(v)) => *v,
        other => panic!("{name} {label:?}: {other:?}"),
    }
}

fn histogram_count(
    scrape: &prometheus_parse::Scrape,
    name: &str,
    label: Option<(&str, &str)>,
) -> f64 {
    match metric(scrape, name, label).map(|s| &s.value) {
        Some(prometheus_parse::Value::Histogram(buckets)) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map(|b| b.count)
            .unwrap(),
        other => panic!("{name} {label:?}: {other:?}"),
    }
}

#[test]
fn metrics_count_webhooks_jobs_and_builds() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let ns_path = unique("metrics");
    let namespace = format!("{}/{ns_path}", r.host);
    let repo = tmp.path().join("site");
    init(&repo);
    r.busybox_context(
        &repo,
        "good",
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY stamp.txt /stamp.txt\n",
    );
    write(
        &repo,
        "bad/Dockerfile",
        "FROM scratch\nCOPY missing.txt /\n",
    );
    let c1 = commit_all(&repo, "one good, one bad");
    let serve = serve_setup!(&r, tmp.path(), &ns_path, "concurrency = 2");
    let server = serve.start(1);
    let hook = format!("{}/hooks/github", server.base);

    // A known sequence: a ping, a forged push, a push, its redelivery.
    let ping = tmp.path().join("ping.json");
    std::fs::write(&ping, r#"{"zen":"Design for failure.","hook_id":1}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args([
            "replay",
            "--url",
            &hook,
            "--secret-env",
            "SLIPWAY_TEST_SERVE_SECRET",
            "--event",
            "ping",
        ])
        .arg(&ping)
        .env("SLIPWAY_TEST_SERVE_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, body) = curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-H",
            "X-GitHub-Event: push",
            "-H",
            "X-GitHub-Delivery: forged-1",
            "-H",
            &format!("X-Hub-Signature-256: sha256={}", "0".repeat(64)),
            "--data",
            "{}",
        ],
        &hook,
    );
    assert_eq!(code, 401, "{body}");
    assert_eq!(
        server.push(&repo, None, &c1, "metrics-1")["status"],
        "queued"
    );
    assert_eq!(
        server.push(&repo, None, &c1, "metrics-1")["status"],
        "duplicate"
    );
    let builds = server.wait_settled(2, Duration::from_secs(180));
    let mut states: Vec<&str> = builds
        .iter()
        .map(|b| b["state"].as_str().unwrap())
        .collect();
    states.sort();
    assert_eq!(states, ["failed", "succeeded"], "{builds:#?}");

    let (code, text) = server.get("/metrics");
    assert_eq!(code, 200, "{text}");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let w = "slipway_webhooks_total";
    assert_eq!(value(&scrape, w, Some(("answer", "pong"))), 1.0, "{text}");
    assert_eq!(
        value(&scrape, w, Some(("answer", "signature_mismatch"))),
        1.0,
        "{text}"
    );
    assert_eq!(value(&scrape, w, Some(("answer", "queued"))), 1.0, "{text}");
    assert_eq!(
        value(&scrape, w, Some(("answer", "duplicate"))),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &scrape,
            "slipway_jobs_planned_total",
            Some(("trigger", "push"))
        ),
        1.0
    );
    assert_eq!(
        value(&scrape, "slipway_builds_started_total", None),
        2.0,
        "{text}"
    );
    let f = "slipway_builds_finished_total";
    assert_eq!(
        value(&scrape, f, Some(("result", "succeeded"))),
        1.0,
        "{text}"
    );
    assert_eq!(value(&scrape, f, Some(("result", "failed"))), 1.0, "{text}");
    assert!(
        metric(&scrape, f, Some(("result", "stopped"))).is_none(),
        "{text}"
    );
    let d = "slipway_build_duration_seconds";
    assert_eq!(
        histogram_count(&scrape, d, Some(("result", "succeeded"))),
        1.0,
        "{text}"
    );
    assert_eq!(
        histogram_count(&scrape, d, Some(("result", "failed"))),
        1.0,
        "{text}"
    );
    assert_eq!(
        histogram_count(&scrape, "slipway_build_queue_wait_seconds", None),
        2.0,
        "{text}"
    );
    for (state, n) in [
        ("succeeded", 1.0),
        ("failed", 1.0),
        ("running", 0.0),
        ("queued", 0.0),
        ("cancelled", 0.0),
    ] {
        assert_eq!(
            value(&scrape, "slipway_builds", Some(("state", state))),
            n,
            "{state}: {text}"
        );
    }
    assert_eq!(
        value(&scrape, "slipway_jobs", Some(("state", "failed"))),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&scrape, "slipway_jobs", Some(("state", "queued"))),
        0.0,
        "{text}"
    );
    // Each finished build is notified once, after it settled (standard output here: no
    // [[webhook]] targets, so both are published); the notifier runs beside the worker.
    let n = "slipway_notifications_total";
    let deadline = Instant::now() + Duration::from_secs(30);
    let scrape = loop {
        let (_, text) = server.get("/metrics");
        let scrape =
            prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
        let published = metric(&scrape, n, Some(("outcome", "published")))
            .map(|_| value(&scrape, n, Some(("outcome", "published"))));
        if published.is_some_and(|v| v >= 2.0) || Instant::now() > deadline {
            break scrape;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(value(&scrape, n, Some(("outcome", "published"))), 2.0);
    assert!(metric(&scrape, n, Some(("outcome", "failed"))).is_none());
    let _ = docker(&["rmi", "--force", &format!("{namespace}/good:main")], None);
}
