//! A fault-injecting HTTP proxy in front of the local SQS server: it lets the integration
//! tests see what the function does when SQS hangs, fails, or refuses batch entries.
//!
//! It speaks just enough HTTP/1.1 for the AWS SDK's requests (Content-Length bodies,
//! keep-alive) and SQS's JSON protocol (`X-Amz-Target: AmazonSQS.SendMessageBatch`).

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the proxy does to each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Reads requests and never answers.
    Hang,
    /// Answers every request with HTTP 500.
    ServerError,
    /// Keeps the first entry of every SendMessageBatch from SQS and reports it failed.
    FailFirstEntryAlways,
    /// The same, on the first SendMessageBatch call only.
    FailFirstEntryOnce,
    /// An outage of every SendMessageBatch call (HTTP 500) for the first 400 ms of every
    /// 2 s; outside it, every third call has its first entry refused.
    Flaky,
    /// Refuses the first entry of every SendMessageBatch as the sender's fault.
    SenderFaultFirstEntry,
    /// Holds every SendMessageBatch this long, then passes it on.
    Delay(Duration),
    /// Reads every request and never answers it, for this long after the proxy starts (an
    /// outage); passes requests on after that.
    DownFor(Duration),
    /// Passes requests on one at a time: DynamoDB applies a conditional write atomically, and
    /// moto, which serves requests side by side, does not.
    OneAtATime,
}

/// Held while a `Fault::OneAtATime` request is at the server.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The proxy; it stops accepting when dropped.
pub struct FaultyProxy {
    pub endpoint: String,
    /// When it started: `Fault::DownFor` counts from here.
    pub started: Instant,
    batches: Arc<AtomicUsize>,
    stopped: Arc<AtomicBool>,
}

impl FaultyProxy {
    pub fn start(upstream: &str, fault: Fault) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("a free loopback port");
        let endpoint = format!("http://{}", listener.local_addr().expect("bound"));
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let batches = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(AtomicBool::new(false));
        let (batches_seen, stop) = (Arc::clone(&batches), Arc::clone(&stopped));
        let started = Instant::now();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (upstream, batches) = (upstream.clone(), Arc::clone(&batches_seen));
                std::thread::spawn(move || serve(stream, &upstream, fault, &batches, started));
            }
        });
        Self { endpoint, started, batches, stopped }
    }

    /// SendMessageBatch calls seen so far.
    pub fn batches(&self) -> usize {
        self.batches.load(Ordering::Relaxed)
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

struct HttpMessage {
    head: Vec<String>,
    body: Vec<u8>,
}

impl HttpMessage {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut text = String::new();
        text.push_str(&self.head[0]);
        text.push_str("\r\n");
        for line in &self.head[1..] {
            let name = line.split(':').next().unwrap_or_default().trim();
            let framing = ["content-length", "transfer-encoding", "connection"];
            if !framing.iter().any(|f| name.eq_ignore_ascii_case(f)) {
                text.push_str(line);
                text.push_str("\r\n");
            }
        }
        text.push_str(&format!("content-length: {}\r\n\r\n", self.body.len()));
        out.write_all(text.as_bytes())?;
        out.write_all(&self.body)?;
        out.flush()
    }
}

/// Reads one message with a Content-Length body (or, for responses, a body up to EOF).
fn read_message(reader: &mut impl BufRead, until_eof: bool) -> Option<HttpMessage> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let mut message = HttpMessage { head, body: Vec::new() };
    match message.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(length) => {
            message.body.resize(length, 0);
            reader.read_exact(&mut message.body).ok()?;
        }
        None if until_eof => {
            reader.read_to_end(&mut message.body).ok()?;
        }
        None => {}
    }
    Some(message)
}

/// Whether `Fault::Flaky` is in one of its outages.
fn in_outage(started: Instant) -> bool {
    started.elapsed().as_millis() % 2_000 < 400
}

fn serve(stream: TcpStream, upstream: &str, fault: Fault, batches: &AtomicUsize, started: Instant) {
    let mut writer = stream.try_clone().expect("a socket clones");
    let mut reader = BufReader::new(stream);
    while let Some(mut request) = read_message(&mut reader, false) {
        let is_batch = request.header("x-amz-target") == Some("AmazonSQS.SendMessageBatch");
        let batch_number = if is_batch { batches.fetch_add(1, Ordering::Relaxed) } else { 0 };
        let withhold = is_batch
            && match fault {
                Fault::FailFirstEntryAlways | Fault::SenderFaultFirstEntry => true,
                Fault::FailFirstEntryOnce => batch_number == 0,
                Fault::Flaky => batch_number % 3 == 2,
                Fault::Hang
                | Fault::ServerError
                | Fault::Delay(_)
                | Fault::DownFor(_)
                | Fault::OneAtATime => false,
            };
        let response = match fault {
            Fault::Hang => {
                std::thread::sleep(Duration::from_secs(60));
                return;
            }
            Fault::DownFor(outage) if started.elapsed() < outage => {
                std::thread::sleep(outage.saturating_sub(started.elapsed()));
                return;
            }
            Fault::ServerError => server_error(),
            Fault::Flaky if is_batch && in_outage(started) => server_error(),
            _ => {
                if let (Fault::Delay(delay), true) = (fault, is_batch) {
                    std::thread::sleep(delay);
                }
                let withheld = if withhold { withhold_first_entry(&mut request) } else { None };
                let response = match &withheld {
                    // SQS refuses an empty batch: a lone entry is failed without a call.
                    Some(Withheld { others: false, .. }) => {
                        Some(json_response("HTTP/1.1 200 OK", br#"{"Successful":[]}"#))
                    }
                    _ if fault == Fault::OneAtATime => {
                        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
                        forward(&request, upstream)
                    }
                    _ => forward(&request, upstream),
                };
                let Some(mut response) = response else {
                    return;
                };
                if let Some(withheld) = withheld {
                    let sender_fault = fault == Fault::SenderFaultFirstEntry;
                    report_failed(&mut response, &withheld.id, sender_fault);
                }
                response
            }
        };
        if response.write_to(&mut writer).is_err() {
            return;
        }
    }
}

fn server_error() -> HttpMessage {
    json_response(
        "HTTP/1.1 500 Internal Server Error",
        br#"{"__type":"InternalError","message":"injected by the test proxy"}"#,
    )
}

/// An answer in SQS's JSON protocol.
fn json_response(status_line: &str, body: &[u8]) -> HttpMessage {
    HttpMessage {
        head: vec![status_line.to_owned(), "content-type: application/x-amz-json-1.0".to_owned()],
        body: body.to_vec(),
    }
}

fn forward(request: &HttpMessage, upstream: &str) -> Option<HttpMessage> {
    let mut connection = TcpStream::connect(upstream).ok()?;
    let mut request_head = request.head.clone();
    request_head.push("connection: close".to_owned());
    HttpMessage { head: request_head, body: request.body.clone() }
        .write_to(&mut connection)
        .ok()?;
    let mut response = read_message(&mut BufReader::new(connection), true)?;
    // moto answers in HTTP/1.0; the SDK keeps its connection alive in 1.1.
    response.head[0] = response.head[0].replacen("HTTP/1.0", "HTTP/1.1", 1);
    Some(response)
}

/// An entry kept back from SQS.
struct Withheld {
    id: String,
    /// Whether the request still holds other entries to send.
    others: bool,
}

/// Removes the first entry from a SendMessageBatch request.
fn withhold_first_entry(request: &mut HttpMessage) -> Option<Withheld> {
    let mut body: Value = serde_json::from_slice(&request.body).ok()?;
    let entries = body["Entries"].as_array_mut()?;
    let id = entries.first()?["Id"].as_str()?.to_owned();
    entries.remove(0);
    let others = !entries.is_empty();
    request.body = serde_json::to_vec(&body).ok()?;
    Some(Withheld { id, others })
}

/// Adds entry `id` to the `Failed` list of a SendMessageBatch response.
fn report_failed(response: &mut HttpMessage, id: &str, sender_fault: bool) {
    let Ok(mut body) = serde_json::from_slice::<Value>(&response.body) else {
        // Not a SendMessageBatch answer (an upstream error): pass it on as it is.
        return;
    };
    let code = if sender_fault { "InvalidParameterValue" } else { "InternalError" };
    let failed = json!({ "Id": id, "SenderFault": sender_fault, "Code": code, "Message": "injected by the test proxy" });
    match body["Failed"].as_array_mut() {
        Some(list) => list.push(failed),
        None => body["Failed"] = json!([failed]),
    }
    response.body = serde_json::to_vec(&body).expect("JSON serialises");
}
