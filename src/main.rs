//! The Lambda entry point: it reads the configuration, builds the AWS clients once and runs.

use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use lambda_http::tower::ServiceExt;
use lambda_http::{lambda_runtime, service_fn, Adapter, LambdaEvent};
use nylas_webhook_sqs::{
    init_logging, Archive, Config, Event, Receiver, SecretSource, Secrets, SqsQueue, SENDER,
};
use std::convert::Infallible;
use std::process::ExitCode;
use std::time::Duration;

// A panic in a request must unwind: lambda_runtime fails that invocation alone, and the
// instance keeps serving instead of dying.
#[cfg(panic = "abort")]
compile_error!("build with panic = \"unwind\", Cargo's default: see src/main.rs");

// A Lambda instance handles one invocation at a time: a current-thread runtime avoids the
// cross-thread wake-ups a multi-threaded one pays for on every request.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    init_logging();
    let receiver = match Config::from_env() {
        Ok(config) => {
            let aws = aws_settings().load().await;
            let secrets = match config.secrets {
                SecretSource::Stored { arn, previous_ttl, keep } => {
                    let client = aws_sdk_secretsmanager::Client::new(&aws);
                    Secrets::stored(client, arn, previous_ttl, keep)
                }
                SecretSource::Fixed { current, previous } => {
                    Secrets::fixed(&current, previous.as_deref())
                }
            };
            // With the archive off, no client is built: no init time paid for it.
            let archive = (config.archive_stream)
                .map(|stream| Archive::new(aws_sdk_firehose::Client::new(&aws), stream));
            let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), config.queue_url)
                .with_archive(archive);
            Receiver::new(SENDER, secrets, queue)
        }
        Err(error) => {
            tracing::error!(
                %error,
                "not configured: the challenge is answered, and every POST gets 503 (Nylas \
                 retries) until the setting is fixed"
            );
            Receiver::not_configured(SENDER, error)
        }
    };
    let receiver = &receiver;
    let handle = move |request| async move { Ok::<_, Infallible>(receiver.handle(request).await) };
    // lambda_http::run, with the event repaired while it is read (src/event.rs).
    let adapter = Adapter::from(service_fn(handle))
        .map_request(|event: LambdaEvent<Event>| LambdaEvent::new(event.payload.0, event.context));
    match lambda_runtime::run(adapter).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}

/// Longest an SQS or Secrets Manager call may take, retries included: the worst answer time
/// while SQS is down, which template.yaml's throttling rule is sized on.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The AWS clients' settings: aws-config's defaults, with timeouts and retries that fit
/// Nylas's 10 s.
fn aws_settings() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        // A stalled SQS must not hold an instance: a failing call ends within 2 s, and the
        // breaker then answers at once (docs/operations.md, "Capacity"). SQS answers in tens
        // of milliseconds; handler::QUEUE_BUDGET bounds a request of many calls.
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(1))
                .operation_timeout(CALL_TIMEOUT)
                .build(),
        )
        // The SDK's default first backoff (up to a second) would spend the budget waiting.
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_millis(500)),
        )
        // The timeouts bound a stall; the monitor would add a throughput check to every body.
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
}
