//! Support for the tests that hold `cloudformation/slipway.yml` against the code: the template
//! read into long-form JSON, each Lambda's sources scanned for AWS SDK calls and `SLIPWAY_*`
//! environment variables, and the IAM action list kept beside each function
//! (`crates/<function>/iam-actions.txt`).
//!
//! The scanner reads what a function compiles that can call AWS: its own crate's `src/` and the
//! `crates/aws` modules it names (`slipway_aws::sqs`, `use slipway_aws::{sqs, ssm}`), following
//! `crate::`/`super::` references between those modules. SDK calls therefore belong in either
//! place; test code (`#[cfg(test)]` and after) and comments are not read.

pub mod code;
pub mod template;

use std::path::{Path, PathBuf};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/stack sits two levels below the workspace root")
        .to_path_buf()
}

/// One Lambda function: where its code is and what the template calls it.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    /// `listener`: the crate is `crates/listener`, the package and binary `slipway-listener`.
    pub name: &'static str,
    /// The `AWS::Lambda::Function` resource in the template.
    pub logical_id: &'static str,
}

impl Function {
    pub fn crate_dir(&self, root: &Path) -> PathBuf {
        root.join("crates").join(self.name)
    }
    pub fn binary(&self) -> String {
        format!("slipway-{}", self.name)
    }
    pub fn list_path(&self, root: &Path) -> PathBuf {
        self.crate_dir(root).join("iam-actions.txt")
    }
}

pub const FUNCTIONS: [Function; 4] = [
    Function {
        name: "listener",
        logical_id: "ListenerFunction",
    },
    Function {
        name: "spawner",
        logical_id: "SpawnerFunction",
    },
    Function {
        name: "notifier",
        logical_id: "NotifierFunction",
    },
    Function {
        name: "tasks",
        logical_id: "TasksFunction",
    },
];

/// One line of `iam-actions.txt`: an action the function's role is granted, and, for an action
/// no SDK call in the code makes (Lambda writing logs, the SQS event source polling, the
/// asynchronous dead-letter queue), the reason after `platform:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedAction {
    pub action: String,
    pub platform: Option<String>,
    pub line: usize,
}

/// Reads an `iam-actions.txt`: `#` starts a comment; one action per line, `service:Action`,
/// optionally followed by `platform: <why>`.
pub fn read_action_list(path: &Path) -> Result<Vec<ListedAction>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot be read: {e}", path.display()))?;
    parse_action_list(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse_action_list(text: &str) -> Result<Vec<ListedAction>, String> {
    let action_re = regex::Regex::new(r"^[a-z0-9-]+:[A-Za-z0-9]+$").expect("valid regex");
    let mut out: Vec<ListedAction> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (action, rest) = match line.split_once(char::is_whitespace) {
            Some((a, r)) => (a, r.trim()),
            None => (line, ""),
        };
        if !action_re.is_match(action) {
            return Err(format!(
                "line {}: `{action}` is not an IAM action like sqs:SendMessage (no wildcards)",
                i + 1
            ));
        }
        let platform = if rest.is_empty() {
            None
        } else if let Some(why) = rest.strip_prefix("platform:") {
            if why.trim().is_empty() {
                return Err(format!("line {}: `platform:` needs a reason", i + 1));
            }
            Some(why.trim().to_string())
        } else {
            return Err(format!(
                "line {}: after the action only `platform: <why>` may follow",
                i + 1
            ));
        };
        if out.iter().any(|a| a.action == action) {
            return Err(format!("line {}: {action} is listed twice", i + 1));
        }
        out.push(ListedAction {
            action: action.to_string(),
            platform,
            line: i + 1,
        });
    }
    Ok(out)
}

/// Calls whose IAM action the list lacks: the failure a new SDK call without its permission gets.
pub fn unlisted_calls(scan: &code::Scan, list: &[ListedAction], list_path: &Path) -> Vec<String> {
    scan.calls
        .iter()
        .filter(|c| {
            !c.actions
                .iter()
                .all(|a| list.iter().any(|l| &l.action == a))
        })
        .map(|c| {
            format!(
                "{} calls .{}() which needs {}, not listed in {}",
                c.site,
                c.method,
                c.actions.join(" and "),
                list_path.display()
            )
        })
        .collect()
}

/// Listed actions that no call needs and that are not marked `platform:`: stale grants.
pub fn uncalled_actions(scan: &code::Scan, list: &[ListedAction], list_path: &Path) -> Vec<String> {
    let called = scan.actions();
    list.iter()
        .filter(|l| l.platform.is_none() && !called.contains(&l.action))
        .map(|l| {
            format!(
                "{}:{} lists {} but no SDK call in {} needs it (remove it, or mark it `platform: <why>`)",
                list_path.display(),
                l.line,
                l.action,
                scan.files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect()
}
