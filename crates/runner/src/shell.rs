//! How a buildspec command runs: `bash -c <wrapper> ... <command>`, the command being the
//! buildspec's own text and every value an environment variable. Like CodeBuild's version 0.2,
//! variables and the working directory carry over from one command to the next (the wrapper
//! saves them after each command, secrets left out); output lines reach the log masked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::mask::Masker;

/// Saves the variables and working directory of a command for the next one (CodeBuild 0.2
/// semantics), merges standard error into standard output, and runs the command text with
/// `set -a` so that plain assignments carry over like exported ones. Arguments: state file, cwd
/// file, CODEBUILD_BUILD_SUCCEEDING, the command, the names of secret variables (kept out of the
/// state file: they come from the process environment every time).
const WRAPPER: &str = r#"exec 2>&1
__slipway_state=$1 __slipway_cwd=$2 __slipway_ok=$3 __slipway_cmd=$4 __slipway_secrets=$5
shift 5
. "$__slipway_state"
CODEBUILD_BUILD_SUCCEEDING=$__slipway_ok
cd -- "$(cat -- "$__slipway_cwd")" || exit 1
__slipway_save() {
  __slipway_rc=$?
  set +a
  for __slipway_n in $__slipway_secrets; do unset "$__slipway_n"; done
  export -n __slipway_rc __slipway_n 2>/dev/null
  { export -p > "$__slipway_state.new" && mv -f -- "$__slipway_state.new" "$__slipway_state"; pwd > "$__slipway_cwd"; } 2>/dev/null
  exit "$__slipway_rc"
}
trap __slipway_save EXIT
set -a
eval "$__slipway_cmd"
"#;

/// How long a cancelled command's processes get after SIGTERM (docker buildx cancels its build,
/// an autotest's `trap` takes its compose project down) before the group is killed.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// The error a cancelled command ends the build with.
pub(crate) const CANCELLED: &str = "the build was cancelled";

/// One build's shell: its environment, the state carried between commands, and the masking.
pub(crate) struct Shell {
    pub env: BTreeMap<String, String>,
    /// The variables saved after each command (`export -p`).
    pub state_file: PathBuf,
    /// The working directory saved after each command.
    pub cwd_file: PathBuf,
    /// Names of the secret variables, space-separated: never saved, always from `env`.
    pub secret_names: String,
    pub masker: Masker,
}

impl Shell {
    /// Runs one command; its exit code (128 when it ended by a signal). When `cancel` fires,
    /// the command's whole process group is stopped and the build ends with [`CANCELLED`].
    pub async fn run(
        &self,
        cmd: &str,
        succeeding: bool,
        log: &(dyn Fn(&str) + Sync),
        cancel: &CancellationToken,
    ) -> Result<i32, String> {
        if cancel.is_cancelled() {
            return Err(CANCELLED.into());
        }
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(WRAPPER)
            .arg("slipway-command")
            .arg(&self.state_file)
            .arg(&self.cwd_file)
            .arg(if succeeding { "1" } else { "0" })
            .arg(cmd)
            .arg(&self.secret_names)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            // Its own process group: a cancel stops bash and everything it started (docker
            // buildx, docker compose, the test's processes) at once.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run bash: {e}"))?;
        let out = child.stdout.take();
        let run = async {
            if let Some(out) = out {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    log(&self.masker.mask(&line));
                }
            }
            child.wait().await
        };
        let ended = tokio::select! {
            status = run => Some(status),
            () = cancel.cancelled() => None,
        };
        match ended {
            Some(status) => {
                let status = status.map_err(|e| format!("cannot wait for bash: {e}"))?;
                Ok(status.code().unwrap_or(128))
            }
            None => {
                stop_group(&mut child).await;
                Err(CANCELLED.into())
            }
        }
    }

    /// The exported variables' values at the end of the build.
    pub async fn exported(&self, names: &[String]) -> Result<BTreeMap<String, String>, String> {
        read_exported(&self.state_file, names).await
    }
}

/// The exported variables' values at the end of the build, read from the saved state.
async fn read_exported(
    state_file: &Path,
    names: &[String],
) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    if names.is_empty() {
        return Ok(map);
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#". "$1" 2>/dev/null; shift; for n in "$@"; do if [ -n "${!n+x}" ]; then printf '%s\0%s\0' "$n" "${!n}"; fi; done"#)
        .arg("slipway-exported")
        .arg(state_file)
        .args(names)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot read the exported variables: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split('\0');
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        if !k.is_empty() {
            map.insert(k.to_string(), v.to_string());
        }
    }
    Ok(map)
}

/// SIGTERM to the command's process group, SIGKILL to what is left after [`CANCEL_GRACE`].
async fn stop_group(child: &mut tokio::process::Child) {
    let Some(pid) = child.id() else {
        return;
    };
    // `kill` as argv (no shell, no unsafe): a negative pid names the process group.
    let group = format!("-{pid}");
    let signal = |sig: &'static str| {
        let group = group.clone();
        async move {
            let _ = Command::new("kill")
                .args(["-s", sig, "--", &group])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
        }
    };
    signal("TERM").await;
    if tokio::time::timeout(CANCEL_GRACE, child.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            pid,
            "a cancelled build command outlived its grace period; killed"
        );
    }
    // Whatever bash left behind in its group (a compose `down` still running) goes too.
    signal("KILL").await;
    let _ = child.wait().await;
}
