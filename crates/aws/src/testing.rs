//! For tests only (feature `testing`): the SDK configuration for the moto server that
//! `tests/services.sh start` runs. It fails loudly when the server is not there, so a green run
//! always means the real API was exercised.

/// The moto server's URL, from `SLIPWAY_TEST_MOTO_URL`.
pub fn moto_url() -> String {
    std::env::var("SLIPWAY_TEST_MOTO_URL").expect(
        "SLIPWAY_TEST_MOTO_URL is not set: start the services with `source tests/services.sh start`",
    )
}

/// SDK configuration pointing every client at the moto server.
pub async fn moto_config() -> aws_config::SdkConfig {
    let url = moto_url();
    let probe = std::net::TcpStream::connect(url.trim_start_matches("http://"));
    assert!(
        probe.is_ok(),
        "moto server at {url} is unreachable: {probe:?}"
    );
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
}
