//! WIRE.md against the `.proto` files, both ways.
//!
//! `proto/WIRE.md` is a byte-identical copy of the wire contract (checked
//! against `../shared/WIRE.md` beside the workspace whenever that file
//! exists). This test reads the copy and compares it with the crate's
//! compiled descriptors ([`tether_proto::FILE_DESCRIPTOR_SET`]):
//!
//! - every message, enum, field, value, number, type, oneof and rpc WIRE.md
//!   lists is declared identically in the `.proto` files ("differs" or
//!   "only in WIRE.md" otherwise);
//! - every message, enum, field, value, service and rpc of each `assembly.*`
//!   package WIRE.md has a section, service prose or declaration for is
//!   listed in WIRE.md ("only in proto" otherwise), and every `assembly.*`
//!   package has one.
//!
//! Every difference is reported in one failure message.
//!
//! # How WIRE.md is read
//!
//! A `## ` heading whose first word is a package sets the package of what
//! follows, and its first `code` span the service (`## assembly.policy.v1 —`
//! then `` `PolicyService` ``). Then:
//!
//! - Tables with header `message / enum | field or value | number | type`.
//!   A first cell names a message or enum (its first `code` span; the rest,
//!   such as "(composite identity)", is commentary); a blank first cell
//!   continues the one above. The second cell holds one item or a
//!   comma-separated list of items `` `name` [number] [type] ``, optionally
//!   prefixed with `` oneof `name`: `` (every item is then a member of that
//!   oneof). Items without their own number take the number cell's: `1`,
//!   `0,1,2,3` or `0..7`, one per such item. Items without their own type
//!   take the type cell's. A type cell of `enum` makes the row an enum's
//!   values, where `_PAUSE` after `OP_CONTROL_SIGNAL_UNSPECIFIED` stands for
//!   `OP_CONTROL_SIGNAL_PAUSE`. A row `` `A` / `B` | `a` / `b` | 1 |
//!   repeated x / y `` is two rows, one per `/` part (a leading `repeated`
//!   applies to every part).
//! - Tables with header `message / enum | fields (number)`: the second cell
//!   is `(empty)` or an item list whose items carry their own numbers. A
//!   run of consecutive items without a type ends in an item followed by a
//!   group type, `(strings)` or `(uint64)`, which types the whole run. A
//!   list whose items are all UPPER_CASE and untyped is an enum's values.
//! - A paragraph that starts with `` `package.Name`: `` followed by an item
//!   list declares that message or enum (WIRE.md declares
//!   `assembly.common.v1.AgentIdentityAssurance` this way).
//! - `` `rpc Name(stream? Request) returns (stream? Response)` `` spans in a
//!   section whose heading names a service are that service's methods.
//! - Service prose: a paragraph of a section without a package (such as
//!   "## Credentials and the agent lifecycle") that names a service
//!   `` `pkg.XxxService` `` (`assembly.agent.v1.AgentLifecycleService`)
//!   declares that service in `pkg`, and every bullet (a line starting
//!   `- `) of the paragraph must be one of
//!   - `` - `rpc ...`: declarations ``: a method of that service, then
//!     declarations of package `pkg`;
//!   - `` - Enums in `other.pkg`: declarations ``: declarations of
//!     `other.pkg`, each of which must read as an enum's values.
//!
//!   Declarations are separated by `;` or by a sentence's `.` (outside
//!   `code` and brackets): `` `Name` = items `` declares `Name`, and
//!   `request = items` / `response = items` the request / response message
//!   of the bullet's rpc. Items are read as in the tables, with no number
//!   or type cell: an item carries its own number or a range group `(1–4)`
//!   numbers the run of consecutive number-less items it ends, one by one;
//!   a group type types the run it ends; an item list that is all
//!   UPPER_CASE and untyped is an enum's values; each field and value
//!   keeps the line it is on. A field type `` `Name{field number [type], ...}` ``
//!   (`` `SuspendCommand{reason 1}` ``) declares message `Name` of `pkg`
//!   with those fields, read as items of the same prose. A `` `Name` `` is
//!   `pkg`'s if WIRE.md declares it there, else the one declaration of that
//!   name in any package (`AgentId` is `assembly.common.v1.AgentId`; a name
//!   declared in several packages is unreadable). A field with neither a
//!   type nor a group type (the prose's "request = `agent_id` 1,
//!   `credential_token` 2, ...") takes, in this order:
//!   1. the type the same paragraph first gives, by its own or its group
//!      type, to a field of that name (`agent_id` is `AgentId` from
//!      `ChallengeRequest`, `credential_token` is `string` from
//!      `RegisterResponse`; a later, different typing of the name, such as
//!      `DeregisterResponse.agent_id` `string`, counts only for itself);
//!   2. `string`, for a name the paragraph has not typed before: the prose
//!      writes out every other type and leaves bare only free text
//!      (`reason`, `note`).
//!
//!   Each field so typed is listed on stderr with its rule, and
//!   `every_shape_of_wire_md_is_read` pins the list. Anything else in such
//!   a paragraph (an `rpc` span outside a bullet's start, a bullet or a
//!   declaration of another shape) is unreadable. `rpc` spans in
//!   paragraphs of sections without a package that name no service are
//!   not checked, and listed on stderr.
//!
//! Types: the proto3 scalar keywords, `` `Name` `` (a message or enum of the
//! section's package), `` `pkg.Name` ``, `repeated T`, `optional T` (a
//! proto3 `optional` field; `(optional strings)` as a group type),
//! `map<K,V>` (K a scalar that protobuf allows as a map key, V a scalar or
//! `` `Name` ``), a trailing parenthetical comment
//! (`string (empty = every agent)`), the group plurals above, `messages
//! below` (for a oneof's members: the message listed further down the same
//! table whose name starts with the member's, ignoring case and
//! underscores: `llm_call` is `LLMCallContext`), the inline messages of
//! service prose, and the prose words of [`PROSE_TYPES`]. Anything else
//! fails the test as unreadable rather than going unchecked, as does a
//! table of any other shape.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet,
    ServiceDescriptorProto,
};

/// Prose words WIRE.md uses as a type, per package: (package, word, message
/// of that package). In `assembly.policy.v1`, "`BatchCheckRequest` /
/// `BatchCheckResponse` | `requests` / `responses` | 1 | repeated request /
/// response" means a batch of the requests and responses of `CheckAction`.
const PROSE_TYPES: &[(&str, &str, &str)] = &[
    ("assembly.policy.v1", "request", "CheckActionRequest"),
    ("assembly.policy.v1", "response", "CheckActionResponse"),
];

/// The proto3 scalar type keywords.
const SCALARS: &[&str] = &[
    "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32",
    "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
];

/// Header of the four-column tables.
const FOUR: [&str; 4] = ["message / enum", "field or value", "number", "type"];
/// Header of the two-column tables.
const TWO: [&str; 2] = ["message / enum", "fields (number)"];

// ---------------------------------------------------------------------------
// What WIRE.md says

/// A field as WIRE.md lists it.
#[derive(Debug, Clone, PartialEq)]
struct FieldSpec {
    name: String,
    number: i32,
    /// A scalar keyword, or a message or enum's full name (no leading dot).
    ty: String,
    occurrence: Occurrence,
    oneof: Option<String>,
    line: usize,
}

/// How often a field occurs: `T`, `repeated T` or (proto3) `optional T`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Occurrence {
    Singular,
    Repeated,
    Optional,
}

impl Occurrence {
    fn prefix(self) -> &'static str {
        match self {
            Occurrence::Singular => "",
            Occurrence::Repeated => "repeated ",
            Occurrence::Optional => "optional ",
        }
    }
}

/// An enum value as WIRE.md lists it.
#[derive(Debug, Clone, PartialEq)]
struct ValueSpec {
    name: String,
    number: i32,
    line: usize,
}

#[derive(Debug)]
enum Body {
    Message(Vec<FieldSpec>),
    Enum(Vec<ValueSpec>),
}

/// A message or enum as WIRE.md lists it; `line` is where it is first named.
#[derive(Debug)]
struct Decl {
    body: Body,
    line: usize,
}

/// A method as WIRE.md writes it; input and output are full names.
#[derive(Debug, Clone, PartialEq)]
struct RpcSpec {
    name: String,
    input: String,
    output: String,
    client_streaming: bool,
    server_streaming: bool,
    line: usize,
}

#[derive(Debug)]
struct ServiceSpec {
    line: usize,
    rpcs: Vec<RpcSpec>,
}

/// Everything read from WIRE.md, keyed by full name.
#[derive(Debug, Default)]
struct Wire {
    decls: BTreeMap<String, Decl>,
    services: BTreeMap<String, ServiceSpec>,
    /// Packages WIRE.md has a section for or declares something in.
    packages: BTreeSet<String>,
    tables: usize,
    rows: usize,
    /// `rpc` spans outside any package section and any service prose, as
    /// "line N: rpc ...".
    unchecked_rpcs: Vec<String>,
    /// Bare fields of service prose and the type a rule gave them, as
    /// "line N: `pkg.Message.field` is `T`: why".
    bare: Vec<String>,
    /// What could not be read, as "line N: why".
    errors: Vec<String>,
}

/// Package and service the current `## ` heading names.
#[derive(Debug, Default)]
struct Section {
    package: Option<String>,
    service: Option<String>,
}

/// State of the table being read.
struct Table {
    package: String,
    /// Full name of the declaration a blank first cell continues.
    current: Option<String>,
    /// Declarations named in this table's first cells, with their lines.
    named: Vec<(String, usize)>,
    /// Oneof members typed "messages below": (declaration, field, line).
    below: Vec<(String, String, usize)>,
}

/// State of one service's prose (see the module doc).
#[derive(Default)]
struct Prose {
    /// Field name to the type the prose first gives a field of that name
    /// (its own or its group's), and that line.
    typed: BTreeMap<String, (Occurrence, String, usize)>,
}

/// Where an item list is read.
enum Scope<'a> {
    Table(&'a mut Table),
    /// A `` `package.Name`: `` paragraph.
    Paragraph,
    Prose(&'a mut Prose),
}

/// One `` `name` [number] [type | (group type) | (range)] `` of an item
/// list.
#[derive(Debug)]
struct Item {
    name: String,
    number: Option<i32>,
    ty: Option<String>,
    group: Option<String>,
    /// Line breaks in the list before this item.
    newlines: usize,
}

/// A type as written in WIRE.md.
enum Parsed {
    Type {
        occurrence: Occurrence,
        ty: String,
    },
    MessagesBelow,
    /// `` `Name{field number [type], ...}` ``: a field of message `Name`
    /// (full name), declared right there.
    Inline {
        occurrence: Occurrence,
        name: String,
        body: String,
    },
}

fn parse(md: &str) -> Wire {
    let mut w = Wire::default();
    let lines: Vec<&str> = md.lines().collect();
    let mut section = Section::default();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if line.starts_with('#') {
            let level = line.chars().take_while(|&c| c == '#').count();
            if level <= 2 {
                section = read_heading(line[level..].trim());
                if let Some(pkg) = &section.package {
                    w.packages.insert(pkg.clone());
                    if let Some(service) = &section.service {
                        w.services
                            .entry(format!("{pkg}.{service}"))
                            .or_insert(ServiceSpec {
                                line: i + 1,
                                rpcs: Vec::new(),
                            });
                    }
                }
            }
            i += 1;
        } else if line.starts_with('|') {
            let start = i;
            while i < lines.len() && lines[i].starts_with('|') {
                i += 1;
            }
            w.table(&section, start + 1, &lines[start..i]);
        } else if line.trim().is_empty() {
            i += 1;
        } else {
            let start = i;
            while i < lines.len()
                && !lines[i].trim().is_empty()
                && !lines[i].starts_with('|')
                && !lines[i].starts_with('#')
            {
                i += 1;
            }
            w.paragraph(&section, start + 1, &lines[start..i].join("\n"));
        }
    }
    w
}

fn read_heading(heading: &str) -> Section {
    let first = heading.split_whitespace().next().unwrap_or("");
    let package = is_package(first).then(|| first.to_owned());
    let service = package
        .as_ref()
        .and_then(|_| code_spans(heading).first().map(|(_, s)| (*s).to_owned()));
    Section { package, service }
}

impl Wire {
    fn error(&mut self, line: usize, why: impl AsRef<str>) {
        self.errors.push(format!("line {line}: {}", why.as_ref()));
    }

    /// Reads a paragraph of a section without a package that names a
    /// service `` `pkg.XxxService` ``: the service's prose (see the module
    /// doc). Returns false, reading nothing, if it names no service.
    fn service_prose(&mut self, first_line: usize, text: &str) -> bool {
        let named = code_spans(text).into_iter().find_map(|(offset, span)| {
            let (pkg, name) = span.rsplit_once('.')?;
            (is_package(pkg) && is_ident(name) && name.ends_with("Service"))
                .then_some((offset, pkg, span))
        });
        let Some((offset, pkg, service)) = named else {
            return false;
        };
        let line_of = |part: &str| first_line + text[..offset_in(text, part)].matches('\n').count();
        self.packages.insert(pkg.to_owned());
        self.services
            .entry(service.to_owned())
            .or_insert(ServiceSpec {
                line: line_of(&text[offset..]),
                rpcs: Vec::new(),
            });

        // The text before the first bullet, then one part per bullet.
        let mut starts = vec![0];
        let mut at = 0;
        for l in text.split_inclusive('\n') {
            if at > 0 && l.starts_with("- ") {
                starts.push(at);
            }
            at += l.len();
        }
        starts.push(text.len());
        let mut prose = Prose::default();
        for pair in starts.windows(2) {
            let part = &text[pair[0]..pair[1]];
            let result = match part.strip_prefix("- ") {
                Some(bullet) => self.prose_bullet(pkg, service, bullet, &line_of, &mut prose),
                // Only the first part, the text before the bullets.
                None => match code_spans(part).iter().find(|(_, s)| s.starts_with("rpc ")) {
                    Some((_, span)) => Err(format!(
                        "`{span}` outside a bullet of the prose of {service}: want \
                         \"- `rpc ...`: declarations\""
                    )),
                    None => Ok(()),
                },
            };
            if let Err(why) = result {
                self.error(line_of(part), why);
            }
        }
        true
    }

    /// One bullet of a service's prose: `` `rpc ...`: `` or `` Enums in
    /// `pkg`: ``, then declarations.
    fn prose_bullet(
        &mut self,
        pkg: &str,
        service: &str,
        bullet: &str,
        line_of: &dyn Fn(&str) -> usize,
        prose: &mut Prose,
    ) -> Result<(), String> {
        let spans = code_spans(bullet);
        let rpc_spans = spans.iter().filter(|(_, s)| s.starts_with("rpc ")).count();
        if let Some((0, span)) = spans.first() {
            let rest = bullet[span.len() + 2..].strip_prefix(':');
            if let (Some(signature), Some(rest), 1) = (span.strip_prefix("rpc "), rest, rpc_spans) {
                let rpc = read_rpc(&signature.replace('\n', " "), pkg, line_of(bullet))?;
                self.prose_declarations(pkg, Some(&rpc), rest, line_of, prose);
                if let Some(s) = self.services.get_mut(service) {
                    s.rpcs.push(rpc);
                }
                return Ok(());
            }
        }
        if let Some(rest) = bullet.strip_prefix("Enums in `") {
            let (enum_pkg, rest) = rest.split_once('`').unwrap_or(("", ""));
            let rest = rest.strip_prefix(':').filter(|_| is_package(enum_pkg));
            if let (Some(rest), 0) = (rest, rpc_spans) {
                self.packages.insert(enum_pkg.to_owned());
                for full in self.prose_declarations(enum_pkg, None, rest, line_of, prose) {
                    if !matches!(self.decls.get(&full).map(|d| &d.body), Some(Body::Enum(_))) {
                        return Err(format!(
                            "`{full}` is in an \"Enums in\" bullet but does not read as an \
                             enum's values"
                        ));
                    }
                }
                return Ok(());
            }
        }
        Err(format!(
            "a bullet of the prose of {service} this test does not read: want \
             \"- `rpc ...`: declarations\" or \"- Enums in `pkg`: declarations\""
        ))
    }

    /// Reads `` `Name` = items `` (in `pkg`), `request = items` and
    /// `response = items` (of `rpc`), separated by `;` or `. `; returns the
    /// full names declared (and records what it cannot read).
    fn prose_declarations(
        &mut self,
        pkg: &str,
        rpc: Option<&RpcSpec>,
        text: &str,
        line_of: &dyn Fn(&str) -> usize,
        prose: &mut Prose,
    ) -> Vec<String> {
        let mut declared = Vec::new();
        for part in split_sentences(text) {
            match self.prose_declaration(pkg, rpc, part, line_of, prose) {
                Ok(full) => declared.push(full),
                Err(why) => self.error(line_of(part), why),
            }
        }
        declared
    }

    fn prose_declaration(
        &mut self,
        pkg: &str,
        rpc: Option<&RpcSpec>,
        part: &str,
        line_of: &dyn Fn(&str) -> usize,
        prose: &mut Prose,
    ) -> Result<String, String> {
        {
            let after = |word: &str| {
                part.strip_prefix(word)
                    .and_then(|r| r.trim_start().strip_prefix('='))
            };
            let (full, items) = if let Some(items) = after("request") {
                let rpc = rpc.ok_or("`request =` outside an rpc's bullet")?;
                (rpc.input.clone(), items)
            } else if let Some(items) = after("response") {
                let rpc = rpc.ok_or("`response =` outside an rpc's bullet")?;
                (rpc.output.clone(), items)
            } else {
                let named = part.strip_prefix('`').and_then(|r| r.split_once('`'));
                let Some((name, items)) = named
                    .filter(|(name, _)| is_ident(name))
                    .and_then(|(name, r)| Some((name, r.trim_start().strip_prefix('=')?)))
                else {
                    return Err(format!(
                        "`` {} ``: want `` `Name` = items ``, `request = items` or \
                         `response = items`",
                        part.split_whitespace().collect::<Vec<_>>().join(" ")
                    ));
                };
                (format!("{pkg}.{name}"), items)
            };
            let items = items.trim();
            let is_new = !self.decls.contains_key(&full);
            self.declare(
                &full,
                line_of(items),
                items,
                None,
                None,
                Scope::Prose(prose),
            )
            .map_err(|why| format!("`{full}`: {why}"))?;
            if is_new {
                if let Some(decl) = self.decls.get_mut(&full) {
                    decl.line = line_of(part);
                }
            }
            Ok(full)
        }
    }

    fn paragraph(&mut self, section: &Section, first_line: usize, text: &str) {
        if section.package.is_none() && self.service_prose(first_line, text) {
            return;
        }
        for (offset, span) in code_spans(text) {
            let span = span.replace('\n', " ");
            let Some(signature) = span.strip_prefix("rpc ") else {
                continue;
            };
            let line = first_line + text[..offset].matches('\n').count();
            match (&section.package, &section.service) {
                (Some(pkg), Some(service)) => match read_rpc(signature, pkg, line) {
                    Ok(rpc) => {
                        let key = format!("{pkg}.{service}");
                        if let Some(s) = self.services.get_mut(&key) {
                            s.rpcs.push(rpc);
                        }
                    }
                    Err(why) => self.error(line, why),
                },
                (Some(pkg), None) => self.error(
                    line,
                    format!("`{span}` in the section of {pkg}, whose heading names no service"),
                ),
                (None, _) => self.unchecked_rpcs.push(format!("line {line}: {span}")),
            }
        }

        // "`package.Name`: items", a declaration outside a table.
        let Some(rest) = text.strip_prefix('`') else {
            return;
        };
        let Some((name, after)) = rest.split_once('`') else {
            return;
        };
        let Some(items) = after.strip_prefix(':') else {
            return;
        };
        let Some((pkg, short)) = name.rsplit_once('.') else {
            return;
        };
        if !is_package(pkg) || !is_ident(short) {
            return;
        }
        self.packages.insert(pkg.to_owned());
        let items = items.replace('\n', " ");
        let items = items.trim().trim_end_matches('.');
        if let Err(why) = self.declare(name, first_line, items, None, None, Scope::Paragraph) {
            self.error(first_line, format!("`{name}`: {why}"));
        }
    }

    fn table(&mut self, section: &Section, first_line: usize, rows: &[&str]) {
        self.tables += 1;
        let header = cells(rows[0]);
        let columns = if header == FOUR {
            4
        } else if header == TWO {
            2
        } else {
            self.error(
                first_line,
                format!(
                    "a table with header {header:?}, a shape this test does not read \
                     (so nothing in it would be checked); teach it to"
                ),
            );
            return;
        };
        let Some(package) = section.package.clone() else {
            self.error(
                first_line,
                "a table outside a package section (`## assembly.x.v1 ...`): whose is it?",
            );
            return;
        };
        if !rows.get(1).is_some_and(|r| is_separator(r)) {
            self.error(first_line + 1, "no `|---|` line under the table header");
            return;
        }
        let mut t = Table {
            package,
            current: None,
            named: Vec::new(),
            below: Vec::new(),
        };
        for (k, row) in rows.iter().enumerate().skip(2) {
            let line = first_line + k;
            let c = cells(row);
            if c.len() != columns {
                self.error(line, format!("{} cells, the header has {columns}", c.len()));
                continue;
            }
            self.rows += 1;
            let (number, ty) = if columns == 4 {
                (Some(c[2].as_str()), Some(c[3].as_str()))
            } else {
                (None, None)
            };
            if let Err(why) = self.row(&mut t, line, &c[0], &c[1], number, ty) {
                self.error(line, why);
            }
        }
        self.resolve_below(&t);
    }

    fn row(
        &mut self,
        t: &mut Table,
        line: usize,
        name_cell: &str,
        items: &str,
        number: Option<&str>,
        ty: Option<&str>,
    ) -> Result<(), String> {
        let names = split_top(name_cell, '/');
        if names.len() > 1 {
            // `A` / `B` | `a` / `b` | 1 | repeated x / y: one row per part.
            let items = split_top(items, '/');
            let mut types: Vec<String> = match ty {
                Some(ty) => split_top(ty, '/').into_iter().map(str::to_owned).collect(),
                None => vec![String::new(); names.len()],
            };
            if items.len() != names.len() || types.len() != names.len() {
                return Err(format!(
                    "{} names split by `/` but {} field parts and {} type parts",
                    names.len(),
                    items.len(),
                    types.len()
                ));
            }
            if types[0].starts_with("repeated ") {
                for part in &mut types[1..] {
                    if !part.starts_with("repeated ") {
                        *part = format!("repeated {part}");
                    }
                }
            }
            for ((name, items), ty) in names.iter().zip(&items).zip(&types) {
                self.named_row(t, line, name, items, number, Some(ty))?;
            }
            return Ok(());
        }
        if name_cell.is_empty() {
            let Some(full) = t.current.clone() else {
                return Err("a blank first cell with no message or enum above it".into());
            };
            return self.declare(&full, line, items, number, ty, Scope::Table(t));
        }
        self.named_row(t, line, name_cell, items, number, ty)
    }

    fn named_row(
        &mut self,
        t: &mut Table,
        line: usize,
        name_cell: &str,
        items: &str,
        number: Option<&str>,
        ty: Option<&str>,
    ) -> Result<(), String> {
        let name_cell = name_cell.trim();
        let name = match code_spans(name_cell).first() {
            Some((0, name)) if is_ident(name) => *name,
            _ => {
                return Err(format!(
                    "first cell `{name_cell}` does not start with a `Name`"
                ))
            }
        };
        let full = format!("{}.{name}", t.package);
        t.current = Some(full.clone());
        t.named.push((full.clone(), line));
        self.declare(&full, line, items, number, ty, Scope::Table(t))
    }

    /// Reads one item list into the declaration `full`; `line` is where the
    /// list starts.
    fn declare(
        &mut self,
        full: &str,
        line: usize,
        items: &str,
        number_cell: Option<&str>,
        type_cell: Option<&str>,
        mut scope: Scope<'_>,
    ) -> Result<(), String> {
        let pkg = full.rsplit_once('.').map_or("", |(pkg, _)| pkg);
        let number_cell = number_cell.map(str::trim).filter(|s| !s.is_empty());
        let type_cell = type_cell.map(str::trim).filter(|s| !s.is_empty());
        let items = items.trim();
        if items == "(empty)" {
            if number_cell.is_some() || type_cell.is_some() {
                return Err("`(empty)` with a number or a type".into());
            }
            return self.add_message(full, line, Vec::new());
        }
        let (oneof, mut items) = read_items(items)?;

        // Ranges: `(1–4)` numbers the run of number-less items it ends.
        let mut run = Vec::new();
        for k in 0..items.len() {
            if items[k].number.is_some() {
                run.clear();
                continue;
            }
            run.push(k);
            let Some((from, to)) = items[k].group.as_deref().and_then(read_range) else {
                continue;
            };
            let numbers: Vec<i32> = (from..=to).collect();
            if numbers.len() != run.len() {
                return Err(format!(
                    "`{}` ({from}–{to}) ends a run of {} item(s) without a number",
                    items[k].name,
                    run.len()
                ));
            }
            for (p, n) in run.drain(..).zip(numbers) {
                items[p].number = Some(n);
            }
            items[k].group = None;
        }

        let numbers = number_cell
            .map(read_numbers)
            .transpose()?
            .unwrap_or_default();
        let missing = items.iter().filter(|i| i.number.is_none()).count();
        if numbers.len() != missing {
            return Err(format!(
                "{missing} item(s) without their own number, but the number cell {} gives {}",
                number_cell.unwrap_or("(blank)"),
                numbers.len()
            ));
        }
        let mut numbers = numbers.into_iter();
        for item in &mut items {
            if item.number.is_none() {
                item.number = numbers.next();
            }
        }

        let is_enum = match type_cell {
            Some(ty) => ty == "enum",
            None => items
                .iter()
                .all(|i| i.ty.is_none() && i.group.is_none() && is_value_name(&i.name)),
        };
        if is_enum {
            return self.add_enum(full, line, oneof, &items);
        }

        // Types: inline, or a group type for the run it ends, or the cell's;
        // in service prose, what is still bare takes the prose's rule.
        let mut types: Vec<Option<String>> = vec![None; items.len()];
        let mut pending = Vec::new();
        for (k, item) in items.iter().enumerate() {
            if let Some(ty) = &item.ty {
                types[k] = Some(ty.clone());
                pending.clear();
            } else {
                pending.push(k);
                if let Some(group) = &item.group {
                    for p in pending.drain(..) {
                        types[p] = Some(group.clone());
                    }
                }
            }
        }
        for (k, ty) in types.iter_mut().enumerate() {
            if ty.is_none() {
                match (type_cell, &scope) {
                    (Some(cell), _) => *ty = Some(cell.to_owned()),
                    (None, Scope::Prose(_)) => {}
                    (None, _) => return Err(format!("`{}`: no type given", items[k].name)),
                }
            }
        }

        let prose = matches!(scope, Scope::Prose(_));
        let mut fields = Vec::new();
        let mut below = Vec::new();
        let mut inline = Vec::new();
        let mut bare = Vec::new();
        let mut explicit = Vec::new();
        for (item, ty) in items.iter().zip(&types) {
            let at = line + item.newlines;
            let (occurrence, ty) = match ty {
                Some(text) => {
                    let resolve = |name: &str| self.type_name(name, pkg, prose);
                    let parsed = read_type(text, pkg, &resolve)
                        .map_err(|why| format!("`{}`: {why}", item.name))?;
                    let (occurrence, ty) = match parsed {
                        Parsed::Type { occurrence, ty } => (occurrence, ty),
                        Parsed::MessagesBelow => {
                            below.push((full.to_owned(), item.name.clone(), at));
                            (Occurrence::Singular, String::new())
                        }
                        Parsed::Inline {
                            occurrence,
                            name,
                            body,
                        } => {
                            inline.push((item.name.clone(), name.clone(), at, body));
                            (occurrence, name)
                        }
                    };
                    explicit.push((item.name.clone(), occurrence, ty.clone(), at));
                    (occurrence, ty)
                }
                None => {
                    let Scope::Prose(p) = &scope else {
                        unreachable!("bare items outside prose were refused above");
                    };
                    let field = format!("`{full}.{}`", item.name);
                    match p.typed.get(&item.name) {
                        Some((occurrence, ty, from)) => {
                            bare.push(format!(
                                "line {at}: {field} is `{}{ty}`: the type the prose first \
                                 gives `{}`, on line {from}",
                                occurrence.prefix(),
                                item.name
                            ));
                            (*occurrence, ty.clone())
                        }
                        None => {
                            bare.push(format!(
                                "line {at}: {field} is `string`: a bare name the prose \
                                 types nowhere before is text"
                            ));
                            (Occurrence::Singular, "string".to_owned())
                        }
                    }
                }
            };
            fields.push(FieldSpec {
                name: item.name.clone(),
                number: item.number.unwrap_or_default(),
                ty,
                occurrence,
                oneof: oneof.clone(),
                line: at,
            });
        }
        self.bare.extend(bare);
        if !below.is_empty() {
            match &mut scope {
                Scope::Table(t) => t.below.extend(below),
                _ => return Err("`messages below` outside a table".into()),
            }
        }
        if let Scope::Prose(p) = &mut scope {
            for (name, occurrence, ty, at) in explicit {
                p.typed.entry(name).or_insert((occurrence, ty, at));
            }
        }
        self.add_message(full, line, fields)?;

        // `Name{reason 1}`: message `Name` with the fields in the braces.
        for (field, name, at, body) in inline {
            let list = split_top(&body, ',')
                .into_iter()
                .map(|part| match part.split_once(char::is_whitespace) {
                    Some((name, rest)) => format!("`{name}` {rest}"),
                    None => format!("`{part}`"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let inner = match &mut scope {
                Scope::Prose(p) => Scope::Prose(p),
                _ => Scope::Paragraph,
            };
            self.declare(&name, at, &list, None, None, inner)
                .map_err(|why| format!("`{field}`: `{name}{{{body}}}`: {why}"))?;
        }
        Ok(())
    }

    /// The full name of a type written `` `name` `` in package `pkg`. Tables
    /// mean their section's package; service prose means the declaration of
    /// that package if WIRE.md has one, else the only declaration of that
    /// name in any package (`AgentId` is `assembly.common.v1.AgentId`).
    fn type_name(&self, name: &str, pkg: &str, prose: bool) -> Result<String, String> {
        let own = qualify(name, pkg);
        if !prose || name.contains('.') || self.decls.contains_key(&own) {
            return Ok(own);
        }
        let elsewhere: Vec<&String> = self
            .decls
            .keys()
            .filter(|k| short_name(k) == name)
            .collect();
        match elsewhere[..] {
            [] => Ok(own),
            [one] => Ok(one.clone()),
            _ => Err(format!(
                "`{name}` is declared in several packages ({elsewhere:?}): qualify it"
            )),
        }
    }

    fn add_enum(
        &mut self,
        full: &str,
        line: usize,
        oneof: Option<String>,
        items: &[Item],
    ) -> Result<(), String> {
        if oneof.is_some() || items.iter().any(|i| i.ty.is_some() || i.group.is_some()) {
            return Err("an enum's values with a oneof or a type".into());
        }
        let first = &items[0].name;
        let mut values = Vec::new();
        for item in items {
            let name = match item.name.strip_prefix('_') {
                Some(_) => match first.strip_suffix("_UNSPECIFIED") {
                    Some(prefix) if !first.starts_with('_') => format!("{prefix}{}", item.name),
                    _ => {
                        return Err(format!(
                            "`{}` is short for a prefix, but the first value `{first}` \
                             does not end in `_UNSPECIFIED`",
                            item.name
                        ))
                    }
                },
                None => item.name.clone(),
            };
            values.push(ValueSpec {
                name,
                number: item.number.unwrap_or_default(),
                line: line + item.newlines,
            });
        }
        let decl = self.decls.entry(full.to_owned()).or_insert(Decl {
            body: Body::Enum(Vec::new()),
            line,
        });
        let Body::Enum(have) = &mut decl.body else {
            return Err(format!(
                "`{full}` is listed both as a message and as an enum"
            ));
        };
        for v in values {
            if have.iter().any(|h| h.name == v.name) {
                return Err(format!("`{}` listed twice", v.name));
            }
            have.push(v);
        }
        Ok(())
    }

    fn add_message(
        &mut self,
        full: &str,
        line: usize,
        fields: Vec<FieldSpec>,
    ) -> Result<(), String> {
        let decl = self.decls.entry(full.to_owned()).or_insert(Decl {
            body: Body::Message(Vec::new()),
            line,
        });
        let Body::Message(have) = &mut decl.body else {
            return Err(format!(
                "`{full}` is listed both as an enum and as a message"
            ));
        };
        for f in fields {
            if have.iter().any(|h| h.name == f.name) {
                return Err(format!("`{}` listed twice", f.name));
            }
            have.push(f);
        }
        Ok(())
    }

    /// Types each oneof member written "messages below" with the one message
    /// named further down the table whose name starts with the member's.
    fn resolve_below(&mut self, t: &Table) {
        for (decl, field, line) in &t.below {
            let key = squash(field);
            let candidates: BTreeSet<&String> = t
                .named
                .iter()
                .filter(|(name, at)| {
                    *at > *line
                        && matches!(
                            self.decls.get(name).map(|d| &d.body),
                            Some(Body::Message(_))
                        )
                        && squash(short_name(name)).starts_with(&key)
                })
                .map(|(name, _)| name)
                .collect();
            let [found] = candidates.into_iter().collect::<Vec<_>>()[..] else {
                self.error(
                    *line,
                    format!(
                        "`{field}` is typed \"messages below\", but not exactly one message \
                         further down the table is named after it"
                    ),
                );
                continue;
            };
            let found = found.clone();
            if let Some(Decl {
                body: Body::Message(fields),
                ..
            }) = self.decls.get_mut(decl)
            {
                if let Some(f) = fields.iter_mut().find(|f| f.name == *field) {
                    f.ty = found;
                }
            }
        }
    }
}

/// Reads `` [oneof `name`:] item, item, ... `` (which may span lines).
fn read_items(text: &str) -> Result<(Option<String>, Vec<Item>), String> {
    let oneof_rest = text
        .strip_prefix("oneof")
        .filter(|rest| rest.starts_with(char::is_whitespace));
    let (oneof, list) = match oneof_rest {
        Some(rest) => {
            let bad = || format!("`{text}`: want ``oneof `name`: items``");
            let rest = rest.trim_start().strip_prefix('`').ok_or_else(bad)?;
            let (name, after) = rest.split_once('`').ok_or_else(bad)?;
            let after = after.trim_start().strip_prefix(':').ok_or_else(bad)?;
            if !is_ident(name) {
                return Err(bad());
            }
            (Some(name.to_owned()), after)
        }
        None => (None, text),
    };
    let mut items = Vec::new();
    for part in split_top(list, ',') {
        let bad = || format!("item `{part}`: want `` `name` [number] [type] ``");
        let body = part.strip_prefix('`').ok_or_else(bad)?;
        let (name, rest) = body.split_once('`').ok_or_else(bad)?;
        if !is_ident(name) {
            return Err(bad());
        }
        let rest = rest.trim();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let number = match digits {
            0 => None,
            _ => Some(rest[..digits].parse().map_err(|_| bad())?),
        };
        let rest = rest[digits..]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let (ty, group) = if rest.is_empty() {
            (None, None)
        } else if let Some(group) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
            (None, Some(group.trim().to_owned()))
        } else {
            (Some(rest.to_owned()), None)
        };
        items.push(Item {
            name: name.to_owned(),
            number,
            ty,
            group,
            newlines: text[..offset_in(text, part)].matches('\n').count(),
        });
    }
    Ok((oneof, items))
}

/// Reads a range group, `1–4` or `1..4`.
fn read_range(group: &str) -> Option<(i32, i32)> {
    let (from, to) = group
        .split_once('\u{2013}')
        .or_else(|| group.split_once(".."))?;
    Some((from.trim().parse().ok()?, to.trim().parse().ok()?))
}

/// Reads a number cell: `1`, `0,1,2,3` or `0..7`.
fn read_numbers(cell: &str) -> Result<Vec<i32>, String> {
    let bad = || format!("number cell `{cell}`: want `1`, `0,1,2` or `0..7`");
    if let Some((from, to)) = cell.split_once("..") {
        let from: i32 = from.trim().parse().map_err(|_| bad())?;
        let to: i32 = to.trim().parse().map_err(|_| bad())?;
        return Ok((from..=to).collect());
    }
    cell.split(',')
        .map(|n| n.trim().parse().map_err(|_| bad()))
        .collect()
}

/// Reads a type as WIRE.md writes it, in package `pkg`; `resolve` gives the
/// full name of a `` `Name` ``.
fn read_type(
    text: &str,
    pkg: &str,
    resolve: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Parsed, String> {
    let t = cut_comment(text.trim());
    if t == "messages below" {
        return Ok(Parsed::MessagesBelow);
    }
    let (occurrence, t) = if let Some(rest) = t.strip_prefix("repeated ") {
        (Occurrence::Repeated, rest.trim())
    } else if let Some(rest) = t.strip_prefix("optional ") {
        (Occurrence::Optional, rest.trim())
    } else {
        (Occurrence::Singular, t)
    };
    if let Some(kv) = t.strip_prefix("map<").and_then(|r| r.strip_suffix('>')) {
        let bad = |why: &str| format!("type `{text}`: {why}");
        if occurrence != Occurrence::Singular {
            return Err(bad("a map cannot be repeated or optional"));
        }
        let (key, value) = kv.split_once(',').ok_or_else(|| bad("want `map<K,V>`"))?;
        let key = key.trim();
        if !SCALARS.contains(&key) || matches!(key, "double" | "float" | "bytes") {
            return Err(bad("a map key is an integer, bool or string scalar"));
        }
        let value = base_type(value.trim(), pkg, resolve).map_err(|why| bad(&why))?;
        return Ok(Parsed::Type {
            occurrence,
            ty: format!("map<{key},{value}>"),
        });
    }
    if let Some((name, body)) = t
        .strip_prefix('`')
        .and_then(|r| r.strip_suffix("}`"))
        .and_then(|r| r.split_once('{'))
    {
        if !is_ident(name) {
            return Err(format!("type `{text}`: `{name}` is not a name"));
        }
        return Ok(Parsed::Inline {
            occurrence,
            name: qualify(name, pkg),
            body: body.trim().to_owned(),
        });
    }
    let ty = base_type(t, pkg, resolve).map_err(|why| format!("type `{text}`: {why}"))?;
    Ok(Parsed::Type { occurrence, ty })
}

/// A type without `repeated`, `optional` or a comment: a scalar, a group
/// plural (`strings`), a `` `Name` ``, `` `pkg.Name` `` or a prose word.
fn base_type(
    t: &str,
    pkg: &str,
    resolve: &dyn Fn(&str) -> Result<String, String>,
) -> Result<String, String> {
    if let Some(name) = t.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        if !name.split('.').all(is_ident) {
            return Err(format!("`{name}` is not a name"));
        }
        resolve(name)
    } else if SCALARS.contains(&t) {
        Ok(t.to_owned())
    } else if let Some(one) = t.strip_suffix('s').filter(|one| SCALARS.contains(one)) {
        // The group type `(strings)`.
        Ok(one.to_owned())
    } else if let Some((_, _, message)) = PROSE_TYPES.iter().find(|(p, w, _)| *p == pkg && *w == t)
    {
        Ok(qualify(message, pkg))
    } else {
        Err(
            "a notation this test does not read (scalars, `Name`, `pkg.Name`, \
             repeated T, optional T, map<K,V>, `Name{fields}`, messages below, PROSE_TYPES)"
                .to_owned(),
        )
    }
}

fn read_rpc(signature: &str, pkg: &str, line: usize) -> Result<RpcSpec, String> {
    let bad = || {
        format!("`rpc {signature}`: want `rpc Name(Request) returns (Response)`, either type optionally `stream`")
    };
    let (name, rest) = signature.split_once('(').ok_or_else(bad)?;
    let (input, rest) = rest.split_once(')').ok_or_else(bad)?;
    let output = rest
        .trim()
        .strip_prefix("returns")
        .and_then(|r| r.trim().strip_prefix('('))
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(bad)?;
    let side = |t: &str| -> Result<(bool, String), String> {
        let t = t.trim();
        let (stream, t) = match t.strip_prefix("stream ") {
            Some(t) => (true, t.trim()),
            None => (false, t),
        };
        if !t.split('.').all(is_ident) {
            return Err(bad());
        }
        Ok((stream, qualify(t, pkg)))
    };
    let name = name.trim();
    if !is_ident(name) {
        return Err(bad());
    }
    let (client_streaming, input) = side(input)?;
    let (server_streaming, output) = side(output)?;
    Ok(RpcSpec {
        name: name.to_owned(),
        input,
        output,
        client_streaming,
        server_streaming,
        line,
    })
}

// ---------------------------------------------------------------------------
// Text helpers

/// The cells of a table row, trimmed, without the outer pipes.
fn cells(row: &str) -> Vec<String> {
    let row = row.trim();
    let row = row.strip_prefix('|').unwrap_or(row);
    let row = row.strip_suffix('|').unwrap_or(row);
    row.split('|').map(|c| c.trim().to_owned()).collect()
}

fn is_separator(row: &str) -> bool {
    cells(row)
        .iter()
        .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')))
}

/// `code` spans of `text`, with the offset of each opening backtick.
fn code_spans(text: &str) -> Vec<(usize, &str)> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find('`') {
        let start = from + open + 1;
        let Some(len) = text[start..].find('`') else {
            break;
        };
        spans.push((start - 1, &text[start..start + len]));
        from = start + len + 1;
    }
    spans
}

/// Splits at `sep` outside `code`, parentheses, braces and angle brackets;
/// trims the parts.
fn split_top(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut code, mut start) = (0i32, false, 0);
    for (i, c) in text.char_indices() {
        match c {
            '`' => code = !code,
            '(' | '<' | '{' if !code => depth += 1,
            ')' | '>' | '}' if !code => depth -= 1,
            _ if c == sep && !code && depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts
}

/// Byte offset of `part`, a slice of `text`, in `text`.
fn offset_in(text: &str, part: &str) -> usize {
    (part.as_ptr() as usize)
        .checked_sub(text.as_ptr() as usize)
        .filter(|&o| o + part.len() <= text.len())
        .expect("a slice of the text")
}

/// Splits at `;` and at a sentence's `.` (one followed by white space or
/// the end) outside `code`, parentheses, braces and angle brackets; trims
/// the parts and drops empty ones.
fn split_sentences(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut code, mut start) = (0i32, false, 0);
    for (i, c) in text.char_indices() {
        let end = match c {
            '`' => {
                code = !code;
                false
            }
            '(' | '<' | '{' if !code => {
                depth += 1;
                false
            }
            ')' | '>' | '}' if !code => {
                depth -= 1;
                false
            }
            ';' => !code && depth == 0,
            '.' => {
                !code && depth == 0 && text[i + 1..].chars().next().is_none_or(char::is_whitespace)
            }
            _ => false,
        };
        if end {
            parts.push(text[start..i].trim());
            start = i + 1;
        }
    }
    parts.push(text[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// `text` without a trailing ` (comment)` outside `code`.
fn cut_comment(text: &str) -> &str {
    let mut code = false;
    for (i, c) in text.char_indices() {
        match c {
            '`' => code = !code,
            '(' if !code && i > 0 && text[..i].ends_with(' ') && text.ends_with(')') => {
                return text[..i].trim_end();
            }
            _ => {}
        }
    }
    text
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_package(s: &str) -> bool {
    s.contains('.')
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

fn is_value_name(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// `name` in package `pkg` unless already qualified.
fn qualify(name: &str, pkg: &str) -> String {
    if name.contains('.') {
        name.to_owned()
    } else {
        format!("{pkg}.{name}")
    }
}

fn short_name(full: &str) -> &str {
    full.rsplit('.').next().unwrap_or(full)
}

/// Lower case without underscores: `llm_call` and `LLMCall` both `llmcall`.
fn squash(s: &str) -> String {
    s.chars()
        .filter(|&c| c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

// ---------------------------------------------------------------------------
// What the .proto files declare

#[derive(Default)]
struct Protos<'a> {
    packages: BTreeSet<String>,
    /// Full name (no leading dot) to (package, descriptor).
    messages: BTreeMap<String, (String, &'a DescriptorProto)>,
    enums: BTreeMap<String, (String, &'a EnumDescriptorProto)>,
    services: BTreeMap<String, (String, &'a ServiceDescriptorProto)>,
}

fn index(fds: &FileDescriptorSet) -> Protos<'_> {
    fn message<'a>(p: &mut Protos<'a>, pkg: &str, scope: &str, m: &'a DescriptorProto) {
        let full = format!("{scope}.{}", m.name());
        for nested in &m.nested_type {
            message(p, pkg, &full, nested);
        }
        for e in &m.enum_type {
            p.enums
                .insert(format!("{full}.{}", e.name()), (pkg.to_owned(), e));
        }
        // A map field's entry type is the map, not a message of its own.
        if !m.options.as_ref().is_some_and(|o| o.map_entry()) {
            p.messages.insert(full, (pkg.to_owned(), m));
        }
    }
    let mut p = Protos::default();
    for file in &fds.file {
        let pkg = file.package();
        p.packages.insert(pkg.to_owned());
        for m in &file.message_type {
            message(&mut p, pkg, pkg, m);
        }
        for e in &file.enum_type {
            p.enums
                .insert(format!("{pkg}.{}", e.name()), (pkg.to_owned(), e));
        }
        for s in &file.service {
            p.services
                .insert(format!("{pkg}.{}", s.name()), (pkg.to_owned(), s));
        }
    }
    p
}

/// A field of message `m` typed as WIRE.md would write it (full names, no
/// leading dot; a map field as `map<K,V>`).
fn proto_type(m: &DescriptorProto, f: &FieldDescriptorProto) -> String {
    let entry = m.nested_type.iter().find(|n| {
        n.options.as_ref().is_some_and(|o| o.map_entry())
            && f.type_name()
                .strip_suffix(n.name())
                .is_some_and(|scope| scope.ends_with(&format!(".{}.", m.name())))
    });
    if let (Label::Repeated, Type::Message, Some(entry)) = (f.label(), f.r#type(), entry) {
        if let [key, value] = &entry.field[..] {
            return format!(
                "map<{},{}>",
                proto_type(entry, key),
                proto_type(entry, value)
            );
        }
    }
    let label = if f.label() == Label::Repeated {
        "repeated "
    } else if f.proto3_optional() {
        "optional "
    } else {
        ""
    };
    let base = match f.r#type() {
        Type::Message | Type::Enum => f.type_name().trim_start_matches('.').to_owned(),
        t => t
            .as_str_name()
            .trim_start_matches("TYPE_")
            .to_ascii_lowercase(),
    };
    format!("{label}{base}")
}

fn proto_oneof(m: &DescriptorProto, f: &FieldDescriptorProto) -> Option<String> {
    let index = f.oneof_index.filter(|_| !f.proto3_optional())?;
    m.oneof_decl
        .get(usize::try_from(index).ok()?)
        .map(|o| o.name().to_owned())
}

fn wire_type(f: &FieldSpec) -> String {
    format!("{}{}", f.occurrence.prefix(), f.ty)
}

fn oneof_words(oneof: Option<&str>) -> String {
    oneof.map_or_else(|| "no oneof".to_owned(), |o| format!("oneof `{o}`"))
}

fn signature(name: &str, input: &str, cs: bool, output: &str, ss: bool) -> String {
    let stream = |s: bool| if s { "stream " } else { "" };
    format!(
        "rpc {name}({}{}) returns ({}{})",
        stream(cs),
        input.trim_start_matches('.'),
        stream(ss),
        output.trim_start_matches('.')
    )
}

// ---------------------------------------------------------------------------
// The comparison

/// Every difference between what WIRE.md says and what the protos declare,
/// each tagged `[differs]`, `[only in WIRE.md]` or `[only in proto]`.
fn compare(w: &Wire, p: &Protos<'_>) -> Vec<String> {
    let mut d = Vec::new();
    let covered = |pkg: &str| w.packages.contains(pkg);

    for pkg in &w.packages {
        if !p.packages.contains(pkg) {
            d.push(format!(
                "[only in WIRE.md] package {pkg}: no .proto file declares it"
            ));
        }
    }
    for pkg in &p.packages {
        if pkg.starts_with("assembly.") && !covered(pkg) {
            d.push(format!(
                "[only in proto] package {pkg}: WIRE.md has no section for it, \
                 so nothing of it is checked"
            ));
        }
    }

    for (name, decl) in &w.decls {
        let at = format!("{name} (WIRE.md line {})", decl.line);
        match (&decl.body, p.messages.get(name), p.enums.get(name)) {
            (Body::Message(fields), Some((_, m)), _) => compare_message(&mut d, name, fields, m),
            (Body::Enum(values), _, Some((_, e))) => compare_enum(&mut d, name, values, e),
            (Body::Message(_), None, Some(_)) => d.push(format!(
                "[differs] {at}: WIRE.md lists a message, the proto declares an enum"
            )),
            (Body::Enum(_), Some(_), None) => d.push(format!(
                "[differs] {at}: WIRE.md lists an enum, the proto declares a message"
            )),
            (body, None, None) => {
                let kind = match body {
                    Body::Message(_) => "message",
                    Body::Enum(_) => "enum",
                };
                d.push(format!(
                    "[only in WIRE.md] {at}: {kind} not declared in the .proto files"
                ));
            }
        }
    }
    for (name, (pkg, _)) in &p.messages {
        if covered(pkg) && !w.decls.contains_key(name) {
            d.push(format!("[only in proto] message {name}: not in WIRE.md"));
        }
    }
    for (name, (pkg, _)) in &p.enums {
        if covered(pkg) && !w.decls.contains_key(name) {
            d.push(format!("[only in proto] enum {name}: not in WIRE.md"));
        }
    }

    for (name, spec) in &w.services {
        let Some((_, service)) = p.services.get(name) else {
            d.push(format!(
                "[only in WIRE.md] service {name} (WIRE.md line {}): not declared in the .proto files",
                spec.line
            ));
            continue;
        };
        for rpc in &spec.rpcs {
            let want = signature(
                &rpc.name,
                &rpc.input,
                rpc.client_streaming,
                &rpc.output,
                rpc.server_streaming,
            );
            let at = format!("{name}.{} (WIRE.md line {})", rpc.name, rpc.line);
            match service.method.iter().find(|m| m.name() == rpc.name) {
                None => d.push(format!(
                    "[only in WIRE.md] {at}: `{want}`: the proto service has no such method"
                )),
                Some(m) => {
                    let got = signature(
                        m.name(),
                        m.input_type(),
                        m.client_streaming(),
                        m.output_type(),
                        m.server_streaming(),
                    );
                    if got != want {
                        d.push(format!(
                            "[differs] {at}: WIRE.md says `{want}`, the proto says `{got}`"
                        ));
                    }
                }
            }
        }
        for m in &service.method {
            if !spec.rpcs.iter().any(|r| r.name == m.name()) {
                d.push(format!(
                    "[only in proto] {name}.{}: `{}`: not in WIRE.md",
                    m.name(),
                    signature(
                        m.name(),
                        m.input_type(),
                        m.client_streaming(),
                        m.output_type(),
                        m.server_streaming()
                    )
                ));
            }
        }
    }
    for (name, (pkg, _)) in &p.services {
        if covered(pkg) && !w.services.contains_key(name) {
            d.push(format!("[only in proto] service {name}: not in WIRE.md"));
        }
    }
    d
}

fn compare_message(d: &mut Vec<String>, name: &str, fields: &[FieldSpec], m: &DescriptorProto) {
    for f in fields {
        let at = format!("{name}.{} (WIRE.md line {})", f.name, f.line);
        let Some(pf) = m.field.iter().find(|pf| pf.name() == f.name) else {
            let same_number = m
                .field
                .iter()
                .find(|pf| pf.number() == f.number)
                .map(|pf| {
                    format!(
                        "; the proto's field {} is `{}` {}",
                        pf.number(),
                        pf.name(),
                        proto_type(m, pf)
                    )
                })
                .unwrap_or_default();
            d.push(format!(
                "[only in WIRE.md] {at}: `{}` = {}, {}, {}: the proto message has no such field{same_number}",
                f.name,
                f.number,
                wire_type(f),
                oneof_words(f.oneof.as_deref())
            ));
            continue;
        };
        if pf.number() != f.number {
            d.push(format!(
                "[differs] {at}: number: WIRE.md says {}, the proto says {}",
                f.number,
                pf.number()
            ));
        }
        let (want, got) = (wire_type(f), proto_type(m, pf));
        if want != got {
            d.push(format!(
                "[differs] {at}: type: WIRE.md says `{want}`, the proto says `{got}`"
            ));
        }
        let got_oneof = proto_oneof(m, pf);
        if f.oneof != got_oneof {
            d.push(format!(
                "[differs] {at}: WIRE.md says {}, the proto says {}",
                oneof_words(f.oneof.as_deref()),
                oneof_words(got_oneof.as_deref())
            ));
        }
    }
    for pf in &m.field {
        if !fields.iter().any(|f| f.name == pf.name()) {
            d.push(format!(
                "[only in proto] {name}.{}: = {}, {}, {}: not in WIRE.md",
                pf.name(),
                pf.number(),
                proto_type(m, pf),
                oneof_words(proto_oneof(m, pf).as_deref())
            ));
        }
    }
}

fn compare_enum(d: &mut Vec<String>, name: &str, values: &[ValueSpec], e: &EnumDescriptorProto) {
    for v in values {
        let at = format!("{name}.{} (WIRE.md line {})", v.name, v.line);
        match e.value.iter().find(|pv| pv.name() == v.name) {
            None => {
                let same_number = e
                    .value
                    .iter()
                    .find(|pv| pv.number() == v.number)
                    .map(|pv| format!("; the proto's value {} is `{}`", pv.number(), pv.name()))
                    .unwrap_or_default();
                d.push(format!(
                    "[only in WIRE.md] {at}: `{}` = {}: the proto enum has no such value{same_number}",
                    v.name, v.number
                ));
            }
            Some(pv) if pv.number() != v.number => d.push(format!(
                "[differs] {at}: number: WIRE.md says {}, the proto says {}",
                v.number,
                pv.number()
            )),
            Some(_) => {}
        }
    }
    for pv in &e.value {
        if !values.iter().any(|v| v.name == pv.name()) {
            d.push(format!(
                "[only in proto] {name}.{} = {}: not in WIRE.md",
                pv.name(),
                pv.number()
            ));
        }
    }
}

// ---------------------------------------------------------------------------
// Inputs

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The copy in the repository, which the comparison reads.
fn copy_path() -> PathBuf {
    manifest_dir().join("WIRE.md")
}

/// The original, `../shared/WIRE.md` relative to the workspace root.
fn shared_path() -> PathBuf {
    manifest_dir()
        .join("..")
        .join("..")
        .join("shared")
        .join("WIRE.md")
}

fn wire_md() -> String {
    let path = copy_path();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn descriptors() -> FileDescriptorSet {
    FileDescriptorSet::decode(tether_proto::FILE_DESCRIPTOR_SET).expect("descriptor set decodes")
}

/// Parse problems, then differences: everything that keeps WIRE.md and the
/// protos from matching.
fn check(md: &str, fds: &FileDescriptorSet) -> Vec<String> {
    let w = parse(md);
    let mut out: Vec<String> = w
        .errors
        .iter()
        .map(|e| format!("[WIRE.md unreadable] {e}"))
        .collect();
    out.extend(compare(&w, &index(fds)));
    out
}

fn report(problems: &[String]) -> String {
    format!(
        "WIRE.md ({}) and the .proto files do not match; {} difference(s):\n  {}\n",
        copy_path().display(),
        problems.len(),
        problems.join("\n  ")
    )
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn wire_md_matches_the_protos() {
    let md = wire_md();
    let w = parse(&md);
    for rpc in &w.unchecked_rpcs {
        eprintln!("not checked (no package section, no service prose): {rpc}");
    }
    for bare in &w.bare {
        eprintln!("checked by the bare-field rule: {bare}");
    }
    let problems = check(&md, &descriptors());
    assert!(problems.is_empty(), "{}", report(&problems));
}

#[test]
fn wire_md_copy_is_byte_identical_to_the_shared_one() {
    let shared = shared_path();
    let shared = shared.canonicalize().unwrap_or(shared);
    let Ok(original) = std::fs::read(&shared) else {
        eprintln!(
            "{} is absent: not checking that proto/WIRE.md is a current copy",
            shared.display()
        );
        return;
    };
    let copy = wire_md();
    if copy.as_bytes() == original {
        return;
    }
    let original = String::from_utf8_lossy(&original);
    let first = copy
        .lines()
        .zip(original.lines())
        .position(|(a, b)| a != b)
        .map_or_else(
            || "one is a prefix of the other".to_owned(),
            |i| format!("first difference on line {}", i + 1),
        );
    panic!(
        "proto/WIRE.md is not a byte-identical copy of {} ({first}); copy it again \
         and rerun this test",
        shared.display()
    );
}

/// Each shape of WIRE.md is read as documented at the top of this file.
#[test]
fn every_shape_of_wire_md_is_read() {
    let w = parse(&wire_md());
    assert!(w.errors.is_empty(), "{:#?}", w.errors);
    assert!(w.tables >= 4, "only {} tables in WIRE.md", w.tables);
    assert!(w.rows >= 50, "only {} table rows", w.rows);
    assert_eq!(
        w.packages.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "assembly.agent.v1",
            "assembly.approval.v1",
            "assembly.common.v1",
            "assembly.gateway.v1",
            "assembly.policy.v1"
        ]
    );

    let fields = |name: &str| match &w.decls[name].body {
        Body::Message(f) => f.clone(),
        Body::Enum(_) => panic!("{name} read as an enum"),
    };
    let values = |name: &str| match &w.decls[name].body {
        Body::Enum(v) => v
            .iter()
            .map(|v| (v.name.clone(), v.number))
            .collect::<Vec<_>>(),
        Body::Message(_) => panic!("{name} read as a message"),
    };
    let field = |msg: &str, name: &str| {
        let f = fields(msg).into_iter().find(|f| f.name == name).unwrap();
        (f.number, wire_type(&f), f.oneof)
    };
    let named = |v: &[(&str, i32)]| -> Vec<(String, i32)> {
        v.iter().map(|(n, i)| ((*n).to_owned(), *i)).collect()
    };

    // One field per row, and a blank first cell continuing the message.
    assert_eq!(fields("assembly.common.v1.AgentId").len(), 3);
    assert_eq!(
        field("assembly.gateway.v1.PolicyInvalidated", "agent_id"),
        (1, "string".into(), None)
    );
    // An unqualified type is the section's package's (the comment dropped).
    assert_eq!(
        field("assembly.gateway.v1.ApprovalResolved", "decision"),
        (2, "assembly.gateway.v1.Decision".into(), None)
    );
    // A oneof member per row.
    assert_eq!(
        field("assembly.gateway.v1.SubscribeRequest", "ack"),
        (
            3,
            "assembly.gateway.v1.SubscribeAck".into(),
            Some("kind".into())
        )
    );
    // Enum values with a number list and with a range.
    assert_eq!(
        values("assembly.common.v1.Decision"),
        named(&[
            ("DECISION_UNSPECIFIED", 0),
            ("ALLOW", 1),
            ("DENY", 2),
            ("PENDING", 3),
            ("REDACT", 4)
        ])
    );
    assert_eq!(values("assembly.common.v1.ActionType").len(), 8);
    assert_eq!(
        values("assembly.common.v1.ActionType")[7],
        ("TOOL_RESULT".into(), 7)
    );
    // `_PAUSE` after `OP_CONTROL_SIGNAL_UNSPECIFIED`.
    assert_eq!(
        values("assembly.policy.v1.OpControlSignal"),
        named(&[
            ("OP_CONTROL_SIGNAL_UNSPECIFIED", 0),
            ("OP_CONTROL_SIGNAL_PAUSE", 1),
            ("OP_CONTROL_SIGNAL_RESUME", 2),
            ("OP_CONTROL_SIGNAL_TERMINATE", 3)
        ])
    );
    // A oneof list typed "messages below".
    assert_eq!(fields("assembly.policy.v1.ActionContext").len(), 6);
    assert_eq!(
        field("assembly.policy.v1.ActionContext", "llm_call"),
        (
            1,
            "assembly.policy.v1.LLMCallContext".into(),
            Some("action".into())
        )
    );
    assert_eq!(
        field("assembly.policy.v1.ActionContext", "tool_result"),
        (
            6,
            "assembly.policy.v1.ToolResultContext".into(),
            Some("action".into())
        )
    );
    // Packed items with their own numbers and types.
    assert_eq!(
        field("assembly.policy.v1.ProcessExecContext", "args"),
        (2, "repeated string".into(), None)
    );
    assert_eq!(
        field("assembly.policy.v1.RedactInstructions", "rules"),
        (1, "repeated assembly.policy.v1.RedactRule".into(), None)
    );
    // The `A` / `B` pair row and its prose types.
    assert_eq!(
        field("assembly.policy.v1.BatchCheckRequest", "requests"),
        (
            1,
            "repeated assembly.policy.v1.CheckActionRequest".into(),
            None
        )
    );
    assert_eq!(
        field("assembly.policy.v1.BatchCheckResponse", "responses"),
        (
            1,
            "repeated assembly.policy.v1.CheckActionResponse".into(),
            None
        )
    );
    // A qualified type.
    assert_eq!(
        field(
            "assembly.policy.v1.CheckActionResponse",
            "agent_identity_assurance"
        ),
        (7, "assembly.common.v1.AgentIdentityAssurance".into(), None)
    );
    // The declaration paragraph.
    assert_eq!(
        values("assembly.common.v1.AgentIdentityAssurance"),
        named(&[
            ("AGENT_IDENTITY_ASSURANCE_UNSPECIFIED", 0),
            ("AGENT_IDENTITY_ASSURANCE_UNATTRIBUTED", 1),
            ("AGENT_IDENTITY_ASSURANCE_ASSERTED", 2),
            ("AGENT_IDENTITY_ASSURANCE_BOUND", 3)
        ])
    );
    // The two-column table: `(empty)`, enums, group types.
    assert!(fields("assembly.approval.v1.ListPendingRequest").is_empty());
    assert_eq!(
        values("assembly.approval.v1.ApprovalDecisionType"),
        named(&[
            ("DECISION_UNSPECIFIED", 0),
            ("APPROVED", 1),
            ("REJECTED", 2)
        ])
    );
    assert_eq!(
        field("assembly.approval.v1.ApprovalEvent", "condition_triggered"),
        (4, "string".into(), None)
    );
    assert_eq!(
        field("assembly.approval.v1.ApprovalEvent", "submitted_at"),
        (5, "uint64".into(), None)
    );
    assert_eq!(
        field("assembly.approval.v1.PendingApproval", "routing_status"),
        (8, "string".into(), None)
    );

    // rpc lines, with and without `stream`.
    let rpcs: Vec<_> = w
        .services
        .iter()
        .flat_map(|(s, spec)| spec.rpcs.iter().map(move |r| format!("{s}.{}", r.name)))
        .collect();
    assert_eq!(rpcs.len(), 12, "{rpcs:?}");
    let subscribe = &w.services["assembly.gateway.v1.InvalidationService"].rpcs[0];
    assert_eq!(
        (subscribe.client_streaming, subscribe.server_streaming),
        (true, true)
    );
    assert_eq!(subscribe.input, "assembly.gateway.v1.SubscribeRequest");
    let list = &w.services["assembly.approval.v1.ApprovalService"].rpcs[0];
    assert_eq!(
        (list.client_streaming, list.server_streaming),
        (false, false)
    );

    // The service prose of assembly.agent.v1.AgentLifecycleService.
    assert!(w.unchecked_rpcs.is_empty(), "{:?}", w.unchecked_rpcs);
    let lifecycle = &w.services["assembly.agent.v1.AgentLifecycleService"];
    assert_eq!(
        lifecycle
            .rpcs
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        [
            "RequestChallenge",
            "Register",
            "Heartbeat",
            "Deregister",
            "ControlStream"
        ]
    );
    let control = &lifecycle.rpcs[4];
    assert_eq!(control.output, "assembly.agent.v1.ControlCommand");
    assert_eq!(
        (control.client_streaming, control.server_streaming),
        (false, true)
    );
    let agent = |msg: &str| format!("assembly.agent.v1.{msg}");
    let agent_id = || (1, "assembly.common.v1.AgentId".to_owned(), None);
    // `AgentId` is the one WIRE.md declares, in assembly.common.v1.
    assert_eq!(field(&agent("ChallengeRequest"), "agent_id"), agent_id());
    // A comment after the type; one declaration after the `;`, one after
    // the sentence's `.`.
    assert_eq!(
        field(&agent("ChallengeRequest"), "public_key"),
        (2, "string".into(), None)
    );
    assert_eq!(
        field(&agent("ChallengeResponse"), "expires_at_unix_ms"),
        (2, "int64".into(), None)
    );
    assert_eq!(fields(&agent("RegisterRequest")).len(), 15);
    assert_eq!(
        field(&agent("RegisterResponse"), "credential_token"),
        (1, "string".into(), None)
    );
    // Group types, plain and optional; map; optional; qualified enums.
    assert_eq!(
        field(&agent("RegisterRequest"), "framework"),
        (3, "string".into(), None)
    );
    assert_eq!(
        field(&agent("RegisterRequest"), "delegation_reason"),
        (10, "optional string".into(), None)
    );
    assert_eq!(
        field(&agent("RegisterRequest"), "metadata"),
        (8, "map<string,string>".into(), None)
    );
    assert_eq!(
        field(&agent("RegisterRequest"), "max_child_depth"),
        (12, "optional uint32".into(), None)
    );
    assert_eq!(
        field(&agent("RegisterRequest"), "enforcement_mode"),
        (13, "assembly.common.v1.EnforcementMode".into(), None)
    );
    assert_eq!(
        field(&agent("RegisterResponse"), "root_agent_id"),
        (6, "optional bytes".into(), None)
    );
    // Each field carries its own line.
    let nonce = fields(&agent("RegisterRequest")).pop().unwrap();
    assert_eq!(
        (nonce.name.as_str(), nonce.line),
        ("registration_nonce", 181)
    );
    assert_eq!(w.decls[&agent("RegisterResponse")].line, 181);
    // `request =` and `response =` are the rpc's; bare fields take the type
    // the prose first gives their name, else string.
    assert_eq!(field(&agent("HeartbeatRequest"), "agent_id"), agent_id());
    assert_eq!(
        field(&agent("HeartbeatRequest"), "credential_token"),
        (2, "string".into(), None)
    );
    assert_eq!(
        field(&agent("HeartbeatResponse"), "should_suspend"),
        (2, "bool".into(), None)
    );
    assert_eq!(
        field(&agent("DeregisterResponse"), "agent_id"),
        (2, "string".into(), None)
    );
    assert_eq!(
        field(&agent("ControlStreamRequest"), "agent_id"),
        agent_id()
    );
    assert_eq!(
        field(&agent("DeregisterRequest"), "reason"),
        (3, "string".into(), None)
    );
    let bare: Vec<&str> = w
        .bare
        .iter()
        .map(|b| b.split('`').nth(1).unwrap())
        .collect();
    assert_eq!(
        bare,
        [
            "assembly.agent.v1.HeartbeatRequest.agent_id",
            "assembly.agent.v1.HeartbeatRequest.credential_token",
            "assembly.agent.v1.DeregisterRequest.agent_id",
            "assembly.agent.v1.DeregisterRequest.credential_token",
            "assembly.agent.v1.DeregisterRequest.reason",
            "assembly.agent.v1.ControlStreamRequest.agent_id",
            "assembly.agent.v1.ControlStreamRequest.credential_token",
            "assembly.agent.v1.SuspendCommand.reason",
            "assembly.agent.v1.ResumeCommand.note",
            "assembly.agent.v1.KillCommand.reason",
        ],
        "{:#?}",
        w.bare
    );
    // A oneof of inline messages, which are declared right there.
    assert_eq!(
        field(&agent("ControlCommand"), "policy_update"),
        (3, agent("PolicyUpdateCommand"), Some("command".into()))
    );
    assert_eq!(
        field(&agent("PolicyUpdateCommand"), "policy_bytes"),
        (2, "bytes".into(), None)
    );
    assert_eq!(
        field(&agent("ResumeCommand"), "note"),
        (1, "string".into(), None)
    );
    // The enums bullet, with a range `(1–4)`.
    assert_eq!(
        values("assembly.common.v1.RiskTier"),
        named(&[
            ("RISK_UNSPECIFIED", 0),
            ("LOW", 1),
            ("MEDIUM", 2),
            ("HIGH", 3),
            ("CRITICAL", 4)
        ])
    );
    assert_eq!(
        values("assembly.common.v1.EnforcementMode")[3],
        ("DISABLED".into(), 3)
    );
}

/// Applies `edits` (each must change the text) to WIRE.md and returns what
/// the comparison then reports.
fn check_edited(edits: &[(&str, &str)]) -> Vec<String> {
    let mut md = wire_md();
    for (from, to) in edits {
        assert!(md.contains(from), "WIRE.md no longer contains {from:?}");
        md = md.replacen(from, to, 1);
    }
    check(&md, &descriptors())
}

#[test]
fn a_changed_wire_md_is_reported_in_every_direction() {
    // A number.
    assert_eq!(
        check_edited(&[(
            "| | `sequence` | 3 | uint64 |",
            "| | `sequence` | 4 | uint64 |"
        )]),
        [
            "[differs] assembly.policy.v1.OpControlMessage.sequence (WIRE.md line 106): \
             number: WIRE.md says 4, the proto says 3"
        ]
    );
    // A group type, which covers two fields, and an enum value's number.
    let problems = check_edited(&[
        ("6 (uint64) |", "6 (uint32) |"),
        ("`REJECTED` 2", "`REJECTED` 3"),
    ]);
    assert_eq!(problems.len(), 3, "{}", report(&problems));
    assert!(problems[0].contains(
        "ApprovalDecisionType.REJECTED (WIRE.md line 152): number: WIRE.md says 3, the proto says 2"
    ));
    assert!(problems[1].contains(
        "ApprovalEvent.submitted_at (WIRE.md line 156): type: WIRE.md says `uint32`, the proto says `uint64`"
    ));
    assert!(problems[2].contains("ApprovalEvent.timeout_secs"));
    // A row left out, a value and an rpc added, a oneof dropped.
    let problems = check_edited(&[
        ("| | `span_id` | 4 | string |\n", ""),
        (
            "`_RESUME`, `_TERMINATE` | 0,1,2,3 |",
            "`_RESUME`, `_TERMINATE`, `_KILL` | 0..4 |",
        ),
        (
            "`rpc Decide(DecideRequest) returns (DecideResponse)`,",
            "`rpc Decide(DecideRequest) returns (DecideResponse)`, `rpc Undo(DecideRequest) returns (stream DecideResponse)`,",
        ),
        ("| | oneof `kind`: `ack` |", "| | `ack` |"),
    ]);
    let joined = problems.join("\n");
    assert_eq!(problems.len(), 4, "{}", report(&problems));
    for want in [
        "[differs] assembly.gateway.v1.SubscribeRequest.ack (WIRE.md line 32): WIRE.md says no oneof, the proto says oneof `kind`",
        "[only in WIRE.md] assembly.policy.v1.OpControlSignal.OP_CONTROL_SIGNAL_KILL (WIRE.md line 102): `OP_CONTROL_SIGNAL_KILL` = 4: the proto enum has no such value",
        "[only in proto] assembly.policy.v1.CheckActionRequest.span_id: = 4, string, no oneof: not in WIRE.md",
        "[only in WIRE.md] assembly.approval.v1.ApprovalService.Undo (WIRE.md line 143): `rpc Undo(assembly.approval.v1.DecideRequest) returns (stream assembly.approval.v1.DecideResponse)`: the proto service has no such method",
    ] {
        assert!(joined.contains(want), "missing {want:?} in\n{joined}");
    }

    // The agent-lifecycle prose: a number.
    assert_eq!(
        check_edited(&[("`public_key` 7 string", "`public_key` 9 string")]),
        [
            "[differs] assembly.agent.v1.RegisterRequest.public_key (WIRE.md line 176): \
             number: WIRE.md says 9, the proto says 7"
        ]
    );
    // A range, `optional` left out, a field of an inline message added, an
    // rpc's streaming.
    let problems = check_edited(&[
        ("`CRITICAL` (1–4)", "`CRITICAL` (2–5)"),
        ("`max_child_depth` 12 optional\n", "`max_child_depth` 12\n"),
        (
            "`KillCommand{reason 1}`",
            "`KillCommand{reason 1, grace 2 uint32}`",
        ),
        (
            "`rpc Heartbeat(HeartbeatRequest) returns (HeartbeatResponse)`",
            "`rpc Heartbeat(HeartbeatRequest) returns (stream HeartbeatResponse)`",
        ),
    ]);
    let joined = problems.join("\n");
    assert_eq!(problems.len(), 7, "{}", report(&problems));
    for want in [
        "[differs] assembly.common.v1.RiskTier.LOW (WIRE.md line 197): number: WIRE.md says 2, the proto says 1",
        "[differs] assembly.common.v1.RiskTier.CRITICAL (WIRE.md line 198): number: WIRE.md says 5, the proto says 4",
        "[differs] assembly.agent.v1.RegisterRequest.max_child_depth (WIRE.md line 178): type: WIRE.md says `uint32`, the proto says `optional uint32`",
        "[only in WIRE.md] assembly.agent.v1.KillCommand.grace (WIRE.md line 195): `grace` = 2, uint32, no oneof: the proto message has no such field",
        "[differs] assembly.agent.v1.AgentLifecycleService.Heartbeat (WIRE.md line 185): \
         WIRE.md says `rpc Heartbeat(assembly.agent.v1.HeartbeatRequest) returns \
         (stream assembly.agent.v1.HeartbeatResponse)`, the proto says \
         `rpc Heartbeat(assembly.agent.v1.HeartbeatRequest) returns \
         (assembly.agent.v1.HeartbeatResponse)`",
    ] {
        assert!(joined.contains(want), "missing {want:?} in\n{joined}");
    }
    // A bare field takes the type its name was first given: retyping the
    // first `agent_id` retypes the bare ones of the later requests too.
    let problems = check_edited(&[(
        "`ChallengeRequest` = `agent_id` 1 `AgentId`",
        "`ChallengeRequest` = `agent_id` 1 string",
    )]);
    let joined = problems.join("\n");
    assert_eq!(problems.len(), 4, "{}", report(&problems));
    for (msg, line) in [
        ("ChallengeRequest", 170),
        ("HeartbeatRequest", 186),
        ("DeregisterRequest", 189),
        ("ControlStreamRequest", 192),
    ] {
        let want = format!(
            "[differs] assembly.agent.v1.{msg}.agent_id (WIRE.md line {line}): type: \
             WIRE.md says `string`, the proto says `assembly.common.v1.AgentId`"
        );
        assert!(joined.contains(&want), "missing {want:?} in\n{joined}");
    }
}

#[test]
fn a_changed_proto_is_reported_in_every_direction() {
    let mut fds = descriptors();
    for file in &mut fds.file {
        for m in &mut file.message_type {
            match m.name() {
                "OpControlMessage" => {
                    let f = m.field.iter_mut().find(|f| f.name() == "sequence").unwrap();
                    f.number = Some(30);
                    f.set_type(Type::Uint32);
                }
                "AgentId" => {
                    let mut extra = m.field[0].clone();
                    extra.name = Some("tenant".into());
                    extra.number = Some(4);
                    m.field.push(extra);
                }
                "PolicyInvalidated" => {
                    m.field[0].name = Some("agent".into());
                }
                "HeartbeatRequest" => {
                    let f = m.field.iter_mut().find(|f| f.name() == "actions_count");
                    f.unwrap().number = Some(5);
                }
                "RegisterRequest" => {
                    let f = m.field.iter_mut().find(|f| f.name() == "parent_agent_id");
                    let f = f.unwrap();
                    f.proto3_optional = None;
                    f.oneof_index = None;
                    let entry = m
                        .nested_type
                        .iter_mut()
                        .find(|n| n.name() == "MetadataEntry");
                    entry.unwrap().field[1].set_type(Type::Bytes);
                }
                _ => {}
            }
        }
        for e in &mut file.enum_type {
            if e.name() == "RiskTier" {
                let mut extra = e.value[4].clone();
                extra.name = Some("SEVERE".into());
                extra.number = Some(5);
                e.value.push(extra);
            }
        }
        for s in &mut file.service {
            s.method
                .retain(|m| m.name() != "WatchApprovals" && m.name() != "Deregister");
            for m in &mut s.method {
                if m.name() == "OpControlStream" {
                    m.server_streaming = Some(false);
                }
            }
        }
    }
    let problems = check(&wire_md(), &fds);
    let joined = problems.join("\n");
    assert_eq!(problems.len(), 12, "{}", report(&problems));
    for want in [
        "[differs] assembly.agent.v1.HeartbeatRequest.actions_count (WIRE.md line 186): number: WIRE.md says 4, the proto says 5",
        "[differs] assembly.agent.v1.RegisterRequest.parent_agent_id (WIRE.md line 177): type: WIRE.md says `optional string`, the proto says `string`",
        "[differs] assembly.agent.v1.RegisterRequest.metadata (WIRE.md line 176): type: WIRE.md says `map<string,string>`, the proto says `map<string,bytes>`",
        "[only in proto] assembly.common.v1.RiskTier.SEVERE = 5: not in WIRE.md",
        "[only in WIRE.md] assembly.agent.v1.AgentLifecycleService.Deregister (WIRE.md line 188): `rpc Deregister(assembly.agent.v1.DeregisterRequest) returns (assembly.agent.v1.DeregisterResponse)`: the proto service has no such method",
        "[differs] assembly.policy.v1.OpControlMessage.sequence (WIRE.md line 106): number: WIRE.md says 3, the proto says 30",
        "[differs] assembly.policy.v1.OpControlMessage.sequence (WIRE.md line 106): type: WIRE.md says `uint64`, the proto says `uint32`",
        "[only in proto] assembly.common.v1.AgentId.tenant: = 4, string, no oneof: not in WIRE.md",
        "[only in WIRE.md] assembly.gateway.v1.PolicyInvalidated.agent_id (WIRE.md line 38): `agent_id` = 1, string, no oneof: the proto message has no such field; the proto's field 1 is `agent` string",
        "[only in proto] assembly.gateway.v1.PolicyInvalidated.agent: = 1, string, no oneof: not in WIRE.md",
        "[only in WIRE.md] assembly.approval.v1.ApprovalService.WatchApprovals (WIRE.md line 145): `rpc WatchApprovals(assembly.approval.v1.WatchApprovalsRequest) returns (stream assembly.approval.v1.ApprovalEvent)`: the proto service has no such method",
        "[differs] assembly.policy.v1.PolicyService.OpControlStream (WIRE.md line 74): \
         WIRE.md says `rpc OpControlStream(assembly.policy.v1.OpControlSubscribeRequest) \
         returns (stream assembly.policy.v1.OpControlMessage)`, the proto says \
         `rpc OpControlStream(assembly.policy.v1.OpControlSubscribeRequest) \
         returns (assembly.policy.v1.OpControlMessage)`",
    ] {
        assert!(joined.contains(want), "missing {want:?} in\n{joined}");
    }
}

#[test]
fn what_cannot_be_read_fails_rather_than_going_unchecked() {
    let problems = check_edited(&[
        (
            "| message / enum | fields (number) |",
            "| message / enum | fields |",
        ),
        (
            "| | `policy_version` | 2 | uint64 |",
            "| | `policy_version` | 2 | u64 |",
        ),
        (
            "| `SubscribeAck` | `seq` | 1 | uint64 |",
            "| `SubscribeAck` | `seq` | 1, 2 | uint64 |",
        ),
    ]);
    let joined = problems.join("\n");
    for want in [
        "[WIRE.md unreadable] line 147: a table with header [\"message / enum\", \"fields\"]",
        "[WIRE.md unreadable] line 39: `policy_version`: type `u64`: a notation this test does not read",
        "[WIRE.md unreadable] line 34: 1 item(s) without their own number, but the number cell 1, 2 gives 2",
        // The unread table's messages are then missing from WIRE.md.
        "[only in proto] message assembly.approval.v1.PendingApproval: not in WIRE.md",
    ] {
        assert!(joined.contains(want), "missing {want:?} in\n{joined}");
    }
    // The service prose: a bullet of another shape, a type, a range, a
    // declaration that is not `X = items`.
    let problems = check_edited(&[
        (
            "- Enums in `assembly.common.v1`:",
            "- Enums of `assembly.common.v1`:",
        ),
        ("`nonce` 1 bytes", "`nonce` 1 blob"),
        (
            "`ChallengeRequest` = `agent_id` 1",
            "`ChallengeRequest` holds `agent_id` 1",
        ),
        (
            "- `rpc Heartbeat(HeartbeatRequest) returns (HeartbeatResponse)`: request =",
            "- `rpc Heartbeat(HeartbeatRequest) returns (HeartbeatResponse)`: requests =",
        ),
    ]);
    let joined = problems.join("\n");
    for want in [
        "[WIRE.md unreadable] line 197: a bullet of the prose of assembly.agent.v1.AgentLifecycleService this test does not read",
        "[WIRE.md unreadable] line 171: `assembly.agent.v1.ChallengeResponse`: `nonce`: type `blob`: a notation this test does not read",
        "[WIRE.md unreadable] line 170: `` `ChallengeRequest` holds `agent_id` 1",
        "[WIRE.md unreadable] line 185: `` requests = `agent_id` 1, `credential_token` 2,",
        "[only in proto] enum assembly.common.v1.RiskTier: not in WIRE.md",
        "[only in proto] message assembly.agent.v1.HeartbeatRequest: not in WIRE.md",
    ] {
        assert!(joined.contains(want), "missing {want:?} in\n{joined}");
    }
    let problems = check_edited(&[("`CRITICAL` (1–4)", "`CRITICAL` (1–3)")]);
    assert!(
        problems[0].starts_with(
            "[WIRE.md unreadable] line 197: `assembly.common.v1.RiskTier`: `CRITICAL` (1–3) \
             ends a run of 4 item(s) without a number"
        ),
        "{}",
        report(&problems)
    );
}
