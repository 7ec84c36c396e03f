//! [`LabelSelector`]: which jobs [`Scheduler::list`](super::Scheduler::list)
//! returns.
//!
//! Guarantees: a selector is a conjunction of terms; the empty selector
//! matches every job; parsing never panics and rejects what it cannot
//! read.

use super::job::Labels;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Term {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
}

/// A label query, Kubernetes-style: `team=infra,env!=prod,owner,!legacy`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    terms: Vec<Term>,
}

/// A selector string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad label selector term {0:?}")]
pub struct SelectorError(pub String);

impl LabelSelector {
    /// Matches every job.
    pub fn all() -> Self {
        Self::default()
    }

    /// The same, requiring `key = value`.
    pub fn eq(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.terms.push(Term::Eq(key.into(), value.into()));
        self
    }

    /// The same, requiring that `key` is absent or not `value`.
    pub fn not_eq(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.terms.push(Term::NotEq(key.into(), value.into()));
        self
    }

    /// The same, requiring that `key` is present.
    pub fn exists(mut self, key: impl Into<String>) -> Self {
        self.terms.push(Term::Exists(key.into()));
        self
    }

    /// The same, requiring that `key` is absent.
    pub fn not_exists(mut self, key: impl Into<String>) -> Self {
        self.terms.push(Term::NotExists(key.into()));
        self
    }

    /// Parse comma-separated terms: `k=v` (or `k==v`), `k!=v`, `k`, `!k`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut sel = Self::all();
        for raw in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let bad = || SelectorError(raw.to_owned());
            let term = if let Some((k, v)) = raw.split_once("!=") {
                Term::NotEq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = raw.split_once('=') {
                let v = v.strip_prefix('=').unwrap_or(v);
                Term::Eq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some(k) = raw.strip_prefix('!') {
                Term::NotExists(k.trim().to_owned())
            } else {
                Term::Exists(raw.to_owned())
            };
            let key = match &term {
                Term::Eq(k, _) | Term::NotEq(k, _) | Term::Exists(k) | Term::NotExists(k) => k,
            };
            if key.is_empty() || key.contains(['=', '!']) {
                return Err(bad());
            }
            sel.terms.push(term);
        }
        Ok(sel)
    }

    /// Whether `labels` satisfy every term.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.terms.iter().all(|t| match t {
            Term::Eq(k, v) => labels.get(k) == Some(v),
            Term::NotEq(k, v) => labels.get(k) != Some(v),
            Term::Exists(k) => labels.contains_key(k),
            Term::NotExists(k) => !labels.contains_key(k),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let l: Labels = [("team", "infra"), ("env", "dev")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert!(LabelSelector::all().matches(&l));
        assert!(LabelSelector::parse("team=infra, env!=prod, env, !legacy")
            .unwrap()
            .matches(&l));
        assert!(!LabelSelector::parse("team==ops").unwrap().matches(&l));
        assert!(!LabelSelector::parse("!env").unwrap().matches(&l));
        assert!(LabelSelector::parse("=x").is_err());
        assert!(!LabelSelector::parse("a=b=c")
            .unwrap()
            .matches(&Labels::new()));
        assert_eq!(LabelSelector::parse(""), Ok(LabelSelector::all()));
    }
}
