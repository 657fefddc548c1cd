//! A Nylas webhook receiver as the AWS examples would have a team write it: verify the
//! signature, echo the challenge, send each notification to SQS with `SendMessageBatch`.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use hmac::{Hmac, Mac};
use lambda_http::{run, service_fn, Body, Error, Request, RequestExt, Response};
use sha2::Sha256;

struct State {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    secret: String,
}

fn answer(status: u16, body: &str) -> Result<Response<Body>, Error> {
    Ok(Response::builder().status(status).body(body.into())?)
}

async fn handler(state: &State, event: Request) -> Result<Response<Body>, Error> {
    if event.method() == "GET" {
        let params = event.query_string_parameters();
        return match params.first("challenge") {
            Some(challenge) => answer(200, challenge),
            None => answer(400, "missing challenge"),
        };
    }
    let body = event.body().as_ref();
    let signature = event
        .headers()
        .get("x-nylas-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| hex::decode(v).ok());
    let mut mac = Hmac::<Sha256>::new_from_slice(state.secret.as_bytes())?;
    mac.update(body);
    if signature.is_none_or(|s| mac.verify_slice(&s).is_err()) {
        return answer(401, "invalid signature");
    }
    let payload: serde_json::Value = serde_json::from_slice(body)?;
    let notifications = match payload.get("deltas").and_then(|d| d.as_array()) {
        Some(deltas) => deltas.iter().map(|d| d.to_string()).collect(),
        None => vec![String::from_utf8_lossy(body).into_owned()],
    };
    for chunk in notifications.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, n)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(n)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sent = state
            .sqs
            .send_message_batch()
            .queue_url(&state.queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        match sent {
            Ok(output) if output.failed().is_empty() => {}
            Ok(_) | Err(_) => return answer(503, "queue failed"),
        }
    }
    tracing::info!(count = notifications.len(), "forwarded");
    answer(200, "ok")
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .init();
    let config = aws_config::load_from_env().await;
    let state = State {
        sqs: aws_sdk_sqs::Client::new(&config),
        queue_url: std::env::var("QUEUE_URL")?,
        secret: std::env::var("NYLAS_WEBHOOK_SECRET")?,
    };
    let state = &state;
    run(service_fn(move |event| handler(state, event))).await
}
