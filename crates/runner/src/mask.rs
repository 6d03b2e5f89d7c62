//! Secret values masked in build logs, as CodeBuild masks parameters.

/// Replaces each secret value in a line with `***`.
pub(crate) struct Masker {
    /// Longest first, so that a secret containing another is masked whole.
    secrets: Vec<String>,
}

impl Masker {
    pub(crate) fn new(mut secrets: Vec<String>) -> Self {
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    pub(crate) fn mask(&self, line: &str) -> String {
        let mut s = line.to_string();
        for secret in &self.secrets {
            if s.contains(secret.as_str()) {
                s = s.replace(secret.as_str(), "***");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_inside_another_is_masked_whole() {
        let m = Masker::new(vec!["abc".into(), "xxabcxx".into()]);
        assert_eq!(m.mask("pw=xxabcxx and abc"), "pw=*** and ***");
        assert_eq!(m.mask("nothing here"), "nothing here");
    }
}
