#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    slipway_listener::run().await
}
