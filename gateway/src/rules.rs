//! The gateway's CheckAction rule table: allow, deny or require approval,
//! by tool name.
//!
//! Guarantees: the first matching rule wins; a tool that no rule matches
//! gets the table's default (deny unless configured, the safe side);
//! parsing a rule file never panics and reports the first bad line.
//!
//! File format, one rule per line, `#` starts a comment:
//!
//! ```text
//! allow   read_file
//! deny    rm_*            # a trailing * matches any suffix
//! approve deploy 30       # answer PENDING; reviewer has 30 s
//! hold    wire_money 60   # hold CheckAction open until decided (60 s)
//! default allow
//! ```

use std::time::Duration;

/// The default time a reviewer has to answer an approval.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(300);

/// What a rule decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect {
    /// Answer ALLOW.
    Allow,
    /// Answer DENY.
    Deny,
    /// Answer PENDING with an approval id; the verdict arrives on the
    /// invalidation stream as ApprovalResolved.
    Approve {
        /// How long the reviewer has.
        timeout: Duration,
    },
    /// Hold the CheckAction call open until a reviewer decides (ALLOW or
    /// DENY) or the timeout passes (DENY).
    Hold {
        /// How long the reviewer has.
        timeout: Duration,
    },
}

/// One rule: a tool-name pattern and its effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Exact tool name, or a prefix followed by `*`.
    pub pattern: String,
    /// The decision.
    pub effect: Effect,
}

impl Rule {
    /// Whether this rule matches `tool`.
    pub fn matches(&self, tool: &str) -> bool {
        match self.pattern.strip_suffix('*') {
            Some(prefix) => tool.starts_with(prefix),
            None => self.pattern == tool,
        }
    }
}

/// An ordered rule table with a default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleTable {
    /// Rules, first match wins.
    pub rules: Vec<Rule>,
    /// The effect when nothing matches.
    pub default: Effect,
}

impl Default for RuleTable {
    fn default() -> Self {
        RuleTable {
            rules: Vec::new(),
            default: Effect::Deny,
        }
    }
}

/// A rule file line that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// A timeout that is not a whole number of seconds.
    #[error("rule line {line}: timeout {value:?} is not a number of seconds")]
    Timeout {
        /// 1-based line number.
        line: usize,
        /// The timeout as written.
        value: String,
        /// Why it did not parse.
        #[source]
        source: std::num::ParseIntError,
    },
    /// A line that is not a rule (no underlying cause).
    #[error("rule line {line}: {problem}")]
    Invalid {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
}

impl RuleError {
    /// The 1-based number of the line that could not be read.
    pub fn line(&self) -> usize {
        match self {
            RuleError::Timeout { line, .. } | RuleError::Invalid { line, .. } => *line,
        }
    }
}

impl RuleTable {
    /// A table from rules, defaulting to deny.
    pub fn new(rules: Vec<Rule>) -> Self {
        RuleTable {
            rules,
            default: Effect::Deny,
        }
    }

    /// The effect for `tool`.
    pub fn decide(&self, tool: &str) -> Effect {
        self.rules
            .iter()
            .find(|r| r.matches(tool))
            .map(|r| r.effect)
            .unwrap_or(self.default)
    }

    /// Parse the rule-file format described in the module docs.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let mut table = RuleTable::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let line_no = i + 1;
            let err = |problem: String| RuleError::Invalid {
                line: line_no,
                problem,
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            let timeout = |w: Option<&&str>| -> Result<Duration, RuleError> {
                match w {
                    None => Ok(DEFAULT_APPROVAL_TIMEOUT),
                    Some(s) => s.parse::<u64>().map(Duration::from_secs).map_err(|source| {
                        RuleError::Timeout {
                            line: line_no,
                            value: (*s).to_owned(),
                            source,
                        }
                    }),
                }
            };
            match words.as_slice() {
                ["default", "allow"] => table.default = Effect::Allow,
                ["default", "deny"] => table.default = Effect::Deny,
                ["default", other] => {
                    return Err(err(format!("default must be allow or deny, not {other:?}")))
                }
                [kind, pattern, rest @ ..] => {
                    let effect = match *kind {
                        "allow" | "deny" if !rest.is_empty() => {
                            return Err(err(format!("{kind} takes only a tool pattern")))
                        }
                        "allow" => Effect::Allow,
                        "deny" => Effect::Deny,
                        "approve" if rest.len() <= 1 => Effect::Approve {
                            timeout: timeout(rest.first())?,
                        },
                        "hold" if rest.len() <= 1 => Effect::Hold {
                            timeout: timeout(rest.first())?,
                        },
                        "approve" | "hold" => {
                            return Err(err(format!("{kind} takes a pattern and a timeout")))
                        }
                        other => {
                            return Err(err(format!(
                                "unknown rule {other:?} (allow, deny, approve, hold, default)"
                            )))
                        }
                    };
                    table.rules.push(Rule {
                        pattern: (*pattern).to_owned(),
                        effect,
                    });
                }
                _ => return Err(err(format!("cannot read {line:?}"))),
            }
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_first_match_wins() {
        let t = RuleTable::parse(
            "allow read_file\n# comment\ndeny rm_*\napprove deploy 30\nhold pay\napprove rm_safe\ndefault allow\n",
        )
        .unwrap();
        assert_eq!(t.decide("read_file"), Effect::Allow);
        assert_eq!(t.decide("rm_safe"), Effect::Deny, "rm_* comes first");
        assert_eq!(
            t.decide("deploy"),
            Effect::Approve {
                timeout: Duration::from_secs(30)
            }
        );
        assert_eq!(
            t.decide("pay"),
            Effect::Hold {
                timeout: DEFAULT_APPROVAL_TIMEOUT
            }
        );
        assert_eq!(t.decide("anything"), Effect::Allow);
        assert_eq!(RuleTable::default().decide("x"), Effect::Deny);
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let e = RuleTable::parse("allow a\nfrobnicate b\n").unwrap_err();
        assert_eq!(e.line(), 2);
        assert!(e.to_string().contains("unknown rule"), "{e}");
        assert_eq!(RuleTable::parse("approve x soon").unwrap_err().line(), 1);
        assert_eq!(RuleTable::parse("allow").unwrap_err().line(), 1);
        assert_eq!(RuleTable::parse("allow a b").unwrap_err().line(), 1);
    }
}
