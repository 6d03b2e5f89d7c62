//! Secrets that configuration names by reference (a call's bearer token or password, a deploy
//! target's signing secret), and the port that reads them: SSM Parameter Store on AWS
//! (`slipway_aws::ssm::SsmSecrets`), files under `slipway serve` (`slipway_calls::FileSecrets`).
//! Only the reference ever appears in logs, reports and errors.

use std::fmt;
use std::future::Future;

use secrecy::SecretString;

/// Where a secret lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An SSM parameter (a SecureString, decrypted when read): the Lambdas' secrets.
    Parameter(String),
    /// A file, its content without the trailing newline: `slipway serve`'s secrets.
    File(String),
}

/// `SSM parameter /slipway/x` or `secret file /etc/x`: how errors and logs name a secret.
impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Parameter(name) => write!(f, "SSM parameter {name}"),
            SecretRef::File(path) => write!(f, "secret file {path}"),
        }
    }
}

/// Why a secret could not be read. Names the reference, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The store did not give it: missing, denied, unreachable.
    #[error("{reference} could not be read: {reason}")]
    Unreadable { reference: String, reason: String },
    /// It exists and is empty: a secret of nothing signs nothing.
    #[error("{reference} is empty")]
    Empty { reference: String },
    /// This reader does not read that kind of reference (files on AWS, SSM under `slipway serve`).
    #[error("{reference} cannot be read here: {hint}")]
    Unsupported {
        reference: String,
        hint: &'static str,
    },
}

impl SecretError {
    pub fn code(&self) -> &'static str {
        match self {
            SecretError::Unreadable { .. } => "secret_unreadable",
            SecretError::Empty { .. } => "secret_empty",
            SecretError::Unsupported { .. } => "secret_unsupported",
        }
    }
}

/// Reads the secret a reference names, at the moment it is needed.
pub trait SecretReader: Sync {
    fn read(
        &self,
        secret: &SecretRef,
    ) -> impl Future<Output = Result<SecretString, SecretError>> + Send;
}
