//! The example consumer: logs each notification's type and id. Replace the closure with the
//! team's code (README, "Consuming the queue"); an error it returns sends the message back to
//! the queue, and to the dead-letter queue after `maxReceiveCount` receives.

use nylas_webhook_consumer::{run, Notification};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    run(|notification: Notification| async move {
        let kind = notification.kind.map(|k| k.to_string());
        let line = json!({"level": "INFO", "message": "example handler",
            "nylas_id": notification.id, "nylas_type": kind});
        println!("{line}");
        Ok::<(), std::convert::Infallible>(())
    })
    .await
}
