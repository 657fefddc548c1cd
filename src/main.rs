//! The Lambda entry point: it only wires the pieces together.

use lambda_http::service_fn;
use nylas_webhook_sqs::message::QueueKind;
use nylas_webhook_sqs::{config::Config, handler::Receiver, logging, sqs::SqsQueue};
use std::convert::Infallible;
use std::process::ExitCode;

// A Lambda instance handles one invocation at a time: a current-thread runtime avoids the
// cross-thread wake-ups a multi-threaded one pays for on every request.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    logging::init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let kind = QueueKind::of_url(&config.queue_url);
    let queue = SqsQueue::connect(&config);
    let receiver = Receiver::new(config.verifier, queue, kind);
    let receiver = &receiver;
    let handler =
        service_fn(
            move |request| async move { Ok::<_, Infallible>(receiver.handle(request).await) },
        );
    match lambda_http::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}
