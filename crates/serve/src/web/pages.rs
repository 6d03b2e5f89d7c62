//! The pages, as `maud` templates: HTML written in Rust and checked by the compiler, compiled
//! into the binary; every `(value)` is escaped, so a branch name, a reason or a log line with
//! markup in it is shown as text.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;
use slipway_core::plan::{ChangeSource, Plan};

use crate::history::JobRecord;
use crate::store::{self, BuildRecord};

/// Everything a page needs besides its data.
pub struct Ctx {
    /// The token of the page's forms (cancel, retry).
    pub csrf: String,
    /// The origin for absolute links (the badge's Markdown).
    pub origin: String,
}

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · slipway" }
                link rel="stylesheet" href="/web/static/app.css";
            }
            body {
                header {
                    a.brand href="/" { "slipway" }
                    nav { a href="/" { "Overview" } a href="/metrics" { "Metrics" } }
                }
                main { (body) }
                script src="/web/static/app.js" defer {}
            }
        }
    }
}

fn state(s: &str) -> Markup {
    html! { span class={ "state " (s) } { (s) } }
}

/// `2026-03-01 12:00:03 UTC` from Unix milliseconds.
pub fn when(ms: i64) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "-".into())
}

/// `850 ms`, `12.3 s`, `4 min 05 s`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// The commit's page on GitHub, when the clone URL is GitHub's: `https://github.com/o/n(.git)`.
pub fn github_commit_url(clone_url: &str, sha: &str) -> Option<String> {
    if slipway_core::names::check_sha(sha).is_err() {
        return None;
    }
    let u = url::Url::parse(clone_url).ok()?;
    if u.scheme() != "https" || u.host_str() != Some("github.com") || u.port().is_some() {
        return None;
    }
    let mut parts = u.path().trim_matches('/').split('/');
    let (owner, name) = (parts.next()?, parts.next()?);
    let name = name.strip_suffix(".git").unwrap_or(name);
    let ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if parts.next().is_some() || !ok(owner) || !ok(name) {
        return None;
    }
    Some(format!("https://github.com/{owner}/{name}/commit/{sha}"))
}

fn commit(clone_url: Option<&str>, sha: &str) -> Markup {
    match clone_url.and_then(|u| github_commit_url(u, sha)) {
        Some(url) => html! { a.mono href=(url) title=(sha) { (short(sha)) } },
        None => html! { span.mono title=(sha) { (short(sha)) } },
    }
}

fn build_link(b: &BuildRecord) -> Markup {
    html! { a href={ "/web/builds/" (b.id) } { "#" (b.id) } }
}

fn image_link(name: &str) -> Markup {
    html! { a.mono href={ "/web/images/" (name) } { (name) } }
}

fn trigger_text(job: Option<&slipway_core::Job>) -> Markup {
    match job.map(|j| &j.trigger) {
        Some(slipway_core::Trigger::Push) => html! { "push" },
        Some(slipway_core::Trigger::Schedule { name }) => {
            html! { "schedule " span.mono { (name) } }
        }
        Some(slipway_core::Trigger::Parent { image, build_id }) => html! {
            "parent " (image_link(image)) " built in "
            a href={ "/web/builds/" (build_id) } { "#" (build_id) }
        },
        None => html! { span.muted { "unknown" } },
    }
}

fn action(id: i64, what: &str, label: &str, ctx: &Ctx, danger: bool) -> Markup {
    html! {
        form method="post" action={ "/builds/" (id) "/" (what) } {
            input type="hidden" name="csrf" value=(ctx.csrf);
            button type="submit" class=[danger.then_some("danger")] id={ (what) "-button" } { (label) }
        }
    }
}

fn builds_table(builds: &[BuildRecord], show_image: bool) -> Markup {
    html! {
        @if builds.is_empty() {
            p.empty { "None." }
        } @else {
            table.wide {
                thead { tr {
                    th { "build" } @if show_image { th { "image" } } th { "state" }
                    th { "ref" } th { "commit" } th { "queued" } th { "took" }
                } }
                tbody {
                    @for b in builds {
                        tr data-build=(b.id) {
                            td data-label="build" { (build_link(b)) }
                            @if show_image { td data-label="image" { (image_link(&b.image)) } }
                            td data-label="state" { (state(&b.state)) }
                            td data-label="ref" class="mono" { (b.git_ref) }
                            td data-label="commit" { span.mono { (short(&b.commit)) } }
                            td data-label="queued" { (when(b.queued_ms)) }
                            td data-label="took" { @if let Some(d) = b.duration_ms { (duration(d)) } }
                        }
                    }
                }
            }
        }
    }
}

pub fn overview(active: &[BuildRecord], last: &[BuildRecord], jobs: &[JobRecord]) -> Markup {
    layout(
        "Overview",
        html! {
            h1 { "Overview" }
            section #active {
                h2 { "Running and queued" }
                (builds_table(active, true))
            }
            section #last {
                h2 { "Last result per image" }
                @if last.is_empty() {
                    p.empty { "No build has finished yet." }
                } @else {
                    table.wide {
                        thead { tr { th { "image" } th { "state" } th { "build" } th { "ref" } th { "finished" } th { "error" } } }
                        tbody {
                            @for b in last {
                                tr data-image=(b.image) {
                                    td data-label="image" { (image_link(&b.image)) }
                                    td data-label="state" { (state(&b.state)) }
                                    td data-label="build" { (build_link(b)) }
                                    td data-label="ref" class="mono" { (b.git_ref) }
                                    td data-label="finished" { @if let Some(f) = b.finished_ms { (when(f)) } }
                                    td data-label="error" class="error" { @if let Some(e) = &b.error { (e) } }
                                }
                            }
                        }
                    }
                }
            }
            section #pushes {
                h2 { "Recent pushes and rebuilds" }
                (jobs_table(jobs))
            }
        },
    )
}

fn jobs_table(jobs: &[JobRecord]) -> Markup {
    html! {
        @if jobs.is_empty() {
            p.empty { "No push has arrived yet. Point a GitHub webhook at /hooks/github." }
        } @else {
            table.wide {
                thead { tr { th { "job" } th { "trigger" } th { "repository" } th { "ref" } th { "commit" } th { "state" } th { "received" } } }
                tbody {
                    @for j in jobs {
                        tr data-job=(j.id) {
                            td data-label="job" { a.mono href={ "/web/jobs/" (j.id) } { (j.id) } }
                            td data-label="trigger" { (trigger_text(j.job.as_ref())) }
                            td data-label="repository" class="mono" { (j.repository) }
                            td data-label="ref" class="mono" { (j.git_ref) }
                            td data-label="commit" { (commit(j.job.as_ref().map(|x| x.clone_url.as_str()), &j.commit)) }
                            td data-label="state" { (state(&j.state)) }
                            td data-label="received" { (when(j.received_ms)) }
                        }
                    }
                }
            }
        }
    }
}

/// What the build page shows besides the build.
pub struct BuildView<'a> {
    pub build: &'a BuildRecord,
    pub job: Option<&'a JobRecord>,
    /// The log so far (whole lines), and its length in bytes (where the live log goes on).
    pub log: &'a str,
    pub log_offset: u64,
    /// Bytes of the log left out at its start (a very long log), if any.
    pub log_omitted: u64,
    pub retry_of: Option<i64>,
    pub retried_by: Option<i64>,
}

pub fn build(v: &BuildView<'_>, ctx: &Ctx) -> Markup {
    let b = v.build;
    let job = v.job.and_then(|j| j.job.as_ref());
    let clone_url = job.map(|j| j.clone_url.as_str());
    let live = !store::is_terminal(&b.state);
    let phases = b
        .outcome
        .as_ref()
        .and_then(|o| o.get("phases"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    layout(
        &format!("{} #{}", b.image, b.id),
        html! {
            h1 { "Build #" (b.id) " of " (image_link(&b.image)) }
            dl #summary {
                dt { "state" } dd #state { (state(&b.state)) @if b.attempts > 1 { " " span.muted { "(attempt " (b.attempts) ")" } } }
                @if let Some(e) = &b.error {
                    dt { "error" } dd #error.error { (e) }
                }
                dt { "repository" } dd.mono { (b.repository) }
                dt { "commit" } dd { (commit(clone_url, &b.commit)) }
                dt { "ref" } dd.mono { (b.git_ref) }
                dt { "trigger" } dd { (trigger_text(job)) }
                dt { "push" } dd { a.mono href={ "/web/jobs/" (b.job_id) } { (b.job_id) } }
                dt { "why" } dd #reasons {
                    @if b.planned.reasons.is_empty() { span.muted { "-" } }
                    @else { ul.plain { @for r in &b.planned.reasons { li.mono { (r) } } } }
                }
                dt { "tags" } dd.mono { @for (i, t) in b.tags.iter().enumerate() { @if i > 0 { ", " } (t) } }
                dt { "digest" } dd.mono #digest { @if let Some(d) = &b.digest { (d) } @else { span.muted { "-" } } }
                dt { "platforms" } dd.mono {
                    @if b.planned.platforms.is_empty() { span.muted { "the engine's" } }
                    @else { (b.planned.platforms.join(", ")) }
                }
                dt { "queued" } dd { (when(b.queued_ms)) }
                @if let Some(s) = b.started_ms {
                    dt { "started" } dd { (when(s)) " " span.muted { "(waited " (duration(s - b.queued_ms)) ")" } }
                }
                @if let Some(f) = b.finished_ms {
                    dt { "finished" } dd { (when(f)) @if let Some(d) = b.duration_ms { " " span.muted { "(took " (duration(d)) ")" } } }
                }
                @if let Some(o) = v.retry_of {
                    dt { "retry of" } dd { a href={ "/web/builds/" (o) } { "#" (o) } }
                }
                @if let Some(n) = v.retried_by {
                    dt { "retried as" } dd { a href={ "/web/builds/" (n) } { "#" (n) } }
                }
            }
            div.actions {
                @if live { (action(b.id, "cancel", "Cancel", ctx, true)) }
                @else { (action(b.id, "retry", "Retry", ctx, false)) }
            }
            @if !phases.is_empty() {
                h2 { "Phases" }
                table #phases.wide {
                    thead { tr { th { "phase" } th { "status" } th { "took" } th { "message" } } }
                    tbody {
                        @for p in &phases {
                            @let status = p.get("status").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
                            tr {
                                td data-label="phase" class="mono" { (p.get("phase").and_then(Value::as_str).unwrap_or("")) }
                                td data-label="status" { (state(&status)) }
                                td data-label="took" { (duration(p.get("duration_ms").and_then(Value::as_i64).unwrap_or(0))) }
                                td data-label="message" class="mono" { (p.get("message").and_then(Value::as_str).unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            h2 { "Log " small { a href={ "/builds/" (b.id) "/log" } { "plain text" } } }
            @if live {
                p #live-status.muted { "The build is " (b.state) "." }
                noscript { p.muted { "Without JavaScript the log stops here: reload the page, or follow " a href={ "/builds/" (b.id) "/log" } { "the plain-text log" } ", which streams." } }
            }
            @if v.log_omitted > 0 {
                p.muted { "The first " (v.log_omitted) " bytes are left out here; the plain-text log has them." }
            }
            pre #log.log data-build=(b.id) data-offset=(v.log_offset) data-live=(if live { "true" } else { "false" }) { (v.log) }
        },
    )
}

pub struct ImageView<'a> {
    pub name: &'a str,
    pub history: &'a [BuildRecord],
    /// Each tag's newest pushed digest and the build that pushed it.
    pub tags: &'a [(String, String, i64)],
}

pub fn image(v: &ImageView<'_>, ctx: &Ctx) -> Markup {
    let newest = v.history.first();
    let badge = format!("{}/badge/{}.svg", ctx.origin, v.name);
    let page = format!("{}/web/images/{}", ctx.origin, v.name);
    let markdown = format!("[![build]({badge})]({page})");
    layout(
        v.name,
        html! {
            h1.mono { (v.name) }
            p { img src={ "/badge/" (v.name) ".svg" } alt="build status"; }
            h2 { "Embed the badge" }
            pre.embed #markdown { (markdown) }
            h2 { "Tags and digests" }
            @if v.tags.is_empty() {
                p.empty { "Nothing pushed yet." }
            } @else {
                table #tags.wide {
                    thead { tr { th { "tag" } th { "digest" } th { "build" } } }
                    tbody { @for (t, d, id) in v.tags {
                        tr { td data-label="tag" class="mono" { (t) } td data-label="digest" class="mono" { (d) }
                             td data-label="build" { a href={ "/web/builds/" (id) } { "#" (id) } } }
                    } }
                }
            }
            @if let Some(n) = newest {
                h2 { "Parents and children" }
                dl {
                    dt { "built FROM" } dd { @if n.planned.parents.is_empty() { span.muted { "no image of this repository" } }
                        @else { @for (i, p) in n.planned.parents.iter().enumerate() { @if i > 0 { ", " } (image_link(p)) } } }
                    dt { "children" } dd { @if n.planned.children.is_empty() { span.muted { "none" } }
                        @else { @for (i, c) in n.planned.children.iter().enumerate() { @if i > 0 { ", " } (image_link(c)) } } }
                }
            }
            h2 { "History" }
            (builds_table(v.history, false))
        },
    )
}

pub fn job(j: &JobRecord, builds: &[BuildRecord]) -> Markup {
    let job = j.job.as_ref();
    let clone_url = job.map(|x| x.clone_url.as_str());
    let plan: Option<Plan> = j.plan.clone().and_then(|p| serde_json::from_value(p).ok());
    let title = match job.map(|x| &x.trigger) {
        Some(slipway_core::Trigger::Push) | None => "Push",
        Some(slipway_core::Trigger::Schedule { .. }) => "Scheduled rebuild",
        Some(slipway_core::Trigger::Parent { .. }) => "Rebuild after a parent",
    };
    layout(
        &format!("{title} {}", j.id),
        html! {
            h1 { (title) " " span.mono { (j.repository) } " " span.mono { (j.git_ref) } }
            dl #summary {
                dt { "state" } dd { (state(&j.state)) }
                @if let Some(e) = &j.error { dt { "error" } dd.error #error { (e) } }
                dt { "job" } dd.mono { (j.id) }
                dt { "trigger" } dd { (trigger_text(job)) }
                @if let Some(x) = job {
                    dt { "delivery" } dd.mono { (x.delivery_id) }
                    dt { "before" } dd { (commit(clone_url, &x.before)) }
                }
                dt { "commit" } dd { (commit(clone_url, &j.commit)) }
                dt { "received" } dd { (when(j.received_ms)) }
            }
            @match &plan {
                None => { p.empty { "Not planned yet." } }
                Some(p) => {
                    h2 { "How the changes were found" }
                    p #changes { @match &p.changes {
                        ChangeSource::Repository { base } => { "The repository's diff against " span.mono { (short(base)) } "." }
                        ChangeSource::Payload { note } => { "The push's file lists: " (note) }
                        ChangeSource::All { reason } => { "Every image: " (reason) }
                        ChangeSource::Named => { "The job named its images." }
                    } }
                    h2 { "Planned" }
                    @if p.images.is_empty() { p.empty { "No image to build." } }
                    @else {
                        table #planned.wide {
                            thead { tr { th { "image" } th { "why" } th { "tags" } th { "build" } } }
                            tbody { @for im in &p.images {
                                tr {
                                    td data-label="image" { (image_link(&im.name)) }
                                    td data-label="why" { ul.plain { @for r in &im.reasons { li.mono { (r) } } } }
                                    td data-label="tags" class="mono" { (im.tags.join(", ")) }
                                    td data-label="build" {
                                        @for b in builds.iter().filter(|b| b.image == im.name) {
                                            (build_link(b)) " " (state(&b.state)) " "
                                        }
                                    }
                                }
                            } }
                        }
                    }
                    @if !p.errors.is_empty() {
                        h2 { "Cannot be built" }
                        table #problems.wide {
                            thead { tr { th { "context" } th { "problem" } th { "what to fix" } } }
                            tbody { @for e in &p.errors {
                                tr { td data-label="context" class="mono" { (e.context) } td data-label="problem" class="mono" { (e.code) } td data-label="what to fix" { (e.message) } }
                            } }
                        }
                    }
                    h2 { "Not built" }
                    @if p.skipped.is_empty() { p.empty { "Every image of the repository is planned." } }
                    @else {
                        table #skipped.wide {
                            thead { tr { th { "image" } th { "context" } th { "why not" } } }
                            tbody { @for s in &p.skipped {
                                tr { td data-label="image" class="mono" { (s.name) } td data-label="context" class="mono" { (s.context) } td data-label="why not" { (s.reason) } }
                            } }
                        }
                    }
                }
            }
            @let others: Vec<&BuildRecord> = builds.iter().filter(|b| plan.as_ref().is_none_or(|p| !p.images.iter().any(|i| i.name == b.image))).collect();
            @if !others.is_empty() {
                h2 { "Other builds of this job" }
                ul.plain { @for b in others { li { (build_link(b)) " " (image_link(&b.image)) " " (state(&b.state)) } } }
            }
        },
    )
}

/// An error page (the JSON routes answer JSON).
pub fn problem(title: &str, message: &str) -> Markup {
    layout(
        title,
        html! { h1 { (title) } p.error { (message) } p { a href="/" { "Back to the overview" } } },
    )
}
