//! The API Gateway event, made safe for lambda_http to turn into a request.
//!
//! lambda_http 1.x fails the invocation, and API Gateway answers 500, which Nylas never
//! retries, on what a client can put in a request:
//! - a header name or value `http` refuses (a control byte or DEL in a value) fails the
//!   event's deserialisation before any handler runs (aws-lambda-rust-runtime issue #509,
//!   open: "respond with a generic Response" is asked there, not done);
//! - a raw query string with a byte a URI may not hold (a space, `"`, `<`, `>`, a tab: issue
//!   #515), a `Host` that is no host (`a b`, a port over 65535: `Url::parse(..).unwrap()`, as
//!   PR #369 left it for issue #368) or an `X-Forwarded-Proto` that is no scheme make it
//!   panic building the URI.
//!
//! So, first, such header values are percent-encoded and such names dropped, the query is
//! percent-encoded, and a host or scheme lambda_http cannot use is dropped. The challenge is
//! parsed from the query with its encoding undone, and a POST is verified over its body, so
//! nothing the function reads changes.

use lambda_http::http::{HeaderName, HeaderValue, Uri};
use lambda_http::request::LambdaRequest;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::{de::Error, Deserialize, Deserializer};
use serde_json::value::{RawValue, Value};

/// Bytes RFC 3986 does not allow in a query (`%` is allowed, so what was encoded stays as it was).
#[rustfmt::skip]
const NOT_QUERY: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'<').add(b'>')
    .add(b'[').add(b'\\').add(b']').add(b'^').add(b'`').add(b'{').add(b'|').add(b'}');

/// An API Gateway event, repaired as the module doc says while it is read.
pub struct Event(pub LambdaRequest);

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Read as lambda_http reads it; only an event it cannot read pays for the repair.
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let request = serde_json::from_str(raw.get()).or_else(|_| {
            let mut event: Value = serde_json::from_str(raw.get())?;
            repair_headers(&mut event);
            LambdaRequest::deserialize(event)
        });
        Ok(Event(repair(request.map_err(D::Error::custom)?)))
    }
}

/// Drops the header names `http` refuses, and percent-encodes the values it refuses.
fn repair_headers(event: &mut Value) {
    for headers in ["headers", "multiValueHeaders"] {
        let Some(Value::Object(headers)) = event.get_mut(headers) else {
            continue;
        };
        headers.retain(|name, _| HeaderName::from_bytes(name.as_bytes()).is_ok());
        let values = headers.values_mut().flat_map(|v| match v {
            Value::Array(values) => values.iter_mut().collect(),
            value => vec![value],
        });
        for value in values {
            if let Value::String(text) = value {
                if HeaderValue::from_str(text).is_err() {
                    *text = utf8_percent_encode(text, CONTROLS).to_string();
                }
            }
        }
    }
}

/// Percent-encodes the query, and drops a `Host` or `X-Forwarded-Proto` that lambda_http
/// cannot build a URI with (it then uses API Gateway's domain name, and https).
fn repair(mut request: LambdaRequest) -> LambdaRequest {
    let (headers, domain, path) = match &mut request {
        LambdaRequest::ApiGatewayV2(r) => {
            let query = r.raw_query_string.as_deref();
            r.raw_query_string = query.map(|q| utf8_percent_encode(q, NOT_QUERY).to_string());
            (&mut r.headers, &mut r.request_context.domain_name, &r.raw_path)
        }
        LambdaRequest::ApiGatewayV1(r) => {
            (&mut r.headers, &mut r.request_context.domain_name, &r.path)
        }
        _ => return request,
    };
    let path = path.as_deref().unwrap_or("/");
    let scheme = headers.get("x-forwarded-proto").map(|v| v.as_bytes());
    if scheme.is_some_and(|s| s != b"http" && s != b"https") {
        headers.remove("x-forwarded-proto");
    }
    // What lambda_http does with the host: `Url::parse`, then `http`'s URI of it.
    let builds = |host: &str| {
        let url = url::Url::parse(&format!("https://{host}{path}"));
        url.is_ok_and(|url| url.as_str().parse::<Uri>().is_ok())
    };
    if headers.get("host").is_some_and(|h| !h.to_str().is_ok_and(builds)) {
        headers.remove("host");
    }
    // lambda_http reads the domain name only when there is no `Host`.
    if !headers.contains_key("host") && domain.as_deref().is_some_and(|d| !builds(d)) {
        *domain = None;
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::{Request, RequestExt};

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
        let Event(payload) = serde_json::from_value(event).expect("an API Gateway event");
        payload.into()
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
    fn forwarded_proto_that_is_no_scheme_is_dropped() {
        let mut event = v2_event("challenge=c", "api.example.com");
        event["headers"]["x-forwarded-proto"] = "evil, https".into();
        let built = request(event);
        assert_eq!(built.uri().scheme_str(), Some("https"));
        assert_eq!(challenge(&built).as_deref(), Some("c"));
        let mut event = v2_event("challenge=c", "api.example.com");
        event["headers"]["x-forwarded-proto"] = "http".into();
        assert_eq!(request(event).uri().scheme_str(), Some("http"), "a scheme is kept");
    }

    #[test]
    fn rest_api_event_with_a_forwarded_proto_that_is_no_scheme_makes_a_request() {
        let event = serde_json::json!({
            "resource": "/webhook", "path": "/webhook", "httpMethod": "POST",
            "headers": {"Host": "api.example.com", "X-Forwarded-Proto": "evil, https"},
            "multiValueHeaders": {}, "queryStringParameters": null,
            "multiValueQueryStringParameters": null, "pathParameters": null,
            "stageVariables": null, "body": "{}", "isBase64Encoded": false,
            "requestContext": {"accountId": "1", "resourceId": "r", "stage": "prod",
                               "requestId": "q", "identity": {}, "resourcePath": "/webhook",
                               "httpMethod": "POST", "apiId": "api"}
        });
        assert_eq!(request(event).uri().scheme_str(), Some("https"));
    }

    #[test]
    fn valid_query_is_left_as_it_came() {
        let query = "challenge=a%2Fb&x=1:2@3/4?5";
        let built = request(v2_event(query, "api.example.com"));
        assert_eq!(built.uri().query(), Some(query));
        assert_eq!(challenge(&built).as_deref(), Some("a/b"));
    }

    #[test]
    fn host_that_is_no_host_is_dropped_and_the_request_still_made() {
        for host in ["a b", "x.example.com:99999", "[::1", "\u{e9}t\u{e9}:x"] {
            let mut event = v2_event("challenge=c", host);
            event["requestContext"]["domainName"] = "api.example.com".into();
            let built = request(event);
            assert_eq!(challenge(&built).as_deref(), Some("c"), "{host:?}");
            assert_eq!(built.uri().host(), Some("api.example.com"), "{host:?}");
        }
        let mut event = v2_event("challenge=c", "a b");
        event["requestContext"]["domainName"] = "a b".into();
        assert_eq!(request(event).uri().host(), None, "no host at all: a relative URI");
        let kept = request(v2_event("challenge=c", "hooks.example.com:8443"));
        assert_eq!(kept.uri().authority().map(|a| a.as_str()), Some("hooks.example.com:8443"));
    }

    #[test]
    fn header_value_with_control_bytes_is_percent_encoded_and_a_bad_name_dropped() {
        let mut event = v2_event("challenge=c", "api.example.com");
        event["headers"]["x-nylas-signature"] = "ab\u{1}c\u{7f}\n".into();
        event["headers"]["bad name"] = "x".into();
        event["headers"]["x-fine"] = "caf\u{e9}\tok".into();
        let built = request(event);
        assert_eq!(built.headers()["x-nylas-signature"], "ab%01c%7F%0A");
        assert_eq!(built.headers()["x-fine"].as_bytes(), "caf\u{e9}\tok".as_bytes());
        assert!(!built.headers().contains_key("bad name"));
        let mut rest = serde_json::json!({
            "resource": "/webhook", "path": "/webhook", "httpMethod": "POST",
            "headers": {"Host": "a b", "X-Odd": "\u{0}"},
            "multiValueHeaders": {"X-Odd": ["\u{0}", "fine"], "bad name": ["x"]},
            "requestContext": {"accountId": "1", "stage": "prod", "identity": {},
                               "httpMethod": "POST", "domainName": "api.example.com"},
            "body": "{}", "isBase64Encoded": false
        });
        let built = request(rest.take());
        let odd: Vec<_> = built.headers().get_all("x-odd").iter().collect();
        assert!(odd.iter().all(|v| v.as_bytes().starts_with(b"%00") || v.as_bytes() == b"fine"));
    }

    proptest::proptest! {
        /// Any query, host, scheme and header a client sends, any string JSON can carry; the
        /// path is API Gateway's own, and always starts with `/`.
        #[test]
        fn no_query_host_or_header_makes_lambda_http_fail(
            query in ".{0,40}",
            path in "/([a-z0-9:/%?.]{0,8}|.{0,20})",
            host in "([a-z0-9.:\\[\\]-]{0,12})|(.{0,20})",
            scheme in "(https?:?)|(.{0,8})",
            name in "(x-[a-z]{1,6})|(.{0,8})",
            value in "\\PC{0,20}|.{0,20}|[\\x00-\\x1f\\x7f]{0,4}",
        ) {
            let mut event = v2_event(&query, &host);
            event["rawPath"] = path.into();
            event["headers"]["x-forwarded-proto"] = scheme.into();
            event["headers"][name] = value.into();
            request(event);
        }
    }
}
