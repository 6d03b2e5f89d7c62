//! What a Lambda's code asks of AWS: the SDK operations it calls and the `SLIPWAY_*`
//! environment variables it names, read from its sources.

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One AWS SDK operation: the SDK crate (`sqs`), its fluent method (`send_message`) and the IAM
/// action it needs (`sqs:SendMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkOperation {
    pub sdk: String,
    pub method: String,
    pub action: String,
}

/// The table in `crates/stack/sdk-operations.txt`.
pub fn sdk_operations() -> Vec<SdkOperation> {
    include_str!("../sdk-operations.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut w = l.split_whitespace();
            let (Some(sdk), Some(method), Some(action)) = (w.next(), w.next(), w.next()) else {
                panic!("sdk-operations.txt: malformed line `{l}`");
            };
            SdkOperation {
                sdk: sdk.into(),
                method: method.into(),
                action: action.into(),
            }
        })
        .collect()
}

/// Where something was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Site {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// An SDK call and the IAM actions it may need (one, unless the method name exists in several
/// SDKs the file uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkCall {
    pub site: Site,
    pub method: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Every file read, relative to the workspace root.
    pub files: Vec<PathBuf>,
    pub calls: Vec<SdkCall>,
    /// `SLIPWAY_*` string literals, with the first place each appears.
    pub env_vars: BTreeMap<String, Site>,
}

impl Scan {
    pub fn actions(&self) -> BTreeSet<String> {
        self.calls
            .iter()
            .flat_map(|c| c.actions.iter().cloned())
            .collect()
    }
}

/// Scans what function `name` (crate `crates/<name>`) compiles that can reach AWS.
pub fn scan_function(root: &Path, name: &str) -> Result<Scan, String> {
    let crate_src = root.join("crates").join(name).join("src");
    let mut files = rust_files(&crate_src)?;
    if files.is_empty() {
        return Err(format!("{} holds no Rust file", crate_src.display()));
    }
    files.extend(aws_modules(root, &files)?);
    files.sort();
    files.dedup();

    let ops = sdk_operations();
    let call_re =
        Regex::new(r"\.\s*([a-z][a-z0-9_]*)\s*(?:::\s*<[^>]*>\s*)?\(").expect("valid regex");
    let env_re = Regex::new(r#""(SLIPWAY_[A-Z0-9_]*[A-Z0-9])""#).expect("valid regex");
    let mut scan = Scan::default();
    for file in &files {
        let code = code_of(file)?;
        let rel = file.strip_prefix(root).unwrap_or(file).to_path_buf();
        let used_sdks: Vec<&str> = [
            "sqs",
            "sns",
            "ssm",
            "codebuild",
            "eventbridge",
            "dynamodb",
            "ecr",
        ]
        .into_iter()
        .filter(|s| code.contains(&format!("aws_sdk_{s}")))
        .collect();
        for m in call_re.captures_iter(&code) {
            let method = &m[1];
            let candidates: Vec<&SdkOperation> =
                ops.iter().filter(|o| o.method == method).collect();
            if candidates.is_empty() {
                continue;
            }
            // A method name several SDKs share is resolved by the SDKs the file names.
            let narrowed: Vec<&SdkOperation> = candidates
                .iter()
                .copied()
                .filter(|o| used_sdks.contains(&o.sdk.as_str()))
                .collect();
            let chosen = if narrowed.is_empty() {
                candidates
            } else {
                narrowed
            };
            scan.calls.push(SdkCall {
                site: Site {
                    file: rel.clone(),
                    line: line_of(&code, m.get(0).expect("whole match").start()),
                },
                method: method.to_string(),
                actions: chosen.iter().map(|o| o.action.clone()).collect(),
            });
        }
        for m in env_re.captures_iter(&code) {
            scan.env_vars.entry(m[1].to_string()).or_insert(Site {
                file: rel.clone(),
                line: line_of(&code, m.get(0).expect("whole match").start()),
            });
        }
        scan.files.push(rel);
    }
    Ok(scan)
}

/// A file's code without test code and comments, line numbers kept.
fn code_of(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot be read: {e}", path.display()))?;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        // Test modules sit at the end of a file by convention; nothing after them ships. The
        // same holds for test-build-only items (`slipway_aws::clock`'s injected clock).
        if matches!(line.trim(), "#[cfg(test)]" | "#[cfg(debug_assertions)]") {
            break;
        }
        out.push_str(strip_comment(line));
        out.push('\n');
    }
    Ok(out)
}

/// Cuts a `//` comment, leaving `//` inside string literals alone.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut in_str = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            b'/' if !in_str && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
        i += 1;
    }
    line
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

fn rust_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: cannot be listed: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            out.extend(rust_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(out)
}

/// The `crates/aws` modules the given files use, and the modules those use in turn.
fn aws_modules(root: &Path, files: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let aws_src = root.join("crates/aws/src");
    let use_re =
        Regex::new(r"slipway_aws\s*::\s*(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)").expect("valid regex");
    let inner_re = Regex::new(r"\b(?:crate|super)\s*::\s*(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")
        .expect("valid regex");
    let mut wanted: Vec<String> = Vec::new();
    for f in files {
        let code = code_of(f)?;
        for m in use_re.captures_iter(&code) {
            wanted.extend(first_segments(&m[1]));
        }
    }
    let lib = aws_src.join("lib.rs");
    let lib_code = if lib.exists() {
        code_of(&lib)?
    } else {
        String::new()
    };
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    if !wanted.is_empty() && lib.exists() {
        out.push(lib.clone());
    }
    while let Some(item) = wanted.pop() {
        if item == "self" || !seen.insert(item.clone()) {
            continue;
        }
        let module_files = module_files(&aws_src, &item)?;
        if module_files.is_empty() {
            // Not a module: an item the crate root defines or re-exports (`pub use m::Item`).
            let reexport = Regex::new(&format!(
                r"pub\s+use\s+([a-z_][a-z0-9_]*)\s*::[^;]*\b{}\b",
                regex::escape(&item)
            ))
            .expect("valid regex");
            wanted.extend(reexport.captures_iter(&lib_code).map(|c| c[1].to_string()));
            continue;
        }
        for f in &module_files {
            let code = code_of(f)?;
            for m in inner_re.captures_iter(&code) {
                wanted.extend(first_segments(&m[1]));
            }
        }
        out.extend(module_files);
    }
    Ok(out)
}

/// `{sqs::SqsJobQueue, ssm}` → `sqs`, `ssm`; `sqs` → `sqs`.
fn first_segments(path: &str) -> Vec<String> {
    path.trim_matches(|c| c == '{' || c == '}')
        .split(',')
        .filter_map(|p| p.split("::").next())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn module_files(aws_src: &Path, module: &str) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let file = aws_src.join(format!("{module}.rs"));
    if file.is_file() {
        out.push(file);
    }
    out.extend(rust_files(&aws_src.join(module))?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_cut_but_strings_kept() {
        assert_eq!(
            strip_comment("a.publish() // .start_build()"),
            "a.publish() "
        );
        assert_eq!(
            strip_comment(r#"let u = "https://x"; // c"#),
            r#"let u = "https://x"; "#
        );
    }

    #[test]
    fn use_groups_give_their_modules() {
        assert_eq!(first_segments("{sqs::SqsJobQueue, ssm}"), ["sqs", "ssm"]);
        assert_eq!(first_segments("codebuild"), ["codebuild"]);
    }
}
