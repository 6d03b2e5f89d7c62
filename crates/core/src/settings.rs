//! Settings read from a key/value source: a Lambda's environment in production, a map in tests.
//! One reading of "set", "true/false" and numbers for every function, and one error that names the
//! variable to fix (never its value, which may be close to a secret).

use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl SettingError {
    pub fn code(&self) -> &'static str {
        match self {
            SettingError::Missing(_) => "missing_setting",
            SettingError::Invalid { .. } => "invalid_setting",
        }
    }

    pub fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        SettingError::Invalid {
            name,
            reason: reason.into(),
        }
    }
}

/// A source of settings. A value that is empty or only spaces counts as not set.
pub struct Vars<F>(F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    pub fn new(source: F) -> Self {
        Vars(source)
    }

    /// The trimmed value, if set.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, SettingError> {
        self.get(name).ok_or(SettingError::Missing(name))
    }

    /// `true` or `false`; not set is `false`.
    pub fn flag(&self, name: &'static str) -> Result<bool, SettingError> {
        match self.get(name).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(SettingError::invalid(name, "must be true or false")),
        }
    }

    /// A number in `range`, or `default` when not set.
    pub fn number<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, SettingError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<T>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    SettingError::invalid(
                        name,
                        format!("must be a number from {} to {}", range.start(), range.end()),
                    )
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars<impl Fn(&str) -> Option<String>> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Vars::new(move |k| map.get(k).cloned())
    }

    #[test]
    fn set_required_flags_and_numbers() {
        let v = vars(&[
            ("A", " x "),
            ("E", "  "),
            ("T", "true"),
            ("B", "yes"),
            ("N", "7"),
        ]);
        assert_eq!(v.get("A").as_deref(), Some("x"));
        assert_eq!(v.get("E"), None);
        assert_eq!(v.required("E"), Err(SettingError::Missing("E")));
        assert_eq!(v.flag("T"), Ok(true));
        assert_eq!(v.flag("UNSET"), Ok(false));
        assert_eq!(v.flag("B").unwrap_err().code(), "invalid_setting");
        assert_eq!(v.number("N", 3u32, 1..=10), Ok(7));
        assert_eq!(v.number("UNSET", 3u32, 1..=10), Ok(3));
        let e = v.number("N", 3u32, 1..=5).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable N is invalid: must be a number from 1 to 5"
        );
    }
}
