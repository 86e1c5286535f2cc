//! The house cannot drift back (issue 19): the crates of the workspace depend on each other
//! one way only, each crate's dependencies on the outside world are the ones its invariant
//! allows, and inside every crate the top-level modules refer to each other without cycles.
//!
//! The crate graph is read from `cargo metadata`. For the modules, every `.rs` file under a
//! crate's `src/` is read (a binary's `main.rs` apart: it is its own crate), comments and
//! literals are stripped by a small tokenizer, and every path that starts with `crate`,
//! `super` or `self` is resolved against the module the file (and any inline `mod` in it)
//! declares. A path is a reference from the file's top-level module to the top-level module
//! it lands in: in a `use` tree (nested braces included), in code and in macro arguments, in
//! test modules too. Intra-doc links are comments and not counted. A crate's root (`lib.rs`)
//! is where its modules meet (the engine's `Engine` is shared by the services in
//! `amends-recovery`), so references to and from it are not edges.
//!
//! Why each crate sits where it does is written in ARCHITECTURE.md ("The house").

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each crate of the workspace and the crates of the workspace it may depend on (in any
/// kind: normal, build or dev). Dependencies point one way: core ← store ← recovery ←
/// sources, sinks ← server ← tools ← the command line; channels sits beside store.
const CRATES: &[(&str, &[&str])] = &[
    ("amends-core", &[]),
    ("amends-store", &["amends-core"]),
    ("amends-channels", &["amends-core", "amends-testkit"]),
    ("amends-recovery", &["amends-core", "amends-store"]),
    ("amends-sources", &["amends-core", "amends-store", "amends-recovery"]),
    ("amends-sinks", &["amends-core", "amends-store", "amends-channels", "amends-recovery"]),
    (
        "amends-server",
        &[
            "amends-core",
            "amends-store",
            "amends-channels",
            "amends-recovery",
            "amends-sources",
            "amends-sinks",
        ],
    ),
    (
        "amends-tools",
        &[
            "amends-core",
            "amends-store",
            "amends-channels",
            "amends-recovery",
            "amends-sources",
            "amends-sinks",
            "amends-server",
        ],
    ),
    (
        "amends",
        &[
            "amends-core",
            "amends-store",
            "amends-channels",
            "amends-recovery",
            "amends-sources",
            "amends-sinks",
            "amends-server",
            "amends-tools",
            "amends-testkit",
        ],
    ),
    // Dev-only (checked below): the test doubles the tests of several crates share.
    ("amends-testkit", &[]),
];

/// Outside crates a crate must not depend on (normal dependencies), and why.
const KEPT_OUT: &[(&str, &[&str], &str)] = &[
    (
        "amends-core",
        &["tokio", "sqlx", "axum", "reqwest", "async-nats", "lettre", "clap"],
        "the domain does no I/O",
    ),
    (
        "amends-recovery",
        &["axum", "hyper-util", "tower-http", "reqwest", "async-nats", "lettre", "indicatif", "mailin"],
        "recovery does not know HTTP, a message bus or a terminal exists",
    ),
    (
        "amends-sources",
        &["axum", "hyper-util", "tower-http", "indicatif", "mailin"],
        "a source knows no HTTP framework",
    ),
    (
        "amends-sinks",
        &["axum", "hyper-util", "tower-http", "async-nats", "indicatif", "mailin"],
        "a sink only drains",
    ),
    ("amends-server", &["indicatif", "mailin"], "the tools' dependencies stay out of the product"),
];

#[derive(serde::Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Package {
    id: String,
    name: String,
    manifest_path: PathBuf,
    dependencies: Vec<Dependency>,
}

#[derive(serde::Deserialize)]
struct Dependency {
    name: String,
    kind: Option<String>,
}

fn workspace() -> Vec<Package> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: Metadata = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let members: BTreeSet<&String> = metadata.workspace_members.iter().collect();
    metadata.packages.into_iter().filter(|package| members.contains(&package.id)).collect()
}

#[test]
fn the_crates_depend_on_each_other_one_way() {
    let allowed: BTreeMap<&str, &[&str]> = CRATES.iter().copied().collect();
    let packages = workspace();
    let names: BTreeSet<&str> = packages.iter().map(|package| package.name.as_str()).collect();
    let mut problems = Vec::new();
    for package in &packages {
        let Some(may) = allowed.get(package.name.as_str()) else {
            problems.push(format!("{} is a workspace member without a place in CRATES", package.name));
            continue;
        };
        for dependency in &package.dependencies {
            if names.contains(dependency.name.as_str()) && !may.contains(&dependency.name.as_str()) {
                let kind = dependency.kind.as_deref().unwrap_or("normal");
                problems.push(format!("{} depends on {} ({kind})", package.name, dependency.name));
            }
        }
    }
    for package in &packages {
        for dependency in package.dependencies.iter().filter(|d| d.name == "amends-testkit") {
            if dependency.kind.as_deref() != Some("dev") {
                problems.push(format!("{} depends on amends-testkit outside its tests", package.name));
            }
        }
    }
    for (name, _) in CRATES {
        if !names.contains(name) {
            problems.push(format!("{name} has a place in CRATES but is not a workspace member"));
        }
    }
    assert!(problems.is_empty(), "the crate graph drifted:\n  {}", problems.join("\n  "));
}

#[test]
fn each_crate_keeps_out_what_its_invariant_forbids() {
    let packages = workspace();
    let mut problems = Vec::new();
    for (name, forbidden, why) in KEPT_OUT {
        let package = packages.iter().find(|package| package.name == *name).expect("a workspace member");
        for dependency in &package.dependencies {
            if dependency.kind.is_none() && forbidden.contains(&dependency.name.as_str()) {
                problems.push(format!("{name} depends on {} ({why})", dependency.name));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_crate_has_a_cycle_between_its_modules() {
    let mut report = String::new();
    let mut crates = 0;
    for package in workspace() {
        let src = package.manifest_path.parent().unwrap().join("src");
        if !src.join("lib.rs").exists() {
            continue;
        }
        crates += 1;
        let graph = Graph::read(&src);
        for cycle in graph.cycles() {
            report.push_str(&format!("{}: cycle {{{}}}:\n", package.name, cycle.join(", ")));
            for edge in graph.edges_within(&cycle) {
                report.push_str(&format!("  {edge}\n"));
            }
        }
    }
    assert_eq!(crates, CRATES.len(), "every crate of the workspace has a library");
    assert!(report.is_empty(), "modules refer to each other in cycles:\n{report}");
}

/// The checker itself finds a cycle: two modules that use each other.
#[test]
fn a_cycle_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::B;\npub struct A;\n").unwrap();
    std::fs::write(src.join("b.rs"), "pub struct B(super::a::A);\n").unwrap();
    let graph = Graph::read(src);
    assert_eq!(graph.cycles(), vec![vec!["a".to_owned(), "b".to_owned()]]);
}

/// One reference from one top-level module to another, where it is written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: String,
    to: String,
    file: String,
    line: usize,
}

impl std::fmt::Display for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} → {} at {}:{}", self.from, self.to, self.file, self.line)
    }
}

struct Graph {
    modules: BTreeSet<String>,
    edges: Vec<Edge>,
}

impl Graph {
    fn read(src: &Path) -> Graph {
        let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
        let modules = declared_modules(&tokenize(&lib));
        let mut files = Vec::new();
        rust_files(src, &mut files);
        let mut edges = Vec::new();
        for file in files {
            let relative = file.strip_prefix(src).unwrap();
            if relative == Path::new("main.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let name = format!("src/{}", relative.display());
            edges.extend(references(&name, &module_of(relative), &text, &modules));
        }
        edges.sort();
        edges.dedup();
        Graph { modules, edges }
    }

    /// The strongly connected components of more than one module (Tarjan's algorithm).
    fn cycles(&self) -> Vec<Vec<String>> {
        let names: Vec<&String> = self.modules.iter().collect();
        let index_of: BTreeMap<&str, usize> =
            names.iter().enumerate().map(|(i, name)| (name.as_str(), i)).collect();
        let mut next = vec![BTreeSet::new(); names.len()];
        for edge in &self.edges {
            if let (Some(&a), Some(&b)) = (index_of.get(edge.from.as_str()), index_of.get(edge.to.as_str())) {
                next[a].insert(b);
            }
        }
        let mut tarjan = Tarjan {
            next: &next,
            index: vec![None; names.len()],
            low: vec![0; names.len()],
            on_stack: vec![false; names.len()],
            stack: Vec::new(),
            counter: 0,
            components: Vec::new(),
        };
        for v in 0..names.len() {
            if tarjan.index[v].is_none() {
                tarjan.visit(v);
            }
        }
        let mut cycles: Vec<Vec<String>> = tarjan
            .components
            .into_iter()
            .filter(|component| component.len() > 1)
            .map(|component| {
                let mut names: Vec<String> = component.iter().map(|&i| names[i].clone()).collect();
                names.sort();
                names
            })
            .collect();
        cycles.sort();
        cycles
    }

    fn edges_within<'a>(&'a self, component: &'a [String]) -> impl Iterator<Item = &'a Edge> + 'a {
        self.edges.iter().filter(move |edge| component.contains(&edge.from) && component.contains(&edge.to))
    }
}

struct Tarjan<'a> {
    next: &'a [BTreeSet<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    counter: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.counter);
        self.low[v] = self.counter;
        self.counter += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in self.next[v].iter() {
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(index) if self.on_stack[w] => self.low[v] = self.low[v].min(index),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = Vec::new();
            loop {
                let w = self.stack.pop().unwrap();
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The module a file under `src/` declares: `a/b.rs` and `a/b/mod.rs` are `a::b`, `lib.rs`
/// the crate's root.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> =
        relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.strip_suffix(".rs").unwrap();
    if !(stem == "mod" || (parts.is_empty() && stem == "lib")) {
        parts.push(stem.to_owned());
    }
    parts
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

/// The tokens of Rust source that paths are made of, each with its line; comments, string,
/// character and number literals and lifetimes are dropped.
fn tokenize(text: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Skips to just after the `"` closing a literal opened before `i`, with escapes.
    let skip_string = |i: &mut usize, line: &mut usize| {
        while *i < chars.len() {
            match chars[*i] {
                '\\' => {
                    if chars.get(*i + 1) == Some(&'\n') {
                        *line += 1;
                    }
                    *i += 2;
                }
                '"' => {
                    *i += 1;
                    return;
                }
                '\n' => {
                    *line += 1;
                    *i += 1;
                }
                _ => *i += 1,
            }
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == '"' {
            i += 1;
            skip_string(&mut i, &mut line);
        } else if c == '\'' {
            // A character literal ('a', '\n', '\u{1F600}', '\'') or a lifetime ('a).
            if next == Some('\\') {
                // Past the quote, the backslash and the escaped character (itself a quote
                // in '\''), then to the closing quote.
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let prefix = matches!(word.as_str(), "r" | "b" | "br" | "c" | "cr");
            match chars.get(i) {
                // A raw string: r"..", r#".."#, br##".."##, ...
                Some('"' | '#') if prefix && word != "b" && word != "c" && raw_string_at(&chars, i) => {
                    let mut hashes = 0;
                    while chars[i] == '#' {
                        hashes += 1;
                        i += 1;
                    }
                    i += 1;
                    loop {
                        if i >= chars.len() {
                            break;
                        }
                        if chars[i] == '\n' {
                            line += 1;
                        }
                        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
                            i += 1 + hashes;
                            break;
                        }
                        i += 1;
                    }
                }
                // A byte or C string: b"..", c"..".
                Some('"') if prefix => {
                    i += 1;
                    skip_string(&mut i, &mut line);
                }
                // A byte literal: b'a'.
                Some('\'') if word == "b" => {
                    i += 1;
                    if chars.get(i) == Some(&'\\') {
                        i += 1;
                    }
                    i += 1;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                }
                // A raw identifier: r#match.
                Some('#') if word == "r" => {
                    i += 1;
                    let start = i;
                    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                    tokens.push((Token::Ident(chars[start..i].iter().collect()), line));
                }
                _ => tokens.push((Token::Ident(word), line)),
            }
        } else if c == ':' && next == Some(':') {
            tokens.push((Token::PathSep, line));
            i += 2;
        } else {
            tokens.push((Token::Punct(c), line));
            i += 1;
        }
    }
    tokens
}

/// Whether a raw string's hashes and quote start at `i` (`#` alone is an attribute or a raw
/// identifier).
fn raw_string_at(chars: &[char], mut i: usize) -> bool {
    while chars.get(i) == Some(&'#') {
        i += 1;
    }
    chars.get(i) == Some(&'"')
}

/// The modules `lib.rs` declares (`mod x;`, `pub mod x;`).
fn declared_modules(tokens: &[(Token, usize)]) -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    for window in tokens.windows(3) {
        if let [(Token::Ident(kw), _), (Token::Ident(name), _), (Token::Punct(';'), _)] = window
            && kw == "mod"
        {
            modules.insert(name.clone());
        }
    }
    modules
}

fn ident(tokens: &[(Token, usize)], i: usize) -> Option<&str> {
    match tokens.get(i) {
        Some((Token::Ident(word), _)) => Some(word),
        _ => None,
    }
}

fn is(tokens: &[(Token, usize)], i: usize, token: &Token) -> bool {
    tokens.get(i).is_some_and(|(t, _)| t == token)
}

/// Every reference in `text` (the file `name`, declaring module `module`) from its
/// top-level module to another of `modules`.
fn references(name: &str, module: &[String], text: &str, modules: &BTreeSet<String>) -> Vec<Edge> {
    let tokens = tokenize(text);
    let mut paths: Vec<(Vec<String>, Vec<String>, usize)> = Vec::new(); // (scope, path, line)
    let mut scope: Vec<String> = module.to_vec();
    // The brace depth inside each inline `mod x { .. }` opened.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        let (token, line) = &tokens[i];
        match token {
            Token::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Token::Punct('}') => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                    scope.pop();
                }
                depth -= 1;
                i += 1;
            }
            Token::Ident(word) if word == "mod" && is(&tokens, i + 2, &Token::Punct('{')) => {
                scope.push(ident(&tokens, i + 1).unwrap_or_default().to_owned());
                depth += 1;
                inline.push(depth);
                i += 3;
            }
            Token::Ident(word) if word == "use" => {
                let mut leaves = Vec::new();
                let end = use_tree(&tokens, i + 1, &[], &mut leaves);
                paths.extend(leaves.into_iter().map(|(path, line)| (scope.clone(), path, line)));
                i = end;
            }
            Token::Ident(word)
                if matches!(word.as_str(), "crate" | "super" | "self")
                    && is(&tokens, i + 1, &Token::PathSep)
                    && !(i > 0 && is(&tokens, i - 1, &Token::PathSep)) =>
            {
                let mut path = vec![word.clone()];
                let mut j = i + 1;
                while is(&tokens, j, &Token::PathSep) {
                    match ident(&tokens, j + 1) {
                        Some(segment) => path.push(segment.to_owned()),
                        None => break,
                    }
                    j += 2;
                }
                paths.push((scope.clone(), path, *line));
                i = j;
            }
            _ => i += 1,
        }
    }
    let from = &module[0..module.len().min(1)];
    let mut edges = Vec::new();
    for (scope, path, line) in paths {
        let Some(target) = resolve(&scope, &path) else { continue };
        let Some(top) = target.first() else { continue };
        if !modules.contains(top) || from.first() == Some(top) {
            continue;
        }
        edges.push(Edge {
            from: from.first().cloned().unwrap_or_else(|| "(root)".to_owned()),
            to: top.clone(),
            file: name.to_owned(),
            line,
        });
    }
    edges
}

/// Parses the use tree starting at `i` (after `use` or inside braces) under `prefix`, adds
/// its leaves (each a full path with the line it is written on) and returns the position
/// after it (after the `;` at the top level).
fn use_tree(
    tokens: &[(Token, usize)],
    mut i: usize,
    prefix: &[String],
    leaves: &mut Vec<(Vec<String>, usize)>,
) -> usize {
    let mut path = prefix.to_vec();
    let mut line = tokens.get(i).map_or(0, |(_, line)| *line);
    loop {
        match tokens.get(i) {
            Some((Token::Ident(word), at)) if word != "as" => {
                path.push(word.clone());
                line = *at;
                i += 1;
            }
            Some((Token::PathSep, _)) => i += 1,
            Some((Token::Punct('{'), _)) => {
                i += 1;
                loop {
                    match tokens.get(i) {
                        Some((Token::Punct('}'), _)) => {
                            i += 1;
                            break;
                        }
                        Some((Token::Punct(','), _)) => i += 1,
                        None => return i,
                        Some(_) => i = use_tree(tokens, i, &path, leaves),
                    }
                }
                return skip_terminator(tokens, i, prefix.is_empty());
            }
            Some((Token::Punct('*'), at)) => {
                leaves.push((path, *at));
                return skip_terminator(tokens, i + 1, prefix.is_empty());
            }
            Some((Token::Ident(_), _)) => {
                // `as name`
                leaves.push((path, line));
                return skip_terminator(tokens, i + 2, prefix.is_empty());
            }
            _ => {
                leaves.push((path, line));
                return skip_terminator(tokens, i, prefix.is_empty());
            }
        }
    }
}

/// After a tree: at the top level, past its `;`; inside braces, at its `,` or `}`.
fn skip_terminator(tokens: &[(Token, usize)], i: usize, top: bool) -> usize {
    if top && is(tokens, i, &Token::Punct(';')) { i + 1 } else { i }
}

/// The absolute path (from the crate's root) a path written in module `scope` names, or
/// `None` for a path outside the crate (`std::..`, `axum::..`) or relative to the scope
/// (a child module or an item in scope, which stays in the same top-level module except at
/// the root, where `lib.rs` only declares modules).
fn resolve(scope: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut segments = path.iter();
    let mut absolute: Vec<String> = match segments.next()?.as_str() {
        "crate" | "$crate" => Vec::new(),
        "self" => scope.to_vec(),
        "super" => scope[..scope.len().checked_sub(1)?].to_vec(),
        _ => return None,
    };
    for segment in segments {
        match segment.as_str() {
            "super" if !absolute.is_empty() => {
                absolute.pop();
            }
            "self" => {}
            _ => absolute.push(segment.clone()),
        }
    }
    Some(absolute)
}

/// The parser on small inputs: each line of `expected` is `from → to at line`.
fn check(file: &str, text: &str, expected: &[&str]) {
    let modules: BTreeSet<String> =
        ["alpha", "beta", "gamma", "delta"].iter().map(|m| m.to_string()).collect();
    let relative = Path::new(file);
    let found: Vec<String> = references(file, &module_of(relative), text, &modules)
        .into_iter()
        .map(|edge| format!("{} → {} at {}", edge.from, edge.to, edge.line))
        .collect();
    assert_eq!(found, expected, "in {file}:\n{text}");
}

#[test]
fn the_parser_finds_references() {
    check("alpha.rs", "use crate::beta::Thing;", &["alpha → beta at 1"]);
    check(
        "alpha.rs",
        "use crate::{\n    beta::{self, x::{Y, Z as W}},\n    gamma,\n    alpha::Q,\n};",
        &["alpha → beta at 2", "alpha → beta at 2", "alpha → beta at 2", "alpha → gamma at 3"],
    );
    check("alpha/inner.rs", "use super::super::beta::X;\nuse super::Y;", &["alpha → beta at 1"]);
    check(
        "alpha/mod.rs",
        "use super::delta;\nfn f() { super::gamma::go(); }",
        &["alpha → delta at 1", "alpha → gamma at 2"],
    );
    check(
        "alpha/deep/mod.rs",
        "fn f() { crate::alpha::x(); super::super::beta::y() }",
        &["alpha → beta at 1"],
    );
    check(
        "beta.rs",
        "mod tests {\n    use super::*;\n    use super::super::gamma;\n}",
        &["beta → gamma at 3"],
    );
    check("beta.rs", "pub(crate) fn f() {}\npub(super) struct S;\nuse self::inner::X;", &[]);
    check(
        "gamma.rs",
        "// crate::alpha\n/* crate::beta /* nested */ crate::delta */\nlet s = \"crate::alpha\";\nlet r = r#\"crate::beta\"#;\nlet c = '\"'; let l: &'static str = x; crate::delta::f();",
        &["gamma → delta at 5"],
    );
    check(
        "gamma.rs",
        "let q = ['\\'', '\\\\', '\\u{22}', '\"']; let s = \"crate::alpha\";\ncrate::beta::f();",
        &["gamma → beta at 2"],
    );
    check(
        "gamma.rs",
        "let s = b\"crate::alpha\"; let c = b'\\''; let r = br##\"crate::beta\"##; let r#fn = 1;\ncrate::delta::f();",
        &["gamma → delta at 2"],
    );
    check(
        "gamma.rs",
        "tracing::info!(n = crate::alpha::count());\nlet x = a::crate_like::b;",
        &["gamma → alpha at 1"],
    );
    check("lib.rs", "pub mod alpha;\npub mod beta;", &[]);
}

/// Names of the store's methods that change what is stored. A method whose name starts
/// with none of these only reads.
const WRITES: &[&str] = &[
    "import_",
    "insert_",
    "append_",
    "set_",
    "widen_",
    "mark_",
    "rekey_",
    "join_",
    "end_",
    "record_",
    "upsert_",
    "raise_",
    "prune_",
    "enqueue_",
    "claim_",
    "control_",
    "forget_",
    "clear_",
    "put_",
    "use_",
    "secret_or_",
    "revoke_",
    "open_",
    "book_",
    "update_",
    "act_",
    "sign_",
    "cancel_",
    "apply_",
    "answer_",
    "bench_",
];

/// The server and the command line read the store directly (a page, a list), but every
/// change goes through the engine or a source, which decide what it means (issue 19): a
/// route that wrote through `engine.store()` held recovery logic the engine did not see.
#[test]
fn the_server_and_the_command_line_change_the_store_only_through_the_engine() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let lib = std::fs::read_to_string(root.join("store/src/lib.rs")).unwrap();
    let mut methods = BTreeSet::new();
    for line in lib.lines() {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("async fn ").or_else(|| line.strip_prefix("fn ")) {
            methods.insert(rest.split(['(', '<']).next().unwrap().to_owned());
        }
    }
    let writes: BTreeSet<&String> =
        methods.iter().filter(|m| WRITES.iter().any(|prefix| m.starts_with(prefix))).collect();
    assert!(writes.len() > 40, "the store's writes were found: {writes:?}");
    let mut problems = Vec::new();
    for krate in ["server", "cli"] {
        let mut files = Vec::new();
        rust_files(&root.join(krate).join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let tokens = without_accessor_calls(tokenize(&text));
            for window in tokens.windows(4) {
                if let [
                    (Token::Ident(store), line),
                    (Token::Punct('.'), _),
                    (Token::Ident(method), _),
                    (Token::Punct('('), _),
                ] = window
                    && store == "store"
                    && writes.contains(method)
                {
                    problems.push(format!("{}:{line}: store.{method}", file.display()));
                }
            }
        }
    }
    assert!(problems.is_empty(), "writes to the store outside the engine:\n  {}", problems.join("\n  "));
}

/// `engine.store().write(..)` read as `engine.store.write(..)`: the `()` of the engine's
/// accessor dropped, so one pattern finds a write however the store was reached.
fn without_accessor_calls(tokens: Vec<(Token, usize)>) -> Vec<(Token, usize)> {
    let mut kept: Vec<(Token, usize)> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let accessor = matches!(&tokens[i].0, Token::Ident(name) if name == "store")
            && matches!(tokens.get(i + 1), Some((Token::Punct('('), _)))
            && matches!(tokens.get(i + 2), Some((Token::Punct(')'), _)));
        kept.push(tokens[i].clone());
        i += if accessor { 3 } else { 1 };
    }
    kept
}
