//! GitHub webhook signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
//!
//! Several secrets may be active at once so that a secret can be rotated without downtime: add the
//! new one, change it in GitHub, then remove the old one. Comparison is constant time (`hmac`'s
//! `verify_slice`, which uses `subtle`).

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a request's signature was not accepted. Each maps to a stable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error(
        "only a SHA-1 signature (X-Hub-Signature) was sent; slipway requires X-Hub-Signature-256 (HMAC-SHA256)"
    )]
    Sha1Only,
    #[error("X-Hub-Signature-256 must be `sha256=` followed by 64 hexadecimal digits")]
    Malformed,
    #[error("X-Hub-Signature-256 was sent more than once; send exactly one signature")]
    Ambiguous,
    #[error("the signature does not match the body under any active webhook secret")]
    Mismatch,
}

impl SignatureError {
    /// Stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "signature_missing",
            Self::Sha1Only => "signature_sha256_required",
            Self::Malformed => "signature_malformed",
            Self::Ambiguous => "signature_ambiguous",
            Self::Mismatch => "signature_mismatch",
        }
    }
}

/// Why a set of webhook secrets could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error("no webhook secret is set: give at least one non-empty line")]
    Empty,
    #[error("webhook secret on line {line} is shorter than {min} bytes; use a long random secret")]
    TooShort { line: usize, min: usize },
}

/// The active webhook secrets. `Debug` never shows them.
pub struct WebhookSecrets {
    secrets: Vec<SecretSlice<u8>>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecrets({} active, redacted)", self.secrets.len())
    }
}

/// Secrets shorter than this are refused at start: GitHub's own examples use a 26-byte secret.
pub const MIN_SECRET_BYTES: usize = 16;

impl WebhookSecrets {
    /// Parses one secret per line (blank lines and surrounding whitespace ignored), the format of the
    /// SSM parameter and of `slipway serve`'s secret file.
    pub fn parse(raw: &str) -> Result<Self, SecretsError> {
        let mut secrets = Vec::new();
        for (i, line) in raw.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if line.len() < MIN_SECRET_BYTES {
                return Err(SecretsError::TooShort {
                    line: i + 1,
                    min: MIN_SECRET_BYTES,
                });
            }
            secrets.push(SecretSlice::from(line.as_bytes().to_vec()));
        }
        if secrets.is_empty() {
            return Err(SecretsError::Empty);
        }
        Ok(Self { secrets })
    }

    /// Builds the set from raw secrets without the length rule (for GitHub's published test vector).
    pub fn from_secrets<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        Self {
            secrets: secrets
                .into_iter()
                .map(|s| SecretSlice::from(s.as_ref().to_vec()))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Verifies the signature headers against the raw body. `sha256` holds every value of
    /// `X-Hub-Signature-256` that was sent; `sha1_present` says whether `X-Hub-Signature` was.
    /// Returns the index of the secret that matched.
    pub fn verify(
        &self,
        sha256: &[&[u8]],
        sha1_present: bool,
        body: &[u8],
    ) -> Result<usize, SignatureError> {
        let header = match sha256 {
            [] if sha1_present => return Err(SignatureError::Sha1Only),
            [] => return Err(SignatureError::Missing),
            [one] => *one,
            _ => return Err(SignatureError::Ambiguous),
        };
        // API Gateway joins repeated headers with commas.
        if header.contains(&b',') {
            return Err(SignatureError::Ambiguous);
        }
        let digest = parse_signature(header)?;
        // Every secret is tried so that the time taken does not say which one matched.
        let mut matched = None;
        for (i, secret) in self.secrets.iter().enumerate() {
            let mut mac = HmacSha256::new_from_slice(secret.expose_secret())
                .expect("HMAC accepts keys of any length");
            mac.update(body);
            if mac.verify_slice(&digest).is_ok() && matched.is_none() {
                matched = Some(i);
            }
        }
        matched.ok_or(SignatureError::Mismatch)
    }
}

fn parse_signature(header: &[u8]) -> Result<[u8; 32], SignatureError> {
    let header = header.trim_ascii();
    let hex_part = header
        .strip_prefix(b"sha256=")
        .ok_or(SignatureError::Malformed)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out).map_err(|_| SignatureError::Malformed)?;
    Ok(out)
}

/// The `X-Hub-Signature-256` value GitHub would send for `body` under `secret`
/// (used by `slipway replay` and by tests).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's published test vector ("Validating webhook deliveries").
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIG: &[u8] = b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_test_vector_signs_and_verifies() {
        assert_eq!(sign(SECRET.as_bytes(), BODY).as_bytes(), SIG);
        let secrets = WebhookSecrets::from_secrets([SECRET]);
        assert_eq!(secrets.verify(&[SIG], false, BODY), Ok(0));
    }

    #[test]
    fn a_changed_body_or_signature_is_refused() {
        let secrets = WebhookSecrets::from_secrets([SECRET]);
        assert_eq!(
            secrets.verify(&[SIG], false, b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        let mut bad = SIG.to_vec();
        *bad.last_mut().unwrap() = b'6';
        assert_eq!(
            secrets.verify(&[&bad], false, BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rotation_accepts_either_active_secret() {
        let secrets =
            WebhookSecrets::parse("\n  new-secret-0123456789  \nIt's a Secret to Everybody\n")
                .unwrap();
        assert_eq!(secrets.len(), 2);
        assert_eq!(secrets.verify(&[SIG], false, BODY), Ok(1));
        let new_sig = sign(b"new-secret-0123456789", BODY);
        assert_eq!(secrets.verify(&[new_sig.as_bytes()], false, BODY), Ok(0));
    }

    #[test]
    fn header_shapes() {
        let s = WebhookSecrets::from_secrets([SECRET]);
        assert_eq!(s.verify(&[], false, BODY), Err(SignatureError::Missing));
        assert_eq!(s.verify(&[], true, BODY), Err(SignatureError::Sha1Only));
        assert_eq!(
            s.verify(&[SIG, SIG], false, BODY),
            Err(SignatureError::Ambiguous)
        );
        let joined = [SIG, b",", SIG].concat();
        assert_eq!(
            s.verify(&[&joined], false, BODY),
            Err(SignatureError::Ambiguous)
        );
        for bad in [
            &b"sha1=757107ea0eb2509fc211221cce984b8a37570b6d"[..],
            b"sha256=",
            b"sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
            b"757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ] {
            assert_eq!(
                s.verify(&[bad], false, BODY),
                Err(SignatureError::Malformed)
            );
        }
    }

    #[test]
    fn secrets_file_rules() {
        assert_eq!(
            WebhookSecrets::parse(" \n\n").unwrap_err(),
            SecretsError::Empty
        );
        assert_eq!(
            WebhookSecrets::parse("long-enough-secret-1\nshort").unwrap_err(),
            SecretsError::TooShort { line: 2, min: 16 }
        );
        let dbg = format!(
            "{:?}",
            WebhookSecrets::parse("long-enough-secret-1").unwrap()
        );
        assert!(!dbg.contains("long-enough"), "{dbg}");
    }
}
