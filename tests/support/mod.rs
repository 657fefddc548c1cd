//! The real parts the integration tests drive: a local SQS-compatible server (moto), the
//! Lambda Runtime API emulator (`cargo lambda watch --only-lambda-apis`) and the function
//! binary itself, each a child process that is stopped when its guard drops.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod proxy;

/// One test against the shared local server.
pub type Test = fn(&LocalSqs);

/// Each test by its function's name.
#[macro_export]
macro_rules! tests {
    ($($test:ident),* $(,)?) => {
        &[$((stringify!($test), $test as $crate::support::Test)),*]
    };
}

/// Runs `tests` (the `what` tests of this file) against one local server, each in its own
/// queue. They run under `make test` (`NYLAS_INTEGRATION=1`) and in CI (`CI=true`, where a
/// missing tool fails the run, naming it); a plain `cargo test` says how to run them.
pub fn run(what: &str, tests: &'static [(&'static str, Test)]) -> std::process::ExitCode {
    use libtest_mimic::{Arguments, Trial};
    let args = Arguments::from_args();
    if args.list {
        let trials = tests.iter().map(|(name, _)| Trial::test(*name, || Ok(())));
        return libtest_mimic::run(&args, trials.collect()).exit_code();
    }
    let wanted = |name: &str, value: &str| std::env::var(name).is_ok_and(|v| v == value);
    if !wanted("NYLAS_INTEGRATION", "1") && !wanted("CI", "true") {
        println!(
            "{what} tests not run: they need moto and cargo-lambda. `make test` installs \
             both into .venv and runs every test."
        );
        return std::process::ExitCode::SUCCESS;
    }
    let sqs = match LocalSqs::start() {
        Ok(sqs) => std::sync::Arc::new(sqs),
        Err(error) => {
            eprintln!("{what} tests cannot start: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let trials = tests.iter().map(|&(name, test)| {
        let sqs = std::sync::Arc::clone(&sqs);
        Trial::test(name, move || {
            test(&sqs);
            Ok(())
        })
    });
    libtest_mimic::run(&args, trials.collect()).exit_code()
}

/// The function's name in the emulator: the binary's name, as cargo-lambda requires.
pub const FUNCTION: &str = "nylas-webhook-sqs";
/// The secret the sample events in `events/` are signed with.
pub const SAMPLE_SECRET: &str = "nylas-sample-secret";
const REGION: &str = "us-east-1";

/// Writes a self-signed certificate for 127.0.0.1 and its key (argv 1 and 2), with the
/// `cryptography` package that moto depends on.
const SELF_SIGNED: &str = r#"
import datetime, ipaddress, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
now = datetime.datetime.now(datetime.timezone.utc)
certificate = (
    x509.CertificateBuilder()
    .subject_name(name)
    .issuer_name(name)
    .public_key(key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(minutes=5))
    .not_valid_after(now + datetime.timedelta(days=1))
    .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    .sign(key, hashes.SHA256())
)
open(sys.argv[1], "wb").write(certificate.public_bytes(serialization.Encoding.PEM))
open(sys.argv[2], "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
"#;

pub fn project_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Finds a tool in the project's virtualenv, then on PATH. A missing tool fails the run
/// with its name: these tests are never skipped.
pub fn tool(name: &str) -> Result<PathBuf, String> {
    let venv = project_dir().join(".venv/bin").join(name);
    if venv.is_file() {
        return Ok(venv);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            format!(
                "{name} is not installed (looked in .venv/bin and on PATH): run `make test`, \
                 which installs it from requirements-dev.txt"
            )
        })
}

/// A child process, killed when dropped. It also dies with the thread that started it.
pub struct Service {
    name: String,
    child: Child,
}

impl Service {
    pub fn spawn(name: &str, command: &mut Command) -> Result<Self, String> {
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Self { name: name.to_owned(), child })
    }

    /// Waits until `port` accepts connections, or the process exits.
    pub fn wait_for_port(&mut self, port: u16, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{} exited before listening: {status}", self.name));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("{} did not listen on port {port} within {timeout:?}", self.name))
    }
}

impl Service {
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("the loopback interface has a free port")
}

/// One SQS message as a consumer receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    /// FIFO queues only.
    pub group_id: Option<String>,
}

/// What an AWS client of the local server needs: its endpoint, a region, test credentials.
pub fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test", "test", None, None, "tests",
        )))
        .endpoint_url(endpoint)
        .build()
}

/// The local SQS-compatible server, shared by every test; each test makes its own queue.
pub struct LocalSqs {
    _server: Service,
    pub endpoint: String,
    client: aws_sdk_sqs::Client,
    secrets: aws_sdk_secretsmanager::Client,
    /// For clients of other services of the same server (tests/consumer.rs: DynamoDB).
    #[allow(dead_code)]
    pub config: aws_config::SdkConfig,
    runtime: tokio::runtime::Runtime,
    queues: AtomicUsize,
}

impl LocalSqs {
    /// Starts moto over plain HTTP, as `make dev` runs it.
    pub fn start() -> Result<Self, String> {
        Self::serve(None)
    }

    /// Starts moto over HTTPS with a self-signed certificate for 127.0.0.1, which no public
    /// CA issued: the certificate (PEM) is at the returned path. The test client trusts it.
    pub fn start_tls() -> Result<(Self, PathBuf), String> {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-{}", free_port()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {dir:?}: {e}"))?;
        let (certificate, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let made = Command::new(tool("python")?)
            .arg("-c")
            .arg(SELF_SIGNED)
            .args([&certificate, &key])
            .status()
            .map_err(|e| format!("cannot run python: {e}"))?;
        if !made.success() {
            return Err(format!("making a certificate failed: {made}"));
        }
        Ok((Self::serve(Some((&certificate, &key)))?, certificate))
    }

    fn serve(tls: Option<(&Path, &Path)>) -> Result<Self, String> {
        let port = free_port();
        let mut command = Command::new(tool("moto_server")?);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        if let Some((certificate, key)) = tls {
            command.arg("-c").arg(certificate).arg("-k").arg(key);
        }
        let mut server =
            Service::spawn("moto_server", command.stdout(Stdio::null()).stderr(Stdio::null()))?;
        server.wait_for_port(port, Duration::from_secs(60))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = format!("{scheme}://127.0.0.1:{port}");
        let mut config = sdk_config(&endpoint).into_builder();
        if let Some((certificate, _)) = tls {
            let pem = std::fs::read(certificate).map_err(|e| format!("{certificate:?}: {e}"))?;
            let trust = TrustStore::empty().with_pem_certificate(pem);
            let context = TlsContext::builder().with_trust_store(trust).build();
            let client = aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(context.map_err(|e| format!("a TLS context: {e}"))?)
                .build_https();
            config = config.http_client(client);
        }
        let config = config.build();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
        Ok(Self {
            _server: server,
            endpoint,
            client: aws_sdk_sqs::Client::new(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            config,
            runtime,
            queues: AtomicUsize::new(0),
        })
    }

    /// Creates a queue of its own for one test.
    pub fn create_queue(&self) -> String {
        self.create("")
    }

    /// Creates a FIFO queue of its own for one test.
    pub fn create_fifo_queue(&self) -> String {
        self.create(".fifo")
    }

    fn create(&self, suffix: &str) -> String {
        let number = self.queues.fetch_add(1, Ordering::Relaxed);
        let mut request = self.client.create_queue().queue_name(format!("it-{number}{suffix}"));
        if suffix == ".fifo" {
            request = request.attributes(QueueAttributeName::FifoQueue, "true");
        }
        let created = self.runtime.block_on(request.send());
        let created = created.expect("the local SQS server creates queues");
        created.queue_url().expect("CreateQueue returns a URL").to_owned()
    }

    /// An archive of its own for one test, as template.yaml makes it: an S3 bucket, and a
    /// Firehose stream that delivers to it under `notifications/`. Returns (bucket, stream).
    #[allow(dead_code)]
    pub fn create_archive(&self) -> (String, String) {
        static ARCHIVES: AtomicUsize = AtomicUsize::new(0);
        let number = ARCHIVES.fetch_add(1, Ordering::Relaxed);
        let (bucket, stream) = (format!("it-archive-{number}"), format!("it-archive-{number}"));
        let s3 = aws_sdk_s3::Client::new(&self.config);
        let made = self.runtime.block_on(s3.create_bucket().bucket(&bucket).send());
        made.expect("moto creates buckets");
        let destination = aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
            .bucket_arn(format!("arn:aws:s3:::{bucket}"))
            .role_arn("arn:aws:iam::123456789012:role/firehose")
            .prefix("notifications/")
            .build()
            .expect("a destination");
        let firehose = aws_sdk_firehose::Client::new(&self.config);
        let create = firehose
            .create_delivery_stream()
            .delivery_stream_name(&stream)
            .extended_s3_destination_configuration(destination);
        self.runtime.block_on(create.send()).expect("moto creates delivery streams");
        (bucket, stream)
    }

    /// Stores a new secret in Secrets Manager; returns its ARN.
    pub fn create_secret(&self, value: &str) -> String {
        static SECRETS: AtomicUsize = AtomicUsize::new(0);
        let name = format!("it-secret-{}", SECRETS.fetch_add(1, Ordering::Relaxed));
        let request = self.secrets.create_secret().name(name).secret_string(value);
        let created = self.runtime.block_on(request.send());
        created.expect("moto creates secrets").arn().expect("an ARN").to_owned()
    }

    /// Stores `value` as the secret's new current version, as `make secret` does: the
    /// current one becomes `AWSPREVIOUS`.
    pub fn put_secret(&self, arn: &str, value: &str) {
        let request = self.secrets.put_secret_value().secret_id(arn).secret_string(value);
        self.runtime.block_on(request.send()).expect("moto stores the secret");
    }

    /// Deletes the secret, as an operator does after a leak: at once (`force`), or with
    /// Secrets Manager's recovery window (the secret is then "marked for deletion").
    #[allow(dead_code)]
    pub fn delete_secret(&self, arn: &str, force: bool) {
        let request = self.secrets.delete_secret().secret_id(arn);
        let request = match force {
            true => request.force_delete_without_recovery(true),
            false => request.recovery_window_in_days(7),
        };
        self.runtime.block_on(request.send()).expect("moto deletes the secret");
    }

    /// A queue URL of the right form for a queue that does not exist.
    pub fn missing_queue_url(&self) -> String {
        format!("{}/123456789012/no-such-queue", self.endpoint)
    }

    /// Takes every message now in the queue, in the order SQS hands them out.
    pub fn receive_all(&self, queue_url: &str) -> Vec<Received> {
        let mut received = Vec::new();
        loop {
            let request = self
                .client
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
                .visibility_timeout(300);
            let output = self.runtime.block_on(request.send());
            let output = output.expect("the local SQS server answers ReceiveMessage");
            let messages = output.messages();
            if messages.is_empty() {
                return received;
            }
            // Deleted, so that a FIFO group's next messages can be received.
            let entries = messages.iter().enumerate().map(|(i, message)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .build()
                    .expect("an id and a receipt handle")
            });
            let delete = self
                .client
                .delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries.collect()));
            self.runtime.block_on(delete.send()).expect("the local SQS server deletes messages");
            received.extend(messages.iter().map(|message| {
                Received {
                    body: message.body().unwrap_or_default().to_owned(),
                    attributes: message
                        .message_attributes()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_owned()))
                        .collect(),
                    group_id: message
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                        .cloned(),
                }
            }));
        }
    }
}

/// An HTTP answer from the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: Option<String>,
}

/// The function running under the Lambda Runtime API emulator, with its own queue.
pub struct Stack<'a> {
    sqs: &'a LocalSqs,
    pub queue_url: String,
    port: u16,
    logs: Vec<PathBuf>,
    agent: ureq::Agent,
    functions: Vec<Service>,
    _emulator: Service,
}

impl<'a> Stack<'a> {
    /// Starts the emulator and the function, forwarding to a new queue.
    pub fn start(sqs: &'a LocalSqs) -> Self {
        Self::forwarding_to(sqs, sqs.create_queue())
    }

    /// Starts the emulator and the function, forwarding to `queue_url`.
    pub fn forwarding_to(sqs: &'a LocalSqs, queue_url: String) -> Self {
        Self::through(sqs, queue_url, &sqs.endpoint, 1)
    }

    /// Starts the emulator and `instances` function processes, forwarding to `queue_url`
    /// with SQS requests sent to `sqs_endpoint` (a fault-injecting proxy in front of `sqs`).
    /// Each instance takes one invocation at a time, as on Lambda.
    pub fn through(
        sqs: &'a LocalSqs,
        queue_url: String,
        sqs_endpoint: &str,
        instances: usize,
    ) -> Self {
        Self::launch(sqs, queue_url, sqs_endpoint, instances, &[])
    }

    /// Starts the emulator and the function, forwarding to `queue_url` with `SSL_CERT_FILE`
    /// naming `certificate`.
    pub fn trusting(sqs: &'a LocalSqs, queue_url: String, certificate: &Path) -> Self {
        let trust = [("SSL_CERT_FILE", certificate.display().to_string())];
        Self::launch(sqs, queue_url, &sqs.endpoint, 1, &trust)
    }

    /// Starts the emulator and the function, forwarding to a new queue, with these settings
    /// over [`function_env`]'s (an empty value unsets one).
    pub fn with_env(sqs: &'a LocalSqs, env: &[(&str, &str)]) -> Self {
        let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
        Self::launch(sqs, sqs.create_queue(), &sqs.endpoint, 1, &env)
    }

    /// Starts the emulator and the function, reading its secret from Secrets Manager (moto).
    pub fn with_secret(sqs: &'a LocalSqs, secret_arn: &str) -> Self {
        Self::with_env(
            sqs,
            &[("NYLAS_WEBHOOK_SECRET", ""), ("NYLAS_WEBHOOK_SECRET_ARN", secret_arn)],
        )
    }

    fn launch(
        sqs: &'a LocalSqs,
        queue_url: String,
        sqs_endpoint: &str,
        instances: usize,
        extra_env: &[(&str, String)],
    ) -> Self {
        let port = free_port();
        let mut emulator = Service::spawn(
            "cargo lambda watch",
            Command::new(tool("cargo-lambda").expect("cargo-lambda is installed"))
                .args(["lambda", "watch", "--only-lambda-apis"])
                .args(["--invoke-address", "127.0.0.1"])
                .args(["--invoke-port", &port.to_string()])
                .args(["--concurrency", &instances.to_string()])
                .current_dir(project_dir())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("the emulator starts");
        emulator.wait_for_port(port, Duration::from_secs(30)).expect("the emulator listens");
        let mut logs = Vec::new();
        let mut functions = Vec::new();
        for instance in 0..instances {
            let log = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("function-{port}-{instance}.log"));
            let log_file = std::fs::File::create(&log).expect("the target dir is writable");
            let stderr = log_file.try_clone().expect("a file handle clones");
            let function = Service::spawn(
                FUNCTION,
                Command::new(env!("CARGO_BIN_EXE_nylas-webhook-sqs"))
                    .env_clear()
                    .envs(function_env(&sqs.endpoint, sqs_endpoint, port))
                    .env("QUEUE_URL", &queue_url)
                    .envs(extra_env.iter().cloned())
                    .stdout(log_file)
                    .stderr(stderr),
            )
            .expect("the function starts");
            logs.push(log);
            functions.push(function);
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Self { sqs, queue_url, port, logs, agent, functions, _emulator: emulator }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}/lambda-url/{FUNCTION}{path_and_query}", self.port)
    }

    pub fn get(&self, path_and_query: &str) -> Reply {
        let response = self.agent.get(self.url(path_and_query)).call();
        reply(response.expect("the emulator answers"))
    }

    /// Sends `body` with these headers, through the emulator's function URL.
    pub fn send(&self, method: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut request = ureq::http::Request::builder().method(method).uri(self.url("/webhook"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.to_vec()).expect("a valid request");
        reply(self.agent.run(request).expect("the emulator answers"))
    }

    /// Invokes the function with a sample API Gateway event from `events/`, as
    /// `make invoke EVENT=...` does.
    pub fn invoke(&self, event: &str) -> Reply {
        self.invoke_file(&project_dir().join("events").join(event))
    }

    /// Invokes the function with an API Gateway event built by the test: the way to send
    /// bodies (gzip, binary) that the emulator's HTTP side cannot carry.
    pub fn invoke_event(&self, event: &serde_json::Value) -> Reply {
        self.invoke_file(&self.event_file(event))
    }

    /// Writes `event` to a file of its own for `cargo lambda invoke --data-file`.
    fn event_file(&self, event: &serde_json::Value) -> PathBuf {
        static EVENTS: AtomicUsize = AtomicUsize::new(0);
        let number = EVENTS.fetch_add(1, Ordering::Relaxed);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("event-{number}.json"));
        std::fs::write(&path, event.to_string()).expect("the target dir is writable");
        path
    }

    fn invoke_file(&self, event: &Path) -> Reply {
        let output = self.invoke_output(event);
        assert!(
            output.status.success(),
            "cargo lambda invoke {} failed: {}",
            event.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let response: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the invoke output is JSON");
        let header = |name: &str| response["headers"][name].as_str().map(str::to_owned);
        Reply {
            status: response["statusCode"].as_u64().expect("a status code") as u16,
            body: response["body"].as_str().unwrap_or_default().to_owned(),
            content_type: header("content-type"),
        }
    }

    /// Runs `cargo lambda invoke`, which waits as long as no function asks for the event:
    /// past a minute the function is taken to be gone.
    fn invoke_output(&self, event: &Path) -> std::process::Output {
        let mut invoke = Command::new(tool("cargo-lambda").expect("cargo-lambda is installed"))
            .args(["lambda", "invoke", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &self.port.to_string(), "--data-file"])
            .arg(event)
            .arg(FUNCTION)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cargo lambda invoke runs");
        let deadline = Instant::now() + Duration::from_secs(60);
        while invoke.try_wait().expect("cargo lambda invoke runs").is_none() {
            if Instant::now() > deadline {
                let _ = invoke.kill();
                panic!("no answer to {} within a minute", event.display());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        invoke.wait_with_output().expect("cargo lambda invoke runs")
    }

    /// Whether every function process started for this stack is still running.
    pub fn functions_running(&mut self) -> bool {
        self.functions.iter_mut().all(Service::is_running)
    }

    /// Everything the function has put in its queue so far.
    pub fn received(&self) -> Vec<Received> {
        self.sqs.receive_all(&self.queue_url)
    }

    /// What the function has logged so far.
    pub fn logs(&self) -> String {
        let logs = self.logs.iter().map(std::fs::read_to_string);
        logs.collect::<Result<String, _>>().unwrap_or_default()
    }
}

/// The environment Lambda gives the function, pointed at the emulator and the local SQS (and
/// Secrets Manager, on the same moto server).
fn function_env(moto: &str, sqs_endpoint: &str, emulator_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("NYLAS_WEBHOOK_SECRET", SAMPLE_SECRET.to_owned()),
        ("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{emulator_port}/.rt/{FUNCTION}")),
        ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "1".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_ENDPOINT_URL_SQS", sqs_endpoint.to_owned()),
        ("AWS_ENDPOINT_URL", moto.to_owned()),
    ]
}

fn reply(mut response: ureq::http::Response<ureq::Body>) -> Reply {
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.body_mut().read_to_string().expect("a text body");
    Reply { status: response.status().as_u16(), body, content_type }
}
