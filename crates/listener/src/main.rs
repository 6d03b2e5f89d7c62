#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    slipway_listener::run().await
}
