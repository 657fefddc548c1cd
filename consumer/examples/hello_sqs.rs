//! The yardstick for `make coldstart-consumer`: a hello-world SQS-triggered function on the
//! same runtime (`lambda_runtime`, current-thread tokio) that reports no failure and does
//! nothing else. Its start-up and per-invocation cost is the runtime's own.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(SqsBatchResponse::default())
    }))
    .await
}
