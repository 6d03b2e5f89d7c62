//! The one SSM reader of every Lambda against moto's Parameter Store: a SecureString comes back
//! decrypted; a missing parameter and a `file` reference are refused with an error that names
//! the reference and says what to do, never a value.

use aws_sdk_ssm::types::ParameterType;
use secrecy::ExposeSecret;
use slipway_aws::ssm::SsmSecrets;
use slipway_core::secrets::{SecretReader, SecretRef};

#[tokio::test]
async fn parameters_are_read_and_files_are_refused_on_aws() {
    let ssm = aws_sdk_ssm::Client::new(&slipway_testkit::moto::moto_config().await);
    let name = format!("/slipway-test/{}/token", slipway_testkit::unique(""));
    ssm.put_parameter()
        .name(&name)
        .value("s3cr3t-value")
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let secrets = SsmSecrets::new(ssm);

    let value = secrets
        .read(&SecretRef::Parameter(name.clone()))
        .await
        .unwrap();
    assert_eq!(value.expose_secret(), "s3cr3t-value");

    let missing = format!("{name}-missing");
    let err = secrets
        .read(&SecretRef::Parameter(missing.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "secret_unreadable");
    assert!(err.to_string().contains(&missing), "{err}");

    // A file on a Lambda is either part of the zip or gone: refused, whatever the path.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, "file-value\n").unwrap();
    let path = file.to_str().unwrap().to_string();
    let err = secrets
        .read(&SecretRef::File(path.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "secret_unsupported");
    let message = err.to_string();
    assert!(
        message.contains(&path) && message.contains("SSM parameter"),
        "{message}"
    );
    assert!(!message.contains("file-value"), "{message}");
}
