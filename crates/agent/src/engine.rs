//! The Docker engine and compose, driven as processes with argv (never a shell string). Every
//! value that reaches an argv was validated (service names) or came from the engine itself
//! (labels, image ids).

use std::collections::BTreeMap;
use std::process::Stdio;

use serde::Deserialize;
use slipway_core::deploy::AgentError;
use tokio::process::Command;

pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const LABEL_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";

#[derive(Debug, Clone)]
pub struct Engine {
    pub docker: Vec<String>,
    pub compose: Vec<String>,
}

/// A compose service as its containers' labels describe it.
#[derive(Debug, Clone)]
pub struct Service {
    pub project: String,
    pub name: String,
    pub working_dir: String,
    pub config_files: Vec<String>,
    /// The image reference the service runs (`Config.Image`).
    pub image_ref: String,
    /// The image id the containers run now.
    pub image_id: String,
    pub containers: Vec<String>,
}

impl Service {
    pub fn qualified(&self) -> String {
        format!("{}/{}", self.project, self.name)
    }
}

/// One container as `docker inspect` shows it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Container {
    pub id: String,
    pub image: String,
    pub config: ContainerConfig,
    pub state: ContainerState,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    pub image: String,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    pub status: String,
    #[serde(default)]
    pub running: bool,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub health: Option<Health>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: String,
}

impl Container {
    fn label(&self, name: &str) -> Option<&str> {
        self.config.labels.as_ref()?.get(name).map(String::as_str)
    }
}

/// The outcome of one process: success and the last lines of its output (for the deploy log).
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn tail(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }
}

impl Engine {
    pub async fn run(&self, base: &[String], args: &[&str]) -> Result<Run, String> {
        let (program, pre) = base.split_first().ok_or("empty command")?;
        tracing::debug!(program = %program, args = ?args, "exec");
        let out = Command::new(program)
            .args(pre)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        Ok(Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    pub async fn docker(&self, args: &[&str]) -> Result<Run, String> {
        self.run(&self.docker, args).await
    }

    /// `compose -p P --project-directory D -f F… <args>`: the project exactly as it was started.
    pub async fn compose(&self, service: &Service, args: &[&str]) -> Result<Run, String> {
        let mut all: Vec<&str> = vec![
            "-p",
            &service.project,
            "--project-directory",
            &service.working_dir,
        ];
        for f in &service.config_files {
            all.push("-f");
            all.push(f);
        }
        all.extend_from_slice(args);
        self.run(&self.compose, &all).await
    }

    /// The compose containers (not one-off) with the given labels, inspected.
    pub async fn containers(
        &self,
        project: Option<&str>,
        service: &str,
    ) -> Result<Vec<Container>, String> {
        let service_filter = format!("label={LABEL_SERVICE}={service}");
        let project_filter = project.map(|p| format!("label={LABEL_PROJECT}={p}"));
        let mut args = vec![
            "ps",
            "-a",
            "--no-trunc",
            "--format",
            "{{.ID}}",
            "--filter",
            &service_filter,
        ];
        if let Some(p) = &project_filter {
            args.push("--filter");
            args.push(p);
        }
        let ps = self.docker(&args).await?;
        if !ps.ok {
            return Err(format!("docker ps failed: {}", ps.tail()));
        }
        let ids: Vec<&str> = ps
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec!["inspect", "--type", "container"];
        args.extend(ids.iter().copied());
        let inspect = self.docker(&args).await?;
        if !inspect.ok {
            return Err(format!("docker inspect failed: {}", inspect.tail()));
        }
        let all: Vec<Container> = serde_json::from_str(&inspect.stdout)
            .map_err(|e| format!("docker inspect answered unexpected JSON: {e}"))?;
        Ok(all
            .into_iter()
            .filter(|c| {
                c.label(LABEL_ONEOFF)
                    .is_none_or(|v| !v.eq_ignore_ascii_case("true"))
            })
            .collect())
    }

    /// Resolves `service` or `project/service` from the containers' compose labels.
    pub async fn resolve(&self, requested: &str) -> Result<Service, AgentError> {
        let (project, name) = match requested.split_once('/') {
            Some((p, s)) => (Some(p), s),
            None => (None, requested),
        };
        let containers = self
            .containers(project, name)
            .await
            .map_err(AgentError::Engine)?;
        let Some(first) = containers.first() else {
            return Err(AgentError::ServiceUnknown(requested.to_string()));
        };
        let project = first.label(LABEL_PROJECT).unwrap_or_default().to_string();
        if containers
            .iter()
            .any(|c| c.label(LABEL_PROJECT) != Some(project.as_str()))
        {
            return Err(AgentError::ServiceAmbiguous(requested.to_string()));
        }
        let working_dir = first
            .label(LABEL_WORKING_DIR)
            .unwrap_or_default()
            .to_string();
        // v1 joins the files with commas; v2 too.
        let config_files: Vec<String> = first
            .label(LABEL_CONFIG_FILES)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(String::from)
            .collect();
        if project.is_empty() || !working_dir.starts_with('/') || config_files.is_empty() {
            return Err(AgentError::Engine(format!(
                "the containers of `{requested}` lack compose's project labels; was it started by compose?"
            )));
        }
        Ok(Service {
            project,
            name: name.to_string(),
            working_dir,
            config_files,
            image_ref: first.config.image.clone(),
            image_id: first.image.clone(),
            containers: containers.iter().map(|c| c.id.clone()).collect(),
        })
    }

    /// The id of the image a reference points to locally.
    pub async fn image_id(&self, reference: &str) -> Result<String, String> {
        let run = self
            .docker(&["image", "inspect", "--format", "{{.Id}}", "--", reference])
            .await?;
        if !run.ok {
            return Err(format!("docker image inspect failed: {}", run.tail()));
        }
        Ok(run.stdout.trim().to_string())
    }
}
