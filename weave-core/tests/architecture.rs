//! The plan of weave-core, checked: its top-level modules form layers, and every `crate::`
//! path in a module names a module of a lower layer (or its own). So there is no import
//! cycle between modules, the call record and the leaves know nothing of the client or the
//! backends, and the backends know nothing of the client. ARCHITECTURE.md describes the
//! layers; this test is what keeps it true.
//!
//! Paths through the crate root's re-exports (`crate::Call`) count as paths to the module
//! that defines the item. Test modules (`#[cfg(test)] mod tests`) are not counted: a unit test
//! may reach anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// weave-core's top-level modules, lowest layer first. A module may use modules of its own
/// layer's predecessors only.
const LAYERS: &[&[&str]] = &[
    // Leaves: no knowledge of calls, clients or backends.
    &["error"],
    &["time", "limits", "digest", "own_work", "rand", "report"],
    &["ids", "refs", "query", "config"],
    // The protocol's wire types.
    &["schema"],
    // Conventions over the wire types: redaction, the GenAI mapping; the on/off switch.
    &["redact", "genai", "switch"],
    // The call record, beneath both the client and the backends.
    &["record"],
    // Backends: the `TraceServer` trait, the embedded store, the remote server.
    &["server"],
    // The client: `WeaveClient`, `Call`, queries, the background writer.
    &["client"],
    // The op runtime the macro's code calls; traces across processes.
    &["rt", "propagation"],
];

/// Inside `server`: the backends do not know each other.
const SEPARATE_BACKENDS: &[(&str, &str)] = &[("server/sqlite", "server/remote")];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's text without comments and without its `#[cfg(test)] mod tests`.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read source");
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers a `crate::` path starts with: `crate::a::b` gives `a`; `crate::{a, b::c}`
/// gives `a` and `b`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `weave_core::crate::…` never occurs; `$crate::` in macros does.
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(first_ident(&item));
                        item.clear();
                    }
                    _ => item.push(c),
                }
            }
            out.push(first_ident(&item));
        } else {
            out.push(first_ident(rest));
        }
    }
    out.retain(|s| !s.is_empty() && s != "self");
    out
}

fn first_ident(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The crate root's re-exports: item name → the top-level module it comes from.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for stmt in lib.split(';') {
        let Some(i) = stmt.find("pub use ") else {
            continue;
        };
        let stmt = &stmt[i + "pub use ".len()..];
        let module = first_ident(stmt);
        let names = match (stmt.find('{'), stmt.rfind('}')) {
            (Some(a), Some(b)) => stmt[a + 1..b].to_string(),
            _ => stmt.rsplit("::").next().unwrap_or("").to_string(),
        };
        for name in names.split(',') {
            let name = name.trim();
            let name = name.rsplit(" as ").next().unwrap_or(name);
            let name = name.rsplit("::").next().unwrap_or(name).trim();
            if !name.is_empty() {
                map.insert(name.to_string(), module.clone());
            }
        }
    }
    map
}

/// `src/server/sqlite/mod.rs` → `["server", "sqlite"]`.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// Every file's top-level module and the top-level modules it names.
fn edges() -> Vec<(PathBuf, String, BTreeSet<String>)> {
    let lib = code(&src().join("lib.rs"));
    let reexports = root_reexports(&lib);
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let path = module_path(&file);
        let Some(top) = path.first().cloned() else {
            continue; // lib.rs: declarations and re-exports only
        };
        let mut deps = BTreeSet::new();
        for name in crate_paths(&code(&file)) {
            let module = reexports.get(&name).cloned().unwrap_or(name);
            if module != top {
                deps.insert(module);
            }
        }
        out.push((file, top, deps));
    }
    out
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

#[test]
fn every_module_has_a_layer() {
    let lib = code(&src().join("lib.rs"));
    for line in lib.lines() {
        let line = line.trim();
        let decl = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "));
        if let Some(name) = decl {
            let name = name.trim_end_matches(';');
            assert!(
                layer_of(name).is_some(),
                "module `{name}` is not in LAYERS (tests/architecture.rs): give it a layer"
            );
        }
    }
}

#[test]
fn modules_use_only_lower_layers() {
    let mut wrong = Vec::new();
    for (file, top, deps) in edges() {
        let own = layer_of(&top).unwrap_or(usize::MAX);
        for dep in deps {
            match layer_of(&dep) {
                Some(l) if l < own => {}
                Some(_) => wrong.push(format!(
                    "{}: `{top}` (layer {own}) uses `{dep}` (layer {})",
                    file.strip_prefix(src()).unwrap_or(&file).display(),
                    layer_of(&dep).unwrap_or(0)
                )),
                // A name that is not a module (a macro, `crate::Result` through a path the
                // parser does not see as a re-export) is not an edge.
                None => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that go up or sideways between layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn backends_do_not_know_each_other() {
    for (a, b) in SEPARATE_BACKENDS {
        for (from, to) in [(a, b), (b, a)] {
            let mut files = Vec::new();
            let dir = src().join(from);
            if dir.is_dir() {
                rust_files(&dir, &mut files);
            } else {
                files.push(src().join(format!("{from}.rs")));
            }
            let needle = format!("crate::{}", to.replace('/', "::"));
            let sibling = format!("super::{}", to.rsplit('/').next().unwrap_or(to));
            for file in files {
                let code = code(&file);
                assert!(
                    !code.contains(&needle) && !code.contains(&sibling),
                    "{} names {to}: one backend must not depend on another",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn the_parser_sees_paths() {
    // The checks above are only as good as this parser.
    let paths = crate_paths("use crate::{a::B, c, d::{E, F}};\nlet x = crate::g::h();");
    assert_eq!(paths, ["a", "c", "d", "g"]);
    let map = root_reexports("pub use client::call::Call;\npub use server::{X, Y as Z};");
    assert_eq!(map.get("Call").map(String::as_str), Some("client"));
    assert_eq!(map.get("Z").map(String::as_str), Some("server"));
}

#[test]
fn the_environment_is_read_in_config_only() {
    // Every crate of the workspace: the SDK's settings come from weave-core's config.rs.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in [
        "weave-core/src",
        "weave-tracing/src",
        "weave-server/src",
        "src",
    ] {
        rust_files(&root.join(dir), &mut files);
    }
    let config = src().join("config.rs");
    let mut readers = Vec::new();
    for file in files {
        if file.canonicalize().ok() == config.canonicalize().ok() {
            continue;
        }
        let code = code(&file);
        if ["env::var(", "env::var_os(", "env::vars("]
            .iter()
            .any(|needle| code.contains(needle))
        {
            readers.push(file.display().to_string());
        }
    }
    assert!(
        readers.is_empty(),
        "read the environment in weave-core/src/config.rs (Settings), not in:\n{}",
        readers.join("\n")
    );
}
