//! Where `PARAMETER_STORE` values come from on one machine: a file of `parameter-name=value`
//! lines, else `SLIPWAY_SECRET_<NAME>` variables. Values never appear in a message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why the secrets file cannot be used. Its values are never part of a message.
#[derive(Debug, thiserror::Error)]
pub enum SecretsFileError {
    #[error("cannot read the secrets file {path}: {reason}", path = path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("secrets file {path} line {line}: expected `parameter-name=value`", path = path.display())]
    Malformed { path: PathBuf, line: usize },
}

impl SecretsFileError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreadable { .. } => "secrets_file_unreadable",
            Self::Malformed { .. } => "secrets_file_malformed",
        }
    }
}

/// Where `PARAMETER_STORE` values come from on one machine.
#[derive(Debug, Clone, Default)]
pub struct SecretSource {
    file: BTreeMap<String, String>,
}

impl SecretSource {
    /// Reads `parameter-name=value` lines (blank lines and `#` comments skipped).
    pub fn load(path: Option<&Path>) -> Result<Self, SecretsFileError> {
        let mut file = BTreeMap::new();
        if let Some(path) = path {
            let text = std::fs::read_to_string(path).map_err(|e| SecretsFileError::Unreadable {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim_end_matches('\r');
                if line.trim().is_empty() || line.trim_start().starts_with('#') {
                    continue;
                }
                let (k, v) = line
                    .split_once('=')
                    .ok_or_else(|| SecretsFileError::Malformed {
                        path: path.to_path_buf(),
                        line: n + 1,
                    })?;
                file.insert(k.trim().to_string(), v.to_string());
            }
        }
        Ok(SecretSource { file })
    }

    /// Values given by the caller (the CodeBuild endpoint of the AWS bench resolves them from
    /// Parameter Store, as CodeBuild does, before the build runs).
    pub fn from_values(values: BTreeMap<String, String>) -> Self {
        SecretSource { file: values }
    }

    /// The environment variable a parameter is read from when the file does not have it.
    pub fn env_name(parameter: &str) -> String {
        let mut s = String::from("SLIPWAY_SECRET_");
        s.extend(parameter.trim_start_matches('/').chars().map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        }));
        s
    }

    pub fn resolve(&self, parameter: &str) -> Option<String> {
        self.file
            .get(parameter)
            .cloned()
            .or_else(|| std::env::var(Self::env_name(parameter)).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_env_names() {
        assert_eq!(
            SecretSource::env_name("/slipway/registry/127.0.0.1_5056/t/password"),
            "SLIPWAY_SECRET_SLIPWAY_REGISTRY_127_0_0_1_5056_T_PASSWORD"
        );
    }
}
