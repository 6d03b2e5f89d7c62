//! Who may read the pages and act on builds (`[web]`), and the cross-site request checks of the
//! actions (cancel, retry): the request must come from the server's own origin and carry a
//! token signed by the server for the same principal.

use std::path::Path;

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::WebConfig;

/// How long a page's action token stays valid.
const CSRF_TTL_SECONDS: i64 = 12 * 3600;
/// The shortest bearer token accepted.
const MIN_TOKEN_BYTES: usize = 16;

/// Who makes a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials (or no `[web]` section).
    Anonymous,
    /// Basic auth with the configured user.
    User(String),
    /// The configured bearer token.
    Token,
}

impl Principal {
    fn binding(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".into(),
            Principal::User(u) => format!("user:{u}"),
            Principal::Token => "token".into(),
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("credentials are needed: basic auth or a bearer token")]
    Unauthenticated,
    #[error("the credentials do not match")]
    BadCredentials,
    #[error(
        "the request does not come from this server's pages (Origin, Referer or Sec-Fetch-Site)"
    )]
    CrossSite,
    #[error("the action token is missing, expired or not this session's; reload the page")]
    BadCsrfToken,
}

impl Denied {
    pub fn code(self) -> &'static str {
        match self {
            Denied::Unauthenticated => "unauthenticated",
            Denied::BadCredentials => "bad_credentials",
            Denied::CrossSite => "cross_site_request",
            Denied::BadCsrfToken => "csrf_token_invalid",
        }
    }
}

/// Why `[web]` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("[web] {what} {path}: {reason}")]
pub struct WebConfigError {
    what: &'static str,
    path: String,
    reason: String,
}

pub struct WebAuth {
    basic: Option<(String, SecretString)>,
    token: Option<SecretString>,
    public_read: bool,
    origin: Option<String>,
    /// Signs the action tokens; new at every start (a page older than the start reloads).
    key: [u8; 32],
}

fn read_secret(
    what: &'static str,
    path: &Path,
    min: usize,
) -> Result<SecretString, WebConfigError> {
    let bad = |reason: String| WebConfigError {
        what,
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.len() < min || value.chars().any(char::is_control) {
        return Err(bad(format!(
            "must hold one line of at least {min} bytes without control characters"
        )));
    }
    Ok(SecretString::from(value.to_string()))
}

impl WebAuth {
    /// Reads the secrets of `[web]`; `None` is no `[web]`: everything open.
    pub fn load(cfg: Option<&WebConfig>) -> Result<Self, WebConfigError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| WebConfigError {
            what: "action token key",
            path: "(system randomness)".into(),
            reason: e.to_string(),
        })?;
        let Some(cfg) = cfg else {
            return Ok(WebAuth {
                basic: None,
                token: None,
                public_read: true,
                origin: None,
                key,
            });
        };
        let basic = match (&cfg.username, &cfg.password_file) {
            (Some(u), Some(p)) => Some((u.clone(), read_secret("password_file", p, 1)?)),
            _ => None,
        };
        let token = match &cfg.token_file {
            Some(p) => Some(read_secret("token_file", p, MIN_TOKEN_BYTES)?),
            None => None,
        };
        Ok(WebAuth {
            basic,
            token,
            public_read: cfg.public_read,
            origin: cfg.origin.clone(),
            key,
        })
    }

    fn protected(&self) -> bool {
        self.basic.is_some() || self.token.is_some()
    }

    /// Whether a `WWW-Authenticate: Basic` challenge makes sense (browsers then ask).
    pub fn offers_basic(&self) -> bool {
        self.basic.is_some()
    }

    /// The request's principal; wrong credentials are refused, none are `Anonymous`.
    pub fn principal(&self, headers: &HeaderMap) -> Result<Principal, Denied> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(Principal::Anonymous);
        };
        let value = value.to_str().map_err(|_| Denied::BadCredentials)?;
        let (scheme, rest) = value.split_once(' ').ok_or(Denied::BadCredentials)?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            let want = self.token.as_ref().ok_or(Denied::BadCredentials)?;
            if bool::from(rest.as_bytes().ct_eq(want.expose_secret().as_bytes())) {
                return Ok(Principal::Token);
            }
            return Err(Denied::BadCredentials);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let (user, password) = self.basic.as_ref().ok_or(Denied::BadCredentials)?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| Denied::BadCredentials)?;
            let decoded = String::from_utf8(decoded).map_err(|_| Denied::BadCredentials)?;
            let (u, p) = decoded.split_once(':').ok_or(Denied::BadCredentials)?;
            // Both compared whole, in constant time, so timing tells nothing about either.
            let user_ok = u.as_bytes().ct_eq(user.as_bytes());
            let pass_ok = p.as_bytes().ct_eq(password.expose_secret().as_bytes());
            if bool::from(user_ok & pass_ok) {
                return Ok(Principal::User(user.clone()));
            }
            return Err(Denied::BadCredentials);
        }
        Err(Denied::BadCredentials)
    }

    /// May this principal read pages, the JSON history, logs and metrics?
    pub fn may_read(&self, p: &Principal) -> Result<(), Denied> {
        if !self.protected() || self.public_read || *p != Principal::Anonymous {
            Ok(())
        } else {
            Err(Denied::Unauthenticated)
        }
    }

    /// May this principal cancel and retry? (Credentials whenever `[web]` sets any.)
    pub fn may_act(&self, p: &Principal) -> Result<(), Denied> {
        if !self.protected() || *p != Principal::Anonymous {
            Ok(())
        } else {
            Err(Denied::Unauthenticated)
        }
    }

    fn mac(&self, p: &Principal, expires: i64) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        m.update(format!("slipway-csrf-v1\n{}\n{expires}", p.binding()).as_bytes());
        m.finalize().into_bytes().to_vec()
    }

    /// A token for the forms of a page shown to `p` at `now` (Unix seconds).
    pub fn csrf_token(&self, p: &Principal, now: i64) -> String {
        let expires = now + CSRF_TTL_SECONDS;
        format!("{expires}.{}", hex::encode(self.mac(p, expires)))
    }

    pub fn check_csrf(&self, p: &Principal, token: &str, now: i64) -> Result<(), Denied> {
        let (expires, mac) = token.split_once('.').ok_or(Denied::BadCsrfToken)?;
        let expires: i64 = expires.parse().map_err(|_| Denied::BadCsrfToken)?;
        let mac = hex::decode(mac).map_err(|_| Denied::BadCsrfToken)?;
        if expires < now || expires > now + CSRF_TTL_SECONDS {
            return Err(Denied::BadCsrfToken);
        }
        if bool::from(mac.ct_eq(&self.mac(p, expires))) {
            Ok(())
        } else {
            Err(Denied::BadCsrfToken)
        }
    }

    /// The origin the pages are served from: `[web] origin`, else the request's `Host`.
    pub fn origin(&self, headers: &HeaderMap) -> Option<String> {
        if let Some(o) = &self.origin {
            return Some(o.clone());
        }
        let host = headers.get(header::HOST)?.to_str().ok()?;
        Some(format!("http://{host}"))
    }

    /// The same-origin check of an action: a browser's `Sec-Fetch-Site`, `Origin` (or, without
    /// it, `Referer`) must name this server. A request with none of them is not a browser's
    /// form; it still needs the token.
    pub fn same_origin(&self, headers: &HeaderMap) -> Result<(), Denied> {
        let get = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
        if let Some(site) = get(header::HeaderName::from_static("sec-fetch-site"))
            && !matches!(site, "same-origin" | "none")
        {
            return Err(Denied::CrossSite);
        }
        let Some(host) = get(header::HOST) else {
            return Err(Denied::CrossSite);
        };
        let ours = |url: &str| -> bool {
            let Ok(u) = url::Url::parse(url) else {
                return false;
            };
            match &self.origin {
                Some(o) => u.origin().ascii_serialization() == *o,
                None => {
                    let authority = match (u.host_str(), u.port()) {
                        (Some(h), Some(p)) => format!("{h}:{p}"),
                        (Some(h), None) => h.to_string(),
                        _ => return false,
                    };
                    authority.eq_ignore_ascii_case(host)
                }
            }
        };
        if let Some(origin) = get(header::ORIGIN) {
            return if ours(origin) {
                Ok(())
            } else {
                Err(Denied::CrossSite)
            };
        }
        if let Some(referer) = get(header::REFERER) {
            return if ours(referer) {
                Ok(())
            } else {
                Err(Denied::CrossSite)
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn open() -> WebAuth {
        WebAuth::load(None).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn a_token_is_bound_to_its_principal_and_expires() {
        let a = open();
        let t = a.csrf_token(&Principal::Anonymous, 1000);
        assert_eq!(a.check_csrf(&Principal::Anonymous, &t, 1001), Ok(()));
        assert_eq!(
            a.check_csrf(&Principal::User("ops".into()), &t, 1001),
            Err(Denied::BadCsrfToken)
        );
        assert_eq!(
            a.check_csrf(&Principal::Anonymous, &t, 1000 + CSRF_TTL_SECONDS + 1),
            Err(Denied::BadCsrfToken)
        );
        // Another server (another key) does not accept it.
        assert_eq!(
            open().check_csrf(&Principal::Anonymous, &t, 1001),
            Err(Denied::BadCsrfToken)
        );
        let forged = format!("{}.{}", 1000 + CSRF_TTL_SECONDS, "00".repeat(32));
        assert_eq!(
            a.check_csrf(&Principal::Anonymous, &forged, 1001),
            Err(Denied::BadCsrfToken)
        );
    }

    #[test]
    fn only_this_origin_may_post() {
        let a = open();
        let ok = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert_eq!(a.same_origin(&ok), Ok(()));
        for bad in [
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "https://evil.example"),
            ]),
            headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]),
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("referer", "http://127.0.0.1:9999/x"),
            ]),
            headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")]),
        ] {
            assert_eq!(a.same_origin(&bad), Err(Denied::CrossSite), "{bad:?}");
        }
    }

    #[test]
    fn credentials_are_checked_whole() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "correct horse\n").unwrap();
        let tok = dir.path().join("tok");
        std::fs::write(&tok, "0123456789abcdef0123").unwrap();
        let cfg = WebConfig {
            username: Some("ops".into()),
            password_file: Some(pw),
            token_file: Some(tok),
            public_read: false,
            origin: None,
        };
        let a = WebAuth::load(Some(&cfg)).unwrap();
        let basic = |s: &str| {
            headers(&[(
                "authorization",
                &format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(s)
                ),
            )])
        };
        assert_eq!(
            a.principal(&basic("ops:correct horse")),
            Ok(Principal::User("ops".into()))
        );
        assert_eq!(
            a.principal(&basic("ops:correct hors")),
            Err(Denied::BadCredentials)
        );
        assert_eq!(
            a.principal(&basic("op:correct horse")),
            Err(Denied::BadCredentials)
        );
        assert_eq!(
            a.principal(&headers(&[(
                "authorization",
                "Bearer 0123456789abcdef0123"
            )])),
            Ok(Principal::Token)
        );
        assert_eq!(a.principal(&HeaderMap::new()), Ok(Principal::Anonymous));
        assert_eq!(
            a.may_read(&Principal::Anonymous),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            a.may_act(&Principal::Anonymous),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(a.may_act(&Principal::Token), Ok(()));
    }
}
