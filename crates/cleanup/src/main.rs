#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    slipway_cleanup::run().await
}
