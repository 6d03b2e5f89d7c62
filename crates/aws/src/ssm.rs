//! Parameters from SSM Parameter Store, read once at start. SecureString values are decrypted
//! by SSM and never logged.

use aws_sdk_ssm::error::DisplayErrorContext;

#[derive(Debug, thiserror::Error)]
pub enum ParameterError {
    #[error("SSM parameter {name} could not be read: {reason}")]
    Read { name: String, reason: String },
    #[error("SSM parameter {name} has no value")]
    Empty { name: String },
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
