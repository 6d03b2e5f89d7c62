#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    slipway_tasks::run().await
}
