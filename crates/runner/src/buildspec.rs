//! `buildspec.yml` (version 0.2): the model `slipway build` runs, read strictly — what it cannot
//! run as CodeBuild would (another shell, Secrets Manager, unknown phases) is refused by name.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The buildspec slipway ships (the spawner hands the same text to CodeBuild).
pub const SHIPPED_BUILDSPEC: &str = include_str!("../../../buildspec.yml");

/// The phases CodeBuild runs, in order.
pub const PHASES: [&str; 4] = ["install", "pre_build", "build", "post_build"];

/// A parsed buildspec (version 0.2).
#[derive(Debug, Clone)]
pub struct Buildspec {
    pub variables: Vec<(String, String)>,
    pub parameter_store: Vec<(String, String)>,
    pub exported_variables: Vec<String>,
    pub phases: Vec<Phase>,
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    pub on_failure: Option<OnFailure>,
    pub commands: Vec<String>,
    pub finally: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    Abort,
    Continue,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct SpecFile {
    version: serde_norway::Value,
    #[serde(default)]
    env: SpecEnv,
    #[serde(default)]
    phases: BTreeMap<String, SpecPhase>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct SpecEnv {
    shell: Option<String>,
    #[serde(default)]
    variables: BTreeMap<String, serde_norway::Value>,
    #[serde(default)]
    parameter_store: BTreeMap<String, String>,
    #[serde(default)]
    secrets_manager: BTreeMap<String, String>,
    #[serde(default)]
    exported_variables: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct SpecPhase {
    on_failure: Option<String>,
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    finally: Vec<String>,
}

/// Why a buildspec cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum BuildspecError {
    #[error("buildspec is not valid YAML for version 0.2: {0}")]
    Yaml(String),
    #[error("buildspec: {0}")]
    Unsupported(String),
}

fn is_env_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

impl Buildspec {
    pub fn parse(text: &str) -> Result<Self, BuildspecError> {
        let f: SpecFile =
            serde_norway::from_str(text).map_err(|e| BuildspecError::Yaml(e.to_string()))?;
        let version = match &f.version {
            serde_norway::Value::String(s) => s.clone(),
            serde_norway::Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        if version != "0.2" {
            return Err(BuildspecError::Unsupported(format!(
                "version must be 0.2 (found `{version}`)"
            )));
        }
        if let Some(shell) = &f.env.shell
            && shell != "bash"
        {
            return Err(BuildspecError::Unsupported(format!(
                "env.shell `{shell}`: slipway build runs bash"
            )));
        }
        if !f.env.secrets_manager.is_empty() {
            return Err(BuildspecError::Unsupported(
                "env.secrets-manager: use parameter-store".into(),
            ));
        }
        let mut variables = Vec::new();
        for (k, v) in f.env.variables {
            let v = match v {
                serde_norway::Value::String(s) => s,
                serde_norway::Value::Number(n) => n.to_string(),
                serde_norway::Value::Bool(b) => b.to_string(),
                serde_norway::Value::Null => String::new(),
                _ => {
                    return Err(BuildspecError::Unsupported(format!(
                        "env.variables.{k} must be a scalar"
                    )));
                }
            };
            variables.push((k, v));
        }
        for name in variables
            .iter()
            .map(|(k, _)| k)
            .chain(f.env.parameter_store.keys())
            .chain(f.env.exported_variables.iter())
        {
            if !is_env_name(name) {
                return Err(BuildspecError::Unsupported(format!(
                    "`{name}` is not an environment variable name"
                )));
            }
        }
        let mut phases = Vec::new();
        for name in f.phases.keys() {
            if !PHASES.contains(&name.as_str()) {
                return Err(BuildspecError::Unsupported(format!(
                    "unknown phase `{name}` (phases are install, pre_build, build, post_build)"
                )));
            }
        }
        let mut spec_phases = f.phases;
        for name in PHASES {
            if let Some(p) = spec_phases.remove(name) {
                let on_failure = match p.on_failure.as_deref() {
                    None => None,
                    Some("ABORT") => Some(OnFailure::Abort),
                    Some("CONTINUE") => Some(OnFailure::Continue),
                    Some(other) => {
                        return Err(BuildspecError::Unsupported(format!(
                            "phases.{name}.on-failure `{other}` (ABORT or CONTINUE)"
                        )));
                    }
                };
                phases.push(Phase {
                    name: name.to_string(),
                    on_failure,
                    commands: p.commands,
                    finally: p.finally,
                });
            }
        }
        Ok(Buildspec {
            variables,
            parameter_store: f.env.parameter_store.into_iter().collect(),
            exported_variables: f.env.exported_variables,
            phases,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_buildspec_parses() {
        let b = Buildspec::parse(SHIPPED_BUILDSPEC).unwrap();
        assert_eq!(b.exported_variables, vec!["SLIPWAY_DIGEST"]);
        let names: Vec<&str> = b.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, PHASES);
        assert!(!b.phases[3].finally.is_empty());
    }

    #[test]
    fn unsupported_buildspecs_are_refused() {
        assert!(Buildspec::parse("version: 0.1\nphases: {}\n").is_err());
        assert!(Buildspec::parse("version: 0.2\nphases:\n  deploy:\n    commands: [x]\n").is_err());
        assert!(
            Buildspec::parse(
                "version: 0.2\nphases:\n  build:\n    on-failure: RETRY\n    commands: [x]\n"
            )
            .is_err()
        );
        assert!(Buildspec::parse("version: 0.2\nenv:\n  variables:\n    'A B': x\n").is_err());
    }
}
