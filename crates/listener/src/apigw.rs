//! API Gateway HTTP API events (payload format 2.0) in and out, read for the listener only.
//!
//! `lambda_http` reads this event into its own types: the whole event is copied into a
//! `RawValue`, then the base64 body into a `String`, then decoded into a third buffer — three
//! copies of a body that may be 10 MiB while the runtime still holds the event's bytes. This
//! reader takes what the listener uses (method, headers, body) and decodes the base64 body straight
//! from the event's bytes into the one buffer the listener verifies and parses.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// One request as API Gateway hands it to the function.
#[derive(Debug)]
pub struct ApiGatewayRequest {
    pub method: Method,
    /// One value per name, as API Gateway sends them (repeated headers joined with commas).
    pub headers: HeaderMap,
    /// The body, base64-decoded when API Gateway encoded it.
    pub body: Vec<u8>,
}

impl ApiGatewayRequest {
    /// Reads an event from its JSON text (what the Lambda runtime API delivers).
    pub fn from_slice(event: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(event)
    }
}

/// The function's answer, as API Gateway reads it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGatewayResponse {
    pub status_code: u16,
    pub headers: ResponseHeaders,
    pub body: String,
    pub is_base64_encoded: bool,
}

#[derive(Debug, Serialize)]
pub struct ResponseHeaders {
    #[serde(rename = "content-type")]
    pub content_type: &'static str,
}

impl<'de> Deserialize<'de> for ApiGatewayRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EventVisitor)
    }
}

/// The body as it stands in the event: borrowed from the event's bytes unless JSON escapes made
/// the parser copy it.
enum RawBody<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl RawBody<'_> {
    fn as_str(&self) -> &str {
        match self {
            RawBody::Borrowed(s) => s,
            RawBody::Owned(s) => s,
        }
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = ApiGatewayRequest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an API Gateway HTTP API event (payload format 2.0)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut method = None;
        let mut headers = HeaderMap::new();
        let mut body: Option<RawBody<'de>> = None;
        let mut base64 = false;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Headers => headers = map.next_value::<Headers>()?.0,
                Key::RequestContext => method = map.next_value::<RequestContext>()?.method,
                Key::Body => body = map.next_value_seed(OptionalBody)?,
                Key::IsBase64Encoded => base64 = map.next_value()?,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let method =
            method.ok_or_else(|| de::Error::missing_field("requestContext.http.method"))?;
        let body = match body {
            None => Vec::new(),
            // The one copy of the body the listener works on; the event's text is freed by the
            // runtime once this returns.
            Some(raw) if base64 => base64_simd::STANDARD
                .decode_to_vec(raw.as_str())
                .map_err(|_| de::Error::custom("the event's body is not valid base64"))?,
            Some(RawBody::Owned(s)) => s.into_bytes(),
            Some(RawBody::Borrowed(s)) => s.as_bytes().to_vec(),
        };
        Ok(ApiGatewayRequest {
            method,
            headers,
            body,
        })
    }
}

enum Key {
    Headers,
    RequestContext,
    Body,
    IsBase64Encoded,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "headers" => Key::Headers,
                    "requestContext" => Key::RequestContext,
                    "body" => Key::Body,
                    "isBase64Encoded" => Key::IsBase64Encoded,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// `body`: absent, `null` or a string.
struct OptionalBody;

impl<'de> DeserializeSeed<'de> for OptionalBody {
    type Value = Option<RawBody<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalBody {
    type Value = Option<RawBody<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the body as a string")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(RawBody::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(RawBody::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(RawBody::Owned(v)))
    }
}

/// `headers`: names API Gateway lowercased, one value each. A name or value `http` cannot hold is
/// left out (API Gateway does not forward such headers; the listener then answers as if it was
/// never sent).
struct Headers(HeaderMap);

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Headers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of header names and values")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Headers, E> {
                Ok(Headers(HeaderMap::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
                let mut headers = HeaderMap::new();
                while let Some((name, value)) =
                    map.next_entry::<std::borrow::Cow<'de, str>, std::borrow::Cow<'de, str>>()?
                {
                    if let (Ok(n), Ok(v)) = (
                        HeaderName::from_bytes(name.as_bytes()),
                        HeaderValue::from_str(&value),
                    ) {
                        headers.append(n, v);
                    }
                }
                Ok(Headers(headers))
            }
        }
        d.deserialize_any(V)
    }
}

/// `requestContext.http.method`.
struct RequestContext {
    method: Option<Method>,
}

impl<'de> Deserialize<'de> for RequestContext {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Http<'a> {
            #[serde(borrow)]
            method: std::borrow::Cow<'a, str>,
        }
        #[derive(Deserialize)]
        struct Context<'a> {
            #[serde(borrow)]
            http: Option<Http<'a>>,
        }
        let c = Context::deserialize(d)?;
        let method = match c.http {
            Some(h) => Some(Method::from_bytes(h.method.as_bytes()).map_err(|_| {
                de::Error::custom("requestContext.http.method is not an HTTP method")
            })?),
            None => None,
        };
        Ok(RequestContext { method })
    }
}
