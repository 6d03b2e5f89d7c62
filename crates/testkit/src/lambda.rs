//! The Lambda runtime API's side of an invocation (feature `aws`), for tests and benches that run
//! a Lambda binary under a local runtime API (the endpoints a Lambda sandbox serves).

use http::{HeaderMap, HeaderValue};

/// The headers of `GET /2018-06-01/runtime/invocation/next` for invocation `request_id` of the
/// function `function`: its id, a deadline 30 s away, the function's ARN.
pub fn invocation_headers(request_id: &str, function: &str) -> HeaderMap {
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis()
        + 30_000;
    let value = |s: String| HeaderValue::from_str(&s).expect("an ASCII header value");
    let mut h = HeaderMap::new();
    h.insert(
        "lambda-runtime-aws-request-id",
        value(request_id.to_string()),
    );
    h.insert("lambda-runtime-deadline-ms", value(deadline.to_string()));
    h.insert(
        "lambda-runtime-invoked-function-arn",
        value(format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{function}"
        )),
    );
    h
}
