//! The API Gateway event, made safe for lambda_http to turn into a request.
//!
//! lambda_http 1.x panics building the request's URI when the raw query string holds a byte a
//! URI may not (a space, `"`, `<`, `>`, a tab: API Gateway passes them through), or when
//! `X-Forwarded-Proto` is not a scheme. The invocation fails, and API Gateway answers 500,
//! which Nylas never retries. So such bytes are percent-encoded, and such a header dropped,
//! first. The challenge is parsed from the query with its encoding undone, and a POST is
//! verified over its body, so nothing the function reads changes.

use lambda_http::request::LambdaRequest;
use lambda_http::LambdaEvent;

/// Percent-encodes or drops whatever would make lambda_http panic.
pub fn repair(mut event: LambdaEvent<LambdaRequest>) -> LambdaEvent<LambdaRequest> {
    let headers = match &mut event.payload {
        LambdaRequest::ApiGatewayV2(request) => {
            request.raw_query_string = request.raw_query_string.as_deref().map(encode_query);
            &mut request.headers
        }
        LambdaRequest::ApiGatewayV1(request) => &mut request.headers,
        _ => return event,
    };
    let scheme = headers.get("x-forwarded-proto").map(|v| v.as_bytes());
    if scheme.is_some_and(|s| s != b"http" && s != b"https") {
        headers.remove("x-forwarded-proto");
    }
    event
}

/// `query` with every byte RFC 3986 does not allow in a query percent-encoded; `%` is kept, so
/// what was encoded stays as it was.
fn encode_query(query: &str) -> String {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b);
    query
        .bytes()
        .fold(String::with_capacity(query.len()), |mut encoded, b| {
            match allowed(b) {
                true => encoded.push(char::from(b)),
                false => encoded.push_str(&format!("%{b:02X}")),
            }
            encoded
        })
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
    fn forwarded_proto_that_is_no_scheme_is_dropped() {
        let mut event = v2_event("challenge=c", "api.example.com");
        event["headers"]["x-forwarded-proto"] = "evil, https".into();
        let built = request(event);
        assert_eq!(built.uri().scheme_str(), Some("https"));
        assert_eq!(challenge(&built).as_deref(), Some("c"));
        let mut event = v2_event("challenge=c", "api.example.com");
        event["headers"]["x-forwarded-proto"] = "http".into();
        assert_eq!(
            request(event).uri().scheme_str(),
            Some("http"),
            "a scheme is kept"
        );
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
        assert_eq!(encode_query(query), query);
    }

    proptest::proptest! {
        /// Any query and scheme a client sends; the host and path are API Gateway's own.
        #[test]
        fn no_query_or_scheme_makes_lambda_http_panic(
            query in ".{0,40}",
            path in "/([a-z0-9:/%?.]{0,8}|.{0,20})",
            scheme in "(https?:?)|(.{0,8})",
        ) {
            let mut event = v2_event(&query, "api.example.com");
            event["rawPath"] = path.into();
            // API Gateway hands over only values a header may hold.
            if lambda_http::http::HeaderValue::from_str(&scheme).is_ok() {
                event["headers"]["x-forwarded-proto"] = scheme.into();
            }
            request(event);
        }
    }
}
