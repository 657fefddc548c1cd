//! The example consumer: logs each notification's type and id with the invocation's request
//! id. Replace the closure with the team's code (README, "Consuming the queue"); an error it
//! returns sends the message back to the queue, and to the dead-letter queue after
//! `maxReceiveCount` receives.

use nylas_webhook_consumer::{run, tokio, Error, LambdaEvent, Notification};
use serde_json::json;

#[tokio::main(flavor = "current_thread", crate = "nylas_webhook_consumer::tokio")]
async fn main() -> Result<(), Error> {
    run(|event: LambdaEvent<Notification>| async move {
        let notification = event.payload;
        let kind = notification.kind.map(|k| k.to_string());
        let line = json!({"level": "INFO", "message": "example handler",
            "nylas_id": notification.id, "nylas_type": kind,
            "request_id": event.context.request_id});
        println!("{line}");
        Ok::<(), Error>(())
    })
    .await
}
