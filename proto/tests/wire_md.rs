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
//!   package WIRE.md has a section for is listed in WIRE.md ("only in
//!   proto" otherwise), and every `assembly.*` package has a section.
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
//!   run of items without a type ends in an item followed by a group type,
//!   `(strings)` or `(uint64)`, which types the whole run. A list whose
//!   items are all UPPER_CASE and untyped is an enum's values.
//! - A paragraph that starts with `` `package.Name`: `` followed by an item
//!   list declares that message or enum (WIRE.md declares
//!   `assembly.common.v1.AgentIdentityAssurance` this way).
//! - `` `rpc Name(stream? Request) returns (stream? Response)` `` spans in a
//!   section whose heading names a service are that service's methods.
//!   `rpc` spans in sections without a package (the prose about
//!   `assembly.agent.v1.AgentLifecycleService`) are not checked, and listed
//!   on stderr.
//!
//! Types: the proto3 scalar keywords, `` `Name` `` (a message or enum of the
//! section's package), `` `pkg.Name` ``, `repeated T`, a trailing
//! parenthetical comment (`string (empty = every agent)`), the group plurals
//! above, `messages below` (for a oneof's members: the message listed further
//! down the same table whose name starts with the member's, ignoring case
//! and underscores: `llm_call` is `LLMCallContext`), and the prose words of
//! [`PROSE_TYPES`]. Anything else (`map<K,V>`, `optional T`, which only the
//! prose uses) fails the test as unreadable rather than going unchecked, as
//! does a table of any other shape.

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
    repeated: bool,
    oneof: Option<String>,
    line: usize,
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
    /// `rpc` spans outside any package section, as "line N: rpc ...".
    unchecked_rpcs: Vec<String>,
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

/// One `` `name` [number] [type | (group type)] `` of an item list.
#[derive(Debug)]
struct Item {
    name: String,
    number: Option<i32>,
    ty: Option<String>,
    group: Option<String>,
}

/// A type as written in WIRE.md.
enum Parsed {
    Type { repeated: bool, ty: String },
    MessagesBelow,
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

    fn paragraph(&mut self, section: &Section, first_line: usize, text: &str) {
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
        if let Err(why) = self.declare(name, first_line, items, None, None, None) {
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
            return self.declare(&full, line, items, number, ty, Some(t));
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
        self.declare(&full, line, items, number, ty, Some(t))
    }

    /// Reads one item list into the declaration `full`.
    fn declare(
        &mut self,
        full: &str,
        line: usize,
        items: &str,
        number_cell: Option<&str>,
        type_cell: Option<&str>,
        table: Option<&mut Table>,
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

        // Types: inline, or a group type for the run it ends, or the cell's.
        let mut types: Vec<Option<String>> = vec![None; items.len()];
        let mut pending = Vec::new();
        for (k, item) in items.iter().enumerate() {
            if let Some(ty) = &item.ty {
                types[k] = Some(ty.clone());
            } else {
                pending.push(k);
                if let Some(group) = &item.group {
                    for p in pending.drain(..) {
                        types[p] = Some(group.clone());
                    }
                }
            }
        }
        for p in pending {
            match type_cell {
                Some(ty) => types[p] = Some(ty.to_owned()),
                None => return Err(format!("`{}`: no type given", items[p].name)),
            }
        }

        let mut fields = Vec::new();
        let mut below = Vec::new();
        for (item, ty) in items.iter().zip(types) {
            let ty = ty.unwrap_or_default();
            let (repeated, ty) =
                match read_type(&ty, pkg).map_err(|why| format!("`{}`: {why}", item.name))? {
                    Parsed::Type { repeated, ty } => (repeated, ty),
                    Parsed::MessagesBelow => {
                        below.push((full.to_owned(), item.name.clone(), line));
                        (false, String::new())
                    }
                };
            fields.push(FieldSpec {
                name: item.name.clone(),
                number: item.number.unwrap_or_default(),
                ty,
                repeated,
                oneof: oneof.clone(),
                line,
            });
        }
        if !below.is_empty() {
            match table {
                Some(t) => t.below.extend(below),
                None => return Err("`messages below` outside a table".into()),
            }
        }
        self.add_message(full, line, fields)
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
                line,
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

/// Reads `` [oneof `name`:] item, item, ... ``.
fn read_items(text: &str) -> Result<(Option<String>, Vec<Item>), String> {
    let (oneof, list) = match text.strip_prefix("oneof ") {
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
        let rest = rest[digits..].trim();
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
        });
    }
    Ok((oneof, items))
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

/// Reads a type as WIRE.md writes it, in package `pkg`.
fn read_type(text: &str, pkg: &str) -> Result<Parsed, String> {
    let t = cut_comment(text.trim());
    if t == "messages below" {
        return Ok(Parsed::MessagesBelow);
    }
    let (repeated, t) = match t.strip_prefix("repeated ") {
        Some(rest) => (true, rest.trim()),
        None => (false, t),
    };
    let ty = if let Some(name) = t.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        if !name.split('.').all(is_ident) {
            return Err(format!("type `{name}` is not a name"));
        }
        qualify(name, pkg)
    } else if SCALARS.contains(&t) {
        t.to_owned()
    } else if let Some(one) = t.strip_suffix('s').filter(|one| SCALARS.contains(one)) {
        // The group type `(strings)`.
        one.to_owned()
    } else if let Some((_, _, message)) = PROSE_TYPES.iter().find(|(p, w, _)| *p == pkg && *w == t)
    {
        qualify(message, pkg)
    } else {
        return Err(format!(
            "type `{text}`: a notation this test does not read (scalars, `Name`, \
             `pkg.Name`, repeated T, messages below, PROSE_TYPES)"
        ));
    };
    Ok(Parsed::Type { repeated, ty })
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

/// A field's type as WIRE.md would write it (full names, no leading dot).
fn proto_type(f: &FieldDescriptorProto) -> String {
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
    if f.repeated {
        format!("repeated {}", f.ty)
    } else {
        f.ty.clone()
    }
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
                        proto_type(pf)
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
        let (want, got) = (wire_type(f), proto_type(pf));
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
                proto_type(pf),
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
    for rpc in parse(&md).unchecked_rpcs {
        eprintln!("not checked (no package section, no tether .proto): {rpc}");
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
    assert_eq!(rpcs.len(), 7, "{rpcs:?}");
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
    // The agent-lifecycle prose is not a package section.
    assert_eq!(w.unchecked_rpcs.len(), 5, "{:?}", w.unchecked_rpcs);
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
                _ => {}
            }
        }
        for s in &mut file.service {
            s.method.retain(|m| m.name() != "WatchApprovals");
            for m in &mut s.method {
                if m.name() == "OpControlStream" {
                    m.server_streaming = Some(false);
                }
            }
        }
    }
    let problems = check(&wire_md(), &fds);
    let joined = problems.join("\n");
    assert_eq!(problems.len(), 7, "{}", report(&problems));
    for want in [
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
            "| | `policy_version` | 2 | map<string,uint64> |",
        ),
        (
            "| `SubscribeAck` | `seq` | 1 | uint64 |",
            "| `SubscribeAck` | `seq` | 1, 2 | uint64 |",
        ),
    ]);
    let joined = problems.join("\n");
    for want in [
        "[WIRE.md unreadable] line 147: a table with header [\"message / enum\", \"fields\"]",
        "[WIRE.md unreadable] line 39: `policy_version`: type `map<string,uint64>`: a notation this test does not read",
        "[WIRE.md unreadable] line 34: 1 item(s) without their own number, but the number cell 1, 2 gives 2",
        // The unread table's messages are then missing from WIRE.md.
        "[only in proto] message assembly.approval.v1.PendingApproval: not in WIRE.md",
    ] {
        assert!(joined.contains(want), "missing {want:?} in\n{joined}");
    }
}
