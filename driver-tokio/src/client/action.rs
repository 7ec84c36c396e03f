//! [`Action`]: every kind of action the protocol checks, each with its
//! context as WIRE.md declares it, for [`Tether::check_action`].
//!
//! Guarantees: each kind maps to its `ActionType` and its `ActionContext`
//! member and nothing else; the cache key of an action covers its kind and
//! every field of its context, exactly (length-prefixed; bytes that are not
//! UTF-8 hex-encoded behind another tag), so two different actions never
//! share a cached decision.
//!
//! [`Tether::check_action`]: super::Tether::check_action

use tether_proto::common::ActionType;
use tether_proto::policy::{
    action_context, FileOpContext, LlmCallContext, NetworkCallContext, ProcessExecContext,
    ToolCallContext, ToolResultContext,
};

use super::check::ToolCall;

/// A call to a language model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LlmCall {
    /// The model called.
    pub model: String,
    /// Tokens in the prompt.
    pub prompt_tokens: i32,
    /// Whether the prompt carries personal data.
    pub contains_pii: bool,
}

impl LlmCall {
    /// A call of `model`.
    pub fn new(model: impl Into<String>) -> Self {
        LlmCall {
            model: model.into(),
            ..Default::default()
        }
    }
}

/// A read, write or delete of a file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileOperation {
    /// What is done: for example "read", "write", "delete".
    pub operation: String,
    /// The file's path.
    pub path: String,
    /// Whether the runtime considers the path sensitive.
    pub is_sensitive_path: bool,
}

impl FileOperation {
    /// `operation` on `path`.
    pub fn new(operation: impl Into<String>, path: impl Into<String>) -> Self {
        FileOperation {
            operation: operation.into(),
            path: path.into(),
            ..Default::default()
        }
    }
}

/// An outbound network call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetworkCall {
    /// The host called.
    pub host: String,
    /// The port called.
    pub port: i32,
    /// The protocol, for example "https".
    pub protocol: String,
    /// Whether the runtime found the host in its allowlist.
    pub in_allowlist: bool,
}

impl NetworkCall {
    /// A call to `host:port` over `protocol`.
    pub fn new(host: impl Into<String>, port: i32, protocol: impl Into<String>) -> Self {
        NetworkCall {
            host: host.into(),
            port,
            protocol: protocol.into(),
            ..Default::default()
        }
    }
}

/// Starting a process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessExec {
    /// The program.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl ProcessExec {
    /// `command` with `args`.
    pub fn new(command: impl Into<String>, args: impl IntoIterator<Item = String>) -> Self {
        ProcessExec {
            command: command.into(),
            args: args.into_iter().collect(),
        }
    }
}

/// A tool's result, before the agent reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToolResult {
    /// Name of the tool.
    pub tool_name: String,
    /// Where the tool comes from (for example an MCP server).
    pub tool_source: String,
    /// The result, as JSON.
    pub result_json: Vec<u8>,
    /// Where the result came from, when known.
    pub source_url: String,
}

impl ToolResult {
    /// The result `result_json` of `tool_name`.
    pub fn new(tool_name: impl Into<String>, result_json: impl Into<Vec<u8>>) -> Self {
        ToolResult {
            tool_name: tool_name.into(),
            result_json: result_json.into(),
            ..Default::default()
        }
    }
}

/// One action to check, of any kind the protocol knows.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// A call to a language model.
    LlmCall(LlmCall),
    /// A call to a tool (what [`Tether::check`](super::Tether::check) takes).
    ToolCall(ToolCall),
    /// A file operation.
    FileOperation(FileOperation),
    /// A network call.
    NetworkCall(NetworkCall),
    /// Starting a process.
    ProcessExec(ProcessExec),
    /// A tool's result.
    ToolResult(ToolResult),
}

macro_rules! from_kind {
    ($($kind:ident),*) => {$(
        impl From<$kind> for Action {
            fn from(a: $kind) -> Self {
                Action::$kind(a)
            }
        }
    )*};
}
from_kind!(
    LlmCall,
    ToolCall,
    FileOperation,
    NetworkCall,
    ProcessExec,
    ToolResult
);

/// What the check pipeline needs of a checked thing: its cache key, its
/// wire form and a name for logs and errors.
pub(crate) trait Checkable: Sync {
    /// The cache key (see the module docs).
    fn fingerprint(&self) -> String;
    /// The wire `ActionType` and context.
    fn wire(&self) -> (ActionType, action_context::Action);
    /// A short name for logs and errors (the tool, the model, the path...).
    fn label(&self) -> &str;
}

impl Checkable for ToolCall {
    fn fingerprint(&self) -> String {
        // The tag keeps a tool call apart from every other kind.
        let mut key = Key::new('t', self.args_json.len());
        key.text(&self.tool_name)
            .text(&self.tool_source)
            .text(&self.target_url)
            .bytes(&self.args_json);
        key.0
    }

    fn wire(&self) -> (ActionType, action_context::Action) {
        (
            ActionType::ToolCall,
            action_context::Action::ToolCall(ToolCallContext {
                tool_name: self.tool_name.clone(),
                tool_source: self.tool_source.clone(),
                args_json: self.args_json.clone(),
                target_url: self.target_url.clone(),
            }),
        )
    }

    fn label(&self) -> &str {
        &self.tool_name
    }
}

impl Checkable for Action {
    fn fingerprint(&self) -> String {
        match self {
            Action::ToolCall(c) => c.fingerprint(),
            Action::LlmCall(c) => {
                let mut key = Key::new('l', 0);
                key.text(&c.model)
                    .number(i64::from(c.prompt_tokens))
                    .flag(c.contains_pii);
                key.0
            }
            Action::FileOperation(c) => {
                let mut key = Key::new('f', 0);
                key.text(&c.operation)
                    .text(&c.path)
                    .flag(c.is_sensitive_path);
                key.0
            }
            Action::NetworkCall(c) => {
                let mut key = Key::new('n', 0);
                key.text(&c.host)
                    .number(i64::from(c.port))
                    .text(&c.protocol)
                    .flag(c.in_allowlist);
                key.0
            }
            Action::ProcessExec(c) => {
                let mut key = Key::new('p', 0);
                key.text(&c.command).number(c.args.len() as i64);
                for a in &c.args {
                    key.text(a);
                }
                key.0
            }
            Action::ToolResult(c) => {
                let mut key = Key::new('r', c.result_json.len());
                key.text(&c.tool_name)
                    .text(&c.tool_source)
                    .text(&c.source_url)
                    .bytes(&c.result_json);
                key.0
            }
        }
    }

    fn wire(&self) -> (ActionType, action_context::Action) {
        use action_context::Action as W;
        match self {
            Action::ToolCall(c) => c.wire(),
            Action::LlmCall(c) => (
                ActionType::LlmCall,
                W::LlmCall(LlmCallContext {
                    model: c.model.clone(),
                    prompt_tokens: c.prompt_tokens,
                    contains_pii: c.contains_pii,
                }),
            ),
            Action::FileOperation(c) => (
                ActionType::FileOperation,
                W::FileOp(FileOpContext {
                    operation: c.operation.clone(),
                    path: c.path.clone(),
                    is_sensitive_path: c.is_sensitive_path,
                }),
            ),
            Action::NetworkCall(c) => (
                ActionType::NetworkCall,
                W::NetworkCall(NetworkCallContext {
                    host: c.host.clone(),
                    port: c.port,
                    protocol: c.protocol.clone(),
                    in_allowlist: c.in_allowlist,
                }),
            ),
            Action::ProcessExec(c) => (
                ActionType::ProcessExec,
                W::ProcessExec(ProcessExecContext {
                    command: c.command.clone(),
                    args: c.args.clone(),
                }),
            ),
            Action::ToolResult(c) => (
                ActionType::ToolResult,
                W::ToolResult(ToolResultContext {
                    tool_name: c.tool_name.clone(),
                    tool_source: c.tool_source.clone(),
                    result_json: c.result_json.clone(),
                    source_url: c.source_url.clone(),
                }),
            ),
        }
    }

    fn label(&self) -> &str {
        match self {
            Action::ToolCall(c) => &c.tool_name,
            Action::LlmCall(c) => &c.model,
            Action::FileOperation(c) => &c.path,
            Action::NetworkCall(c) => &c.host,
            Action::ProcessExec(c) => &c.command,
            Action::ToolResult(c) => &c.tool_name,
        }
    }
}

/// A cache key under construction: a kind tag, then each field
/// length-prefixed (no formatting machinery: this runs on every check,
/// cache hits included).
struct Key(String);

impl Key {
    fn new(kind: char, extra: usize) -> Self {
        let mut s = String::with_capacity(64 + 2 * extra);
        s.push(kind);
        Key(s)
    }

    fn len(&mut self, mut n: usize) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for d in &digits[at..] {
            self.0.push(char::from(*d));
        }
        self.0.push(':');
        self
    }

    fn text(&mut self, s: &str) -> &mut Self {
        self.len(s.len());
        self.0.push_str(s);
        self
    }

    fn number(&mut self, n: i64) -> &mut Self {
        if n < 0 {
            self.0.push('-');
        }
        self.len(n.unsigned_abs() as usize)
    }

    fn flag(&mut self, b: bool) -> &mut Self {
        self.0.push(if b { '1' } else { '0' });
        self
    }

    /// Exact bytes: as text when UTF-8, else hex behind another tag.
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        match std::str::from_utf8(b) {
            Ok(text) => {
                self.0.push('u');
                self.text(text)
            }
            Err(_) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.0.push('x');
                self.len(b.len());
                for byte in b {
                    self.0.push(char::from(HEX[usize::from(byte >> 4)]));
                    self.0.push(char::from(HEX[usize::from(byte & 0xf)]));
                }
                self
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_actions_never_share_a_key() {
        let actions: Vec<Action> = vec![
            ToolCall::new("ab").into(),
            ToolCall::new("a").with_args("b").into(),
            ToolCall::new("a").with_args(vec![0xff]).into(),
            ToolCall::new("a").with_args(vec![0xfe]).into(),
            ToolResult::new("ab", "").into(),
            LlmCall::new("gpt").into(),
            LlmCall {
                prompt_tokens: -1,
                ..LlmCall::new("gpt")
            }
            .into(),
            LlmCall {
                prompt_tokens: 1,
                ..LlmCall::new("gpt")
            }
            .into(),
            FileOperation::new("read", "/etc/passwd").into(),
            FileOperation::new("read/", "etc/passwd").into(),
            NetworkCall::new("example.com", 443, "https").into(),
            NetworkCall::new("example.com", 80, "https").into(),
            ProcessExec::new("ls", ["-l".to_owned()]).into(),
            ProcessExec::new("ls -l", []).into(),
            ProcessExec::new("ls", ["-l".to_owned(), String::new()]).into(),
        ];
        let keys: std::collections::HashSet<String> =
            actions.iter().map(Checkable::fingerprint).collect();
        assert_eq!(keys.len(), actions.len());
        // The same action, the same key.
        assert_eq!(
            Action::from(ToolCall::new("a")).fingerprint(),
            ToolCall::new("a").fingerprint()
        );
    }

    #[test]
    fn each_kind_maps_to_its_wire_type_and_context() {
        use action_context::Action as W;
        let cases: Vec<(Action, ActionType)> = vec![
            (LlmCall::new("m").into(), ActionType::LlmCall),
            (ToolCall::new("t").into(), ActionType::ToolCall),
            (
                FileOperation::new("read", "/p").into(),
                ActionType::FileOperation,
            ),
            (
                NetworkCall::new("h", 1, "tcp").into(),
                ActionType::NetworkCall,
            ),
            (ProcessExec::new("c", []).into(), ActionType::ProcessExec),
            (ToolResult::new("t", "{}").into(), ActionType::ToolResult),
        ];
        for (action, expected) in cases {
            let (ty, ctx) = action.wire();
            assert_eq!(ty, expected);
            let matches = matches!(
                (&action, &ctx),
                (Action::LlmCall(_), W::LlmCall(_))
                    | (Action::ToolCall(_), W::ToolCall(_))
                    | (Action::FileOperation(_), W::FileOp(_))
                    | (Action::NetworkCall(_), W::NetworkCall(_))
                    | (Action::ProcessExec(_), W::ProcessExec(_))
                    | (Action::ToolResult(_), W::ToolResult(_))
            );
            assert!(matches, "{action:?} -> {ctx:?}");
        }
    }
}
