//! The SQS edge: [`Queue`] over `SendMessageBatch`.
//!
//! The client is built once, in `main`, and reused for every invocation. Its timeouts keep
//! a stalled connection from eating Nylas's 10 s: the handler's own budget
//! ([`crate::handler::QUEUE_BUDGET`]) is the outer bound.
//!
//! TLS trusts only the roots SQS's certificates are issued under (Amazon Trust Services,
//! <https://www.amazontrust.com/repository/>). Reading and parsing the system's whole store,
//! as the SDK does by default, was half the function's CPU time from start to first
//! response (`perf`, docs/performance.md). Setting `SSL_CERT_FILE` or `SSL_CERT_DIR` (for an
//! endpoint whose certificate another CA issued) trusts the system's store, or the one named.

use crate::config::Config;
use crate::message::{Message, ATTRIBUTE_DATA_TYPE};
use crate::queue::{Queue, QueueError};
use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::SharedHttpClient;
use aws_sdk_sqs::config::StalledStreamProtectionConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Region};
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use std::collections::HashSet;
use std::time::Duration;

/// An SQS queue, by URL.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }

    /// Builds the client from the configuration, with credentials from the environment
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), as Lambda sets
    /// them. Building it this way, rather than with aws-config's full default chain, skips
    /// the probing of profile files and metadata endpoints at every cold start.
    pub fn connect(config: &Config) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(1))
            .operation_attempt_timeout(Duration::from_secs(2))
            .operation_timeout(Duration::from_secs(5))
            .build();
        // Three attempts with short backoff: the whole budget is 6 s, and SQS errors are
        // brief. (The SDK's default first backoff is up to a second.)
        let retries = RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(50))
            .with_max_backoff(Duration::from_millis(500));
        let mut sqs = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(https_client(trust_store(config.system_roots)))
            .region(Region::new(config.region.clone()))
            .credentials_provider(EnvironmentVariableCredentialsProvider::new())
            .retry_config(retries)
            .timeout_config(timeouts)
            // The timeouts above already bound a stalled request; the SDK's own stall watch
            // adds a throughput monitor to every body, which cost CPU on every invocation.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
        if let Some(endpoint) = &config.sqs_endpoint {
            sqs = sqs.endpoint_url(endpoint);
        }
        Self::new(Client::from_conf(sqs.build()), config.queue_url.clone())
    }
}

/// Amazon Root CA 1 to 4 and Starfield Services Root CA G2, as the ca-certificates package
/// ships them (PEM).
const AMAZON_ROOTS: &[u8] = include_bytes!("aws-roots.pem");

/// Amazon's roots, or the system's when `system_roots` is set.
fn trust_store(system_roots: bool) -> TrustStore {
    if system_roots {
        TrustStore::default()
    } else {
        TrustStore::empty().with_pem_certificate(AMAZON_ROOTS)
    }
}

/// The SDK's own HTTPS client (hyper, rustls with aws-lc), trusting the roots in `trust`.
pub fn https_client(trust: TrustStore) -> SharedHttpClient {
    let context = TlsContext::builder().with_trust_store(trust).build();
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
    match context {
        Ok(context) => builder.tls_context(context).build_https(),
        // Building a context only stores its settings; should that change, keep the defaults.
        Err(_) => builder.build_https(),
    }
}

impl Queue for SqsQueue {
    async fn send_batch(&self, batch: &[&Message<'_>]) -> Result<Vec<usize>, QueueError> {
        let entries = batch
            .iter()
            .enumerate()
            .map(|(position, message)| entry(position, message))
            .collect::<Result<Vec<_>, _>>()?;
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|error| QueueError(DisplayErrorContext(&error).to_string()))?;
        // Whatever SQS did not list as successful is not in the queue, whether or not it
        // was listed as failed.
        let stored: HashSet<&str> = output.successful().iter().map(|s| s.id()).collect();
        Ok((0..batch.len())
            .filter(|position| !stored.contains(position.to_string().as_str()))
            .collect())
    }
}

/// One batch entry; its id is its position in the batch, which SQS echoes back.
fn entry(
    position: usize,
    message: &Message<'_>,
) -> Result<SendMessageBatchRequestEntry, QueueError> {
    let invalid = |error: aws_sdk_sqs::error::BuildError| QueueError(error.to_string());
    let mut entry = SendMessageBatchRequestEntry::builder()
        .id(position.to_string())
        .message_body(message.body.as_ref())
        .set_message_group_id(message.fifo.as_ref().map(|f| f.group_id.clone()))
        .set_message_deduplication_id(message.fifo.as_ref().map(|f| f.deduplication_id.clone()));
    for (name, value) in message.attributes.iter() {
        let value = MessageAttributeValue::builder()
            .data_type(ATTRIBUTE_DATA_TYPE)
            .string_value(value)
            .build()
            .map_err(invalid)?;
        entry = entry.message_attributes(name, value);
    }
    entry.build().map_err(invalid)
}
