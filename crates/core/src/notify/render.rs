//! A result in words: the subject, the readable body, the JSON form, AWS Chatbot's custom
//! notification, the message attributes and the commit status. Every sink picks its forms.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::{BuildOutcome, BuildStatus, Report, shorten};
use crate::build_env;

/// Longest subject, in characters. SNS wants "less than 100 characters"; the issue asks for at
/// most 100: 99 satisfies both.
pub const MAX_SUBJECT_CHARS: usize = 99;
/// GitHub's limit for a commit status description.
pub const MAX_STATUS_DESCRIPTION: usize = 140;

/// `1h 02m 03s`, `1m 52s`, `9s`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m {sec:02}s"),
        (h, m, sec) => format!("{h}h {m:02}m {sec:02}s"),
    }
}

/// Cuts an image name to `budget` characters, keeping its end (the part that tells images
/// apart) and marking the cut with `…`.
fn shorten_image(image: &str, budget: usize) -> String {
    let n = image.chars().count();
    if n <= budget {
        return image.to_string();
    }
    if budget == 0 {
        return String::new();
    }
    let keep = budget - 1;
    let tail: String = image.chars().skip(n - keep).collect();
    // Prefer cutting at a path separator when that keeps at least half of the budget.
    let tail = match tail.find('/') {
        Some(i) if tail[i..].chars().count() >= keep / 2 => tail[i..].to_string(),
        _ => tail,
    };
    format!("…{tail}")
}

/// `✔ owner/image:tag built`, `✘ owner/image:tag failed`: at most [`MAX_SUBJECT_CHARS`]
/// characters, one line, never a split character. A long image name loses its beginning; a
/// long tag its end.
pub fn subject(o: &BuildOutcome) -> String {
    let mark = o.status.mark();
    let verb = o.status.verb();
    let tag = o.info.tags.first().map(String::as_str).unwrap_or("");
    // Fixed parts: "<mark> " + ":" (if tag) + " <verb>".
    let fixed = mark.chars().count() + 1 + 1 + verb.chars().count();
    let mut tag_part = if tag.is_empty() {
        String::new()
    } else {
        format!(":{tag}")
    };
    let min_image = 12;
    let room = MAX_SUBJECT_CHARS - fixed;
    if tag_part.chars().count() + min_image > room {
        tag_part = shorten(&tag_part, room - min_image);
    }
    let image = shorten_image(&o.info.image, room - tag_part.chars().count());
    format!("{mark} {image}{tag_part} {verb}")
}

/// The commit status set on GitHub for one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitStatus {
    pub repository: String,
    pub commit: String,
    /// `pending`, `success`, `failure`, `error`.
    pub state: &'static str,
    /// `slipway/<image>`.
    pub context: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
}

/// The commit status for a build.
pub fn commit_status(o: &BuildOutcome) -> CommitStatus {
    let state = match o.status {
        BuildStatus::InProgress => "pending",
        BuildStatus::Succeeded => "success",
        BuildStatus::Failed => "failure",
        BuildStatus::Stopped => "error",
    };
    let tag = o.info.tags.first().map(String::as_str).unwrap_or("");
    let description = match (o.status, &o.failed_phase) {
        (BuildStatus::Succeeded, _) => match o.duration {
            Some(d) => format!("pushed :{tag} in {}", format_duration(d)),
            None => format!("pushed :{tag}"),
        },
        (BuildStatus::InProgress, _) => "building".to_string(),
        (s, Some(p)) => format!("{} in {}: {}", s.verb(), p.phase, p.reason),
        (s, None) => s.verb().to_string(),
    };
    CommitStatus {
        repository: o.info.repository.clone(),
        commit: o.info.commit.clone(),
        state,
        context: build_env::status_context(&o.info.image),
        description: shorten(&description, MAX_STATUS_DESCRIPTION),
        target_url: o.log_url.clone(),
    }
}

/// The notification's forms, rendered once. Every sink picks the forms it delivers.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub subject: String,
    /// The readable body (email).
    pub text: String,
    /// The JSON form (machines).
    pub json: Value,
    /// AWS Chatbot's custom notification.
    pub chatbot: Value,
    /// `status`, `repository`, `image`: for subscription filter policies.
    pub attributes: Vec<(&'static str, String)>,
}

/// `https://github.com/owner/name/commit/<sha>`.
pub fn commit_url(o: &BuildOutcome) -> String {
    format!(
        "https://github.com/{}/commit/{}",
        o.info.repository, o.info.commit
    )
}

fn actions_lines(o: &BuildOutcome, r: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    for (child, _) in &r.children.queued {
        lines.push(format!("Child queued:   {child}"));
    }
    for (child, why) in &r.children.failed {
        lines.push(format!("Child NOT queued: {child} ({why})"));
    }
    for child in &r.children.skipped {
        lines.push(format!(
            "Child skipped:  {child} (parent {} {})",
            o.info.image,
            o.status.verb()
        ));
    }
    for d in &r.deploys {
        let mut s = format!("Deploy {}: {}", d.target, d.outcome);
        if d.attempts > 0 {
            s.push_str(&format!(
                " after {} attempt{}",
                d.attempts,
                if d.attempts == 1 { "" } else { "s" }
            ));
        }
        if let Some(st) = d.status {
            s.push_str(&format!(", HTTP {st}"));
        }
        if let Some(c) = d
            .error_code
            .as_deref()
            .filter(|c| !d.delivered() && *c != d.outcome)
        {
            s.push_str(&format!(" ({c})"));
        }
        lines.push(s);
    }
    lines
}

/// Renders every form of the notification for an outcome and what was done about it.
pub fn render(o: &BuildOutcome, r: &Report) -> Notification {
    let subject = subject(o);
    let i = &o.info;
    let mut body = vec![
        subject.clone(),
        String::new(),
        format!("Repository: {}", i.repository),
        format!("Ref:        {}", i.git_ref),
        format!("Commit:     {} {}", i.commit, commit_url(o)),
        format!("Image:      {}", i.image),
        format!("Tags:       {}", i.tags.join(", ")),
    ];
    if let Some(d) = &i.digest {
        body.push(format!("Digest:     {d}"));
    }
    body.push(format!("Status:     {}", o.status.as_str()));
    if let Some(d) = o.duration {
        body.push(format!("Duration:   {}", format_duration(d)));
    }
    if let Some(p) = &o.failed_phase {
        body.push(format!("Failed in:  {} ({})", p.phase, p.status));
        if !p.reason.is_empty() {
            body.push(format!("Reason:     {}", p.reason));
        }
    }
    if let Some(l) = &o.log_url {
        body.push(format!("Log:        {l}"));
    }
    body.push(format!("Build:      {}", o.build_id));
    let actions = actions_lines(o, r);
    if !actions.is_empty() {
        body.push(String::new());
        body.extend(actions.iter().cloned());
    }
    let text = body.join("\n") + "\n";

    let json = json!({
        "event": "build_state_change",
        "status": o.status.as_str(),
        "build_id": o.build_id,
        "job_id": i.job_id,
        "repository": i.repository,
        "ref": i.git_ref,
        "commit": i.commit,
        "commit_url": commit_url(o),
        "image": i.image,
        "tags": i.tags,
        "digest": i.digest,
        "duration_seconds": o.duration.map(|d| d.as_secs()),
        "failed_phase": o.failed_phase,
        "log_url": o.log_url,
        "children": r.children,
        "deploys": r.deploys,
        "commit_status": r.commit_status,
    });

    let mut description = format!(
        "`{}` at `{}` ({})",
        i.repository,
        &i.commit[..i.commit.len().min(7)],
        i.git_ref
    );
    if let Some(p) = &o.failed_phase {
        description.push_str(&format!("\nFailed in {}: {}", p.phase, p.reason));
    }
    for a in &actions {
        description.push('\n');
        description.push_str(a);
    }
    let mut links = Vec::new();
    if let Some(l) = &o.log_url {
        links.push(json!({"text": "Build log", "url": l, "type": "External"}));
    }
    links.push(json!({"text": "Commit", "url": commit_url(o), "type": "External"}));
    let chatbot = json!({
        "version": "1.0",
        "source": "custom",
        "id": o.build_id,
        "content": {
            "textType": "client-markdown",
            "title": subject,
            "description": description,
            "nextSteps": links.iter().map(|l| format!("<{}|{}>", l["url"].as_str().unwrap_or(""), l["text"].as_str().unwrap_or(""))).collect::<Vec<_>>(),
            "keywords": [o.status.as_str(), i.repository, i.image],
        },
        "metadata": {
            "threadId": format!("{}@{}", i.image, i.commit),
            "summary": subject,
            "eventType": o.status.as_str(),
            "relatedResources": [o.build_id],
            "additionalContext": {"links": links},
        },
    });
    Notification {
        subject,
        text,
        json,
        chatbot,
        attributes: vec![
            ("status", o.status.as_str().to_string()),
            ("repository", i.repository.clone()),
            ("image", i.image.clone()),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::test_support::outcome;

    #[test]
    fn subjects_fit_and_keep_the_end_of_long_names() {
        let s = subject(&outcome("acme/web", "main", BuildStatus::Succeeded));
        assert_eq!(s, "✔ acme/web:main built");
        let s = subject(&outcome("acme/web", "v1", BuildStatus::Failed));
        assert_eq!(s, "✘ acme/web:v1 failed");
        let long = format!("ghcr.io/acme/{}/web", "x".repeat(200));
        let s = subject(&outcome(&long, "main", BuildStatus::Stopped));
        assert!(s.chars().count() <= MAX_SUBJECT_CHARS, "{s}");
        assert!(s.ends_with("/web:main stopped"), "{s}");
        assert!(s.contains('…'));
        let s = subject(&outcome(
            "acme/web",
            &"t".repeat(128),
            BuildStatus::Succeeded,
        ));
        assert!(s.chars().count() <= MAX_SUBJECT_CHARS, "{s}");
        assert!(s.contains("acme/web:ttt"), "{s}");
    }
}
