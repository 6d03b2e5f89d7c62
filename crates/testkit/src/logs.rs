//! Log lines captured from the real logger, and a checker of CloudWatch's embedded metric format
//! (EMF) written from its specification (feature `aws`): the Lambdas' tests read their metric lines
//! through it.

/// What a logger writes, captured in memory: the real formatter with a buffer for standard
/// output, installed on the current thread.
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

pub struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> LogWriter {
        LogWriter(self.0.clone())
    }
}

impl LogCapture {
    /// Captures this thread's log lines until the guard is dropped (a `#[tokio::test]` runs its
    /// tasks on the test's thread). `subscriber` builds the real logger over the capture's
    /// writer, e.g. `|w| slipway_aws::logging::subscriber(w, "info")`: the kit does not depend on
    /// the crate it tests.
    pub fn start<S>(
        subscriber: impl FnOnce(LogCapture) -> S,
    ) -> (Self, tracing::subscriber::DefaultGuard)
    where
        S: tracing::Subscriber + Send + Sync + 'static,
    {
        let capture = LogCapture::default();
        let guard = tracing::subscriber::set_default(subscriber(capture.clone()));
        (capture, guard)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Every line, each parsed alone as one JSON object (panics on a line that is not one).
    pub fn lines(&self) -> Vec<serde_json::Value> {
        parse_lines(&self.text())
    }

    /// The lines CloudWatch reads as metrics (those with `_aws`), each checked against the EMF
    /// specification first.
    pub fn metric_lines(&self) -> Vec<serde_json::Value> {
        metric_lines(&self.text())
    }
}

/// Each line of a log, parsed alone as one JSON object, as CloudWatch Logs reads a log event:
/// nothing may come before or after the object. Panics on a line that is not one.
pub fn parse_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(v) if v.is_object() => v,
            other => panic!("a log line that is not one JSON object ({other:?}): {l}"),
        })
        .collect()
}

/// The metric lines of a log (those with `_aws`), each asserted to be valid EMF.
pub fn metric_lines(text: &str) -> Vec<serde_json::Value> {
    parse_lines(text)
        .into_iter()
        .filter(|l| l.get("_aws").is_some())
        .inspect(|l| {
            let problems = emf_problems(l);
            assert!(problems.is_empty(), "not valid EMF: {problems:?}\n{l}");
        })
        .collect()
}

/// CloudWatch's metric units (the `Unit` of a metric definition).
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// What is wrong with `doc` as an embedded metric format document, by the rules of CloudWatch's
/// "Specification: Embedded metric format" (empty: nothing). Written from the specification,
/// not from slipway's builder, so that it can disagree with it.
pub fn emf_problems(doc: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    let mut p = Vec::new();
    let Some(root) = doc.as_object() else {
        return vec!["the document is not a JSON object".into()];
    };
    let Some(aws) = root.get("_aws").and_then(Value::as_object) else {
        return vec!["no `_aws` metadata object".into()];
    };
    // Milliseconds since the epoch: an integer, and not seconds (before 2001 in milliseconds).
    match aws.get("Timestamp") {
        Some(Value::Number(n)) if n.as_i64().is_some_and(|t| t > 1_000_000_000_000) => {}
        other => p.push(format!(
            "_aws.Timestamp is not milliseconds since the epoch: {other:?}"
        )),
    }
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        p.push("_aws.CloudWatchMetrics is not an array".into());
        return p;
    };
    if directives.is_empty() {
        p.push("_aws.CloudWatchMetrics has no metric directive".into());
    }
    for (i, d) in directives.iter().enumerate() {
        let at = format!("CloudWatchMetrics[{i}]");
        let Some(d) = d.as_object() else {
            p.push(format!("{at} is not an object"));
            continue;
        };
        for k in d.keys() {
            if !["Namespace", "Dimensions", "Metrics"].contains(&k.as_str()) {
                p.push(format!(
                    "{at} has a member the specification does not define: {k}"
                ));
            }
        }
        match d.get("Namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns.len() <= 1024 => {}
            other => p.push(format!(
                "{at}.Namespace is not a string of 1 to 1024: {other:?}"
            )),
        }
        match d.get("Dimensions").and_then(Value::as_array) {
            Some(sets) if !sets.is_empty() => {
                for (j, set) in sets.iter().enumerate() {
                    let Some(keys) = set.as_array() else {
                        p.push(format!("{at}.Dimensions[{j}] is not an array"));
                        continue;
                    };
                    if keys.len() > 30 {
                        p.push(format!("{at}.Dimensions[{j}] has over 30 keys"));
                    }
                    for k in keys {
                        let Some(k) = k.as_str().filter(|k| !k.is_empty() && k.len() <= 250) else {
                            p.push(format!(
                                "{at}.Dimensions[{j}]: {k} is not a key of 1 to 250"
                            ));
                            continue;
                        };
                        match root.get(k) {
                            Some(Value::String(v)) if !v.is_empty() && v.len() <= 1024 => {}
                            other => p.push(format!(
                                "dimension {k} has no string target of 1 to 1024 on the root: {other:?}"
                            )),
                        }
                    }
                }
            }
            other => p.push(format!(
                "{at}.Dimensions is not a non-empty array: {other:?}"
            )),
        }
        let Some(metrics) = d.get("Metrics").and_then(Value::as_array) else {
            p.push(format!("{at}.Metrics is not an array"));
            continue;
        };
        if metrics.len() > 100 {
            p.push(format!("{at}.Metrics has over 100 definitions"));
        }
        for m in metrics {
            let Some(m) = m.as_object() else {
                p.push(format!("{at}.Metrics: {m} is not an object"));
                continue;
            };
            for k in m.keys() {
                if !["Name", "Unit", "StorageResolution"].contains(&k.as_str()) {
                    p.push(format!(
                        "metric definition member the specification does not define: {k}"
                    ));
                }
            }
            let Some(name) = m
                .get("Name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            else {
                p.push(format!("{at}: a metric definition without a Name: {m:?}"));
                continue;
            };
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(a)) if a.len() <= 100 && a.iter().all(Value::is_number) => {}
                other => p.push(format!(
                    "metric {name} has no numeric target on the root: {other:?}"
                )),
            }
            if let Some(u) = m.get("Unit")
                && !u.as_str().is_some_and(|u| UNITS.contains(&u))
            {
                p.push(format!("metric {name}: {u} is not a CloudWatch unit"));
            }
            if let Some(r) = m.get("StorageResolution")
                && !(r == 1 || r == 60)
            {
                p.push(format!(
                    "metric {name}: storage resolution {r} is neither 1 nor 60"
                ));
            }
        }
    }
    p
}
