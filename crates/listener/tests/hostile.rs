//! Hostile and malformed requests: each gets its exact status and error code, and nothing is queued.

mod common;

use common::*;
use serde_json::Value;
use slipway_core::webhook::sign;

fn branch() -> Value {
    serde_json::from_slice(&fixture("push-branch.json")).unwrap()
}

fn with(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v = branch();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

/// A request signed over `signed` but carrying `sent`, with extra or replaced headers.
struct Case {
    name: &'static str,
    method: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

fn signed_headers(body: &[u8]) -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/json".into()),
        ("x-github-event".into(), "push".into()),
        ("x-github-delivery".into(), DELIVERY.into()),
        ("x-hub-signature-256".into(), sign(SECRET.as_bytes(), body)),
    ]
}

fn case(name: &'static str, body: Vec<u8>, status: u16, code: &'static str) -> Case {
    Case {
        name,
        method: "POST",
        headers: signed_headers(&body),
        body,
        status,
        code,
        field: None,
    }
}

impl Case {
    fn field(mut self, f: &'static str) -> Self {
        self.field = Some(f);
        self
    }
    fn method(mut self, m: &'static str) -> Self {
        self.method = m;
        self
    }
    fn set(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(k, _)| k != name);
        self.headers.push((name.into(), value.into()));
        self
    }
    fn add(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn drop(mut self, name: &str) -> Self {
        self.headers.retain(|(k, _)| k != name);
        self
    }
    fn send(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }
}

fn cases() -> Vec<Case> {
    let good = fixture("push-branch.json");
    let other_secret_sig = sign(b"an-old-secret-nobody-uses-now", &good);
    let sha1 = "sha1=82474c4fdedd8c2d2e6802db3e49f4afd96b3eab";
    let mut deep = String::from("{\"unused\":");
    deep.push_str(&"[".repeat(5000));
    vec![
        // Signatures
        case("no signature", good.clone(), 401, "signature_missing").drop("x-hub-signature-256"),
        case("sha-1 only", good.clone(), 401, "signature_sha256_required")
            .drop("x-hub-signature-256")
            .add("x-hub-signature", sha1),
        case(
            "signed with another secret",
            good.clone(),
            401,
            "signature_mismatch",
        )
        .set("x-hub-signature-256", &other_secret_sig),
        case(
            "signature duplicated",
            good.clone(),
            401,
            "signature_ambiguous",
        )
        .add("x-hub-signature-256", &sign(SECRET.as_bytes(), &good)),
        case(
            "signature without prefix",
            good.clone(),
            401,
            "signature_malformed",
        )
        .set(
            "x-hub-signature-256",
            sign(SECRET.as_bytes(), &good).trim_start_matches("sha256="),
        ),
        case("empty signature", good.clone(), 401, "signature_malformed")
            .set("x-hub-signature-256", ""),
        case(
            "signature too short",
            good.clone(),
            401,
            "signature_malformed",
        )
        .set(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a",
        ),
        case(
            "truncated in transit",
            good.clone(),
            401,
            "signature_mismatch",
        )
        .send(good[..good.len() / 2].to_vec()),
        case(
            "body swapped after signing",
            good.clone(),
            401,
            "signature_mismatch",
        )
        .send(with(|v| v["ref"] = "refs/heads/release/evil".into())),
        // Method, size, content type
        case("GET", good.clone(), 405, "method_not_allowed").method("GET"),
        case("PUT", good.clone(), 405, "method_not_allowed").method("PUT"),
        case(
            "huge body",
            vec![b' '; 1024 * 1024 + 1],
            413,
            "payload_too_large",
        ),
        case("text/plain", good.clone(), 415, "unsupported_media_type")
            .set("content-type", "text/plain"),
        case("xml", good.clone(), 415, "unsupported_media_type")
            .set("content-type", "application/xml"),
        case(
            "no content type",
            good.clone(),
            415,
            "unsupported_media_type",
        )
        .drop("content-type"),
        // Headers
        case("no event header", good.clone(), 400, "missing_header").drop("x-github-event"),
        case(
            "event with shell characters",
            good.clone(),
            400,
            "invalid_header",
        )
        .set("x-github-event", "push;id"),
        case("no delivery header", good.clone(), 400, "missing_header").drop("x-github-delivery"),
        case("delivery with a path", good.clone(), 400, "invalid_header")
            .set("x-github-delivery", "../../etc"),
        // Bodies that are not a push
        case(
            "truncated JSON, signed",
            good[..good.len() / 2].to_vec(),
            400,
            "invalid_json",
        ),
        case(
            "not UTF-8",
            vec![0xff, 0xfe, b'{', 0x80, b'}'],
            400,
            "invalid_json",
        ),
        case("empty body", Vec::new(), 400, "invalid_json"),
        case("a JSON array", b"[1,2,3]".to_vec(), 400, "invalid_json"),
        case("nested 5000 deep", deep.into_bytes(), 400, "invalid_json"),
        case(
            "ref is a number",
            with(|v| v["ref"] = 42.into()),
            400,
            "invalid_field",
        )
        .field("ref"),
        case(
            "commits is a string",
            with(|v| v["commits"] = "all".into()),
            400,
            "invalid_field",
        )
        .field("commits"),
        case(
            "no repository",
            with(|v| {
                v.as_object_mut().unwrap().remove("repository");
            }),
            400,
            "missing_field",
        )
        .field("repository"),
        case(
            "no after",
            with(|v| {
                v.as_object_mut().unwrap().remove("after");
            }),
            400,
            "missing_field",
        )
        .field("after"),
        case(
            "no full_name",
            with(|v| {
                v["repository"].as_object_mut().unwrap().remove("full_name");
            }),
            400,
            "missing_field",
        )
        .field("repository.full_name"),
        case(
            "a ping body sent as push",
            fixture("ping.json"),
            400,
            "missing_field",
        )
        .field("ref"),
        // Values that would reach git, a tag or a shell
        case(
            "ref with $(id)",
            with(|v| v["ref"] = "refs/heads/$(id)".into()),
            400,
            "invalid_field",
        )
        .field("ref"),
        case(
            "ref with ;touch",
            with(|v| v["ref"] = "refs/heads/a;touch /tmp/pwned".into()),
            400,
            "invalid_field",
        )
        .field("ref"),
        case(
            "ref with ..",
            with(|v| v["ref"] = "refs/heads/../../x".into()),
            400,
            "invalid_field",
        )
        .field("ref"),
        case(
            "ref with backticks",
            with(|v| v["ref"] = "refs/tags/`reboot`".into()),
            400,
            "invalid_field",
        )
        .field("ref"),
        case(
            "ref with unicode",
            with(|v| v["ref"] = "refs/heads/mäin".into()),
            400,
            "invalid_field",
        )
        .field("ref"),
        case(
            "path with ..",
            with(|v| v["commits"][0]["added"][0] = "../../etc/passwd".into()),
            400,
            "invalid_field",
        )
        .field("commits[0].added[0]"),
        case(
            "absolute path",
            with(|v| v["commits"][1]["removed"][0] = "/etc/shadow".into()),
            400,
            "invalid_field",
        )
        .field("commits[1].removed[0]"),
        case(
            "path with newline",
            with(|v| v["commits"][1]["modified"][0] = "a\nb".into()),
            400,
            "invalid_field",
        )
        .field("commits[1].modified[0]"),
        case(
            "unicode repository",
            with(|v| v["repository"]["full_name"] = "Cödertocat/Hello-World".into()),
            400,
            "invalid_field",
        )
        .field("repository.full_name"),
        case(
            "repository with ;",
            with(|v| v["repository"]["full_name"] = "Codertocat/x;rm -rf".into()),
            400,
            "invalid_field",
        )
        .field("repository.full_name"),
        case(
            "before not hex",
            with(|v| v["before"] = "zz13728f27ae82c7b1a177c8d03f9e96e0adf246".into()),
            400,
            "invalid_field",
        )
        .field("before"),
        case(
            "after uppercase",
            with(|v| v["after"] = "F95F852BD8FCA8FCC58A9A2D6C842781E32A215E".into()),
            400,
            "invalid_field",
        )
        .field("after"),
        case(
            "head commit with backticks",
            with(|v| v["head_commit"]["id"] = "`id`".into()),
            400,
            "invalid_field",
        )
        .field("head_commit.id"),
        case(
            "clone URL with credentials",
            with(|v| v["repository"]["clone_url"] = "https://user:pw@github.com/a/b.git".into()),
            400,
            "invalid_field",
        )
        .field("repository.clone_url"),
        case(
            "clone URL file://",
            with(|v| v["repository"]["clone_url"] = "file:///etc".into()),
            400,
            "invalid_field",
        )
        .field("repository.clone_url"),
        case(
            "clone URL ext::",
            with(|v| v["repository"]["clone_url"] = "ext::sh -c id".into()),
            400,
            "invalid_field",
        )
        .field("repository.clone_url"),
        case(
            "default branch with $",
            with(|v| v["repository"]["default_branch"] = "ma$in".into()),
            400,
            "invalid_field",
        )
        .field("repository.default_branch"),
    ]
}

#[tokio::test]
async fn hostile_requests_get_exact_answers_and_queue_nothing() {
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in cases {
        let q = MemoryQueue::default();
        let headers: Vec<(&str, &str)> = c
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let a = call(&config(), &q, request(c.method, &headers, &c.body)).await;
        let got = (
            a.status,
            a.body["error"].as_str().unwrap_or("-").to_string(),
        );
        if got != (c.status, c.code.to_string()) {
            failures.push(format!(
                "{}: expected {} {}, got {} {}",
                c.name, c.status, c.code, got.0, a.body
            ));
        }
        if let Some(f) = c.field
            && a.body["field"] != f
        {
            failures.push(format!("{}: expected field {f}, got {}", c.name, a.body));
        }
        if !a.body["message"].is_string() {
            failures.push(format!("{}: no message in {}", c.name, a.body));
        }
        if !q.jobs().is_empty() {
            failures.push(format!("{}: a job was queued", c.name));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn uppercase_repository_names_are_github_names_and_are_served() {
    // GitHub keeps the owner's case; the allow-list compares without it.
    let q = MemoryQueue::default();
    let body = with(|v| v["repository"]["full_name"] = "CODERTOCAT/Hello-World".into());
    let a = call(&config(), &q, github_request("push", &body)).await;
    assert_eq!(a.body["status"], "queued", "{}", a.body);
    assert_eq!(q.jobs()[0].repository, "CODERTOCAT/Hello-World");
    assert_eq!(q.jobs()[0].group_id(), "codertocat/hello-world");
}
