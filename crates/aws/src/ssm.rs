//! Parameters from SSM Parameter Store: the one reader every Lambda uses, for settings read once
//! at start (the webhook secrets, the GitHub token, the call targets) and for the secrets that
//! configuration names ([`SsmSecrets`]). SecureString values are decrypted by SSM and never
//! logged.

use aws_sdk_ssm::error::DisplayErrorContext;
use secrecy::SecretString;
use slipway_core::secrets::{SecretError, SecretReader, SecretRef};

#[derive(Debug, thiserror::Error)]
pub enum ParameterError {
    #[error("SSM parameter {name} could not be read: {reason}")]
    Read { name: String, reason: String },
    #[error("SSM parameter {name} has no value")]
    Empty { name: String },
}

impl ParameterError {
    pub fn code(&self) -> &'static str {
        match self {
            ParameterError::Read { .. } => "parameter_unreadable",
            ParameterError::Empty { .. } => "parameter_empty",
        }
    }
}

/// Reads one parameter, decrypted. The error names the parameter, never its value.
pub async fn get_parameter(
    client: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<secrecy::SecretString, ParameterError> {
    let out = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| ParameterError::Read {
            name: name.to_string(),
            reason: DisplayErrorContext(e).to_string(),
        })?;
    out.parameter
        .and_then(|p| p.value)
        .map(secrecy::SecretString::from)
        .ok_or_else(|| ParameterError::Empty {
            name: name.to_string(),
        })
}

/// Secrets named by configuration (call auth, deploy targets), read from SSM when they are needed.
///
/// A Lambda accepts only `parameter` references and refuses `file` ones with a message saying
/// so: its file system is the deployment package (read-only, shared by every invocation) and
/// `/tmp`, so a secret file would either be baked into the zip — a secret in an artifact — or
/// not exist. The same configuration names SSM parameters on AWS and files under
/// `slipway serve`, never both.
#[derive(Debug, Clone)]
pub struct SsmSecrets {
    client: aws_sdk_ssm::Client,
}

impl SsmSecrets {
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        Self { client }
    }
}

impl SecretReader for SsmSecrets {
    async fn read(&self, secret: &SecretRef) -> Result<SecretString, SecretError> {
        match secret {
            SecretRef::Parameter(name) => {
                get_parameter(&self.client, name)
                    .await
                    .map_err(|e| match e {
                        ParameterError::Read { reason, .. } => SecretError::Unreadable {
                            reference: secret.to_string(),
                            reason,
                        },
                        ParameterError::Empty { .. } => SecretError::Empty {
                            reference: secret.to_string(),
                        },
                    })
            }
            SecretRef::File(_) => Err(SecretError::Unsupported {
                reference: secret.to_string(),
                hint: "a Lambda reads secrets from SSM; name an SSM parameter",
            }),
        }
    }
}
