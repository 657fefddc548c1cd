//! The yardstick for `make coldstart`: a hello-world Lambda function on the same runtime
//! (`lambda_http` over `lambda_runtime`, current-thread tokio), answering 200 to every request
//! and doing nothing else. Its start-up and per-invocation cost is the runtime's own.

use lambda_http::{service_fn, Body, Request, Response};
use std::convert::Infallible;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::run(service_fn(|_request: Request| async {
        Ok::<_, Infallible>(Response::new(Body::Empty))
    }))
    .await
}
