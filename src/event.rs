//! The API Gateway event, made safe for lambda_http to turn into a request.
//!
//! lambda_http 1.x panics while building the request's URI when the event's raw query string
//! holds a byte a URI may not (a space, `"`, `<`, `>`, a tab: API Gateway passes them through),
//! or when its path, `Host` or `X-Forwarded-Proto` do not make a URL. The panic fails the
//! invocation, and API Gateway answers 500, which Nylas never retries. So [`repair`] runs
//! first: such bytes are percent-encoded, and a host or scheme that is not one is dropped
//! (lambda_http then builds a relative URI). Nothing the function reads changes: the challenge
//! is parsed from the query with its encoding undone, and a POST is verified over its body.

use lambda_http::aws_lambda_events::http::HeaderMap;
use lambda_http::request::LambdaRequest;
use lambda_http::LambdaEvent;

/// Percent-encodes, drops or completes whatever would make lambda_http panic.
pub fn repair(mut event: LambdaEvent<LambdaRequest>) -> LambdaEvent<LambdaRequest> {
    match &mut event.payload {
        LambdaRequest::ApiGatewayV2(request) => {
            let query = request.raw_query_string.as_deref().map(|q| encode(q, true));
            request.raw_query_string = query;
            let path = request.raw_path.as_deref().map(|p| encode(p, false));
            request.raw_path = path;
            repair_host(
                &mut request.headers,
                &mut request.request_context.domain_name,
            );
        }
        LambdaRequest::ApiGatewayV1(request) => {
            request.path = request.path.as_deref().map(|p| encode(p, false));
            repair_host(
                &mut request.headers,
                &mut request.request_context.domain_name,
            );
            repair_host(&mut request.multi_value_headers, &mut None);
        }
        _ => {}
    }
    event
}

/// `text` with every byte RFC 3986 does not allow in a query (or a path) percent-encoded;
/// `%` is kept, so what was encoded stays as it was. A path always starts with `/`.
fn encode(text: &str, query: bool) -> String {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b);
    let mut encoded = String::with_capacity(text.len() + 1);
    if !query && !text.starts_with('/') {
        encoded.push('/');
    }
    for b in text.bytes() {
        match b {
            b'?' if query => encoded.push('?'),
            b if allowed(b) => encoded.push(char::from(b)),
            b => encoded.push_str(&format!("%{b:02X}")),
        }
    }
    encoded
}

/// Drops a `Host`, a domain name or an `X-Forwarded-Proto` that would not make a URL.
fn repair_host(headers: &mut HeaderMap, domain_name: &mut Option<String>) {
    // A domain name whose last label does not start with a letter is read as an IPv4 address
    // (the WHATWG URL rules lambda_http parses by), so it must be one.
    let is_host = |host: &str| {
        let (name, port) = host.split_once(':').unwrap_or((host, "80"));
        let label =
            |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let last = name.rsplit('.').next().unwrap_or_default();
        let named =
            last.starts_with(|c: char| c.is_ascii_alphabetic()) && name.split('.').all(label);
        (named || name.parse::<std::net::Ipv4Addr>().is_ok()) && port.parse::<u16>().is_ok()
    };
    let valid = |name: &str, value: &[u8]| {
        let value = std::str::from_utf8(value).unwrap_or_default();
        match name {
            "host" => is_host(value),
            _ => value == "http" || value == "https",
        }
    };
    for name in ["host", "x-forwarded-proto"] {
        if headers
            .get_all(name)
            .iter()
            .any(|v| !valid(name, v.as_bytes()))
        {
            headers.remove(name);
        }
    }
    if domain_name.as_deref().is_some_and(|d| !is_host(d)) {
        *domain_name = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::{Context, Request, RequestExt};

    /// An HTTP API (payload 2.0) event as API Gateway sends it, with `raw_query` as its raw
    /// query string and `host` as its Host.
    fn v2_event(raw_query: &str, host: &str) -> serde_json::Value {
        serde_json::json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/webhook",
            "rawQueryString": raw_query,
            "headers": {"host": host, "x-forwarded-proto": "https"},
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": host,
                "http": {"method": "GET", "path": "/webhook", "protocol": "HTTP/1.1",
                         "sourceIp": "192.0.2.1", "userAgent": "test"},
                "requestId": "r", "routeKey": "$default", "stage": "$default",
                "time": "30/Nov/2026:00:00:00 +0000", "timeEpoch": 0
            },
            "isBase64Encoded": false
        })
    }

    /// The request lambda_http builds from `event` once repaired.
    fn request(event: serde_json::Value) -> Request {
        let payload: LambdaRequest = serde_json::from_value(event).expect("an API Gateway event");
        repair(LambdaEvent::new(payload, Context::default()))
            .payload
            .into()
    }

    fn challenge(request: &Request) -> Option<String> {
        let query = request.query_string_parameters_ref()?;
        query.first("challenge").map(str::to_owned)
    }

    #[test]
    fn query_with_bytes_a_uri_may_not_hold_still_makes_a_request() {
        for (raw, value) in [
            ("challenge=a b", "a b"),
            ("challenge=\"q\"<x>\t", "\"q\"<x>\t"),
            ("challenge=caf\u{e9}#{|}^`\\", "caf\u{e9}#{|}^`\\"),
            ("challenge=a%20b+c", "a b c"),
        ] {
            let built = request(v2_event(raw, "api.example.com"));
            assert_eq!(challenge(&built).as_deref(), Some(value), "{raw}");
        }
    }

    #[test]
    fn host_or_scheme_that_makes_no_url_is_dropped() {
        let mut event = v2_event("challenge=c", "bad host");
        event["headers"]["x-forwarded-proto"] = "no scheme".into();
        let built = request(event);
        assert_eq!(built.uri().host(), None);
        assert_eq!(challenge(&built).as_deref(), Some("c"));
        for host in ["a.0", "a.0x1", "1.2.3", "a..b", "host:port"] {
            assert_eq!(request(v2_event("", host)).uri().host(), None, "{host}");
        }
        for host in ["api.example.com:443", "192.0.2.1"] {
            let built = request(v2_event("challenge=c", host));
            assert_eq!(built.uri().host(), host.split(':').next(), "{host}");
        }
    }

    #[test]
    fn path_that_makes_no_url_is_encoded() {
        for path in [":x", "/a b", "no-slash", "/%zz"] {
            let mut event = v2_event("", "api.example.com");
            event["rawPath"] = path.into();
            assert!(request(event).uri().path().starts_with('/'), "{path}");
        }
    }

    #[test]
    fn valid_query_is_left_as_it_came() {
        let query = "challenge=a%2Fb&x=1:2@3/4?5";
        assert_eq!(encode(query, true), query);
    }

    proptest::proptest! {
        #[test]
        fn no_query_path_host_or_scheme_makes_lambda_http_panic(
            query in ".{0,40}",
            path in "([a-z0-9:/%?.]{0,8})|(.{0,20})",
            host in "([a-z0-9x.:\\[\\]-]{0,12})|(.{0,20})",
            scheme in "(https?:?)|(.{0,8})",
        ) {
            let mut event = v2_event(&query, "api.example.com");
            event["rawPath"] = path.into();
            event["requestContext"]["domainName"] = host.clone().into();
            let headers = [("host", host), ("x-forwarded-proto", scheme)];
            for (name, value) in headers {
                // API Gateway hands over only values a header may hold.
                if lambda_http::http::HeaderValue::from_str(&value).is_ok() {
                    event["headers"][name] = value.into();
                }
            }
            request(event);
        }
    }
}
