//! Secrets that configuration names by reference (a call's bearer token or password, a deploy
//! target's signing secret), and the port that reads them: SSM Parameter Store on AWS
//! (`slipway_aws::ssm::SsmSecrets`), files under `slipway serve` (`slipway_calls::FileSecrets`).
//! Only the reference ever appears in logs, reports and errors.

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

/// Reads the secret a reference names, at the moment it is needed.
pub trait SecretReader: Sync {
    fn read(&self, secret: &SecretRef)
    -> impl Future<Output = Result<SecretString, String>> + Send;
}
