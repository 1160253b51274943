//! The layers of `shared/src` run one way (docs/architecture.md). These tests read
//! the sources, so a new import that runs back up a layer, a cycle between domain
//! modules, or a function naming an index fails here rather than in review.
//! No stack is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The code of a file as the build sees it outside tests: comments and the
/// `#[cfg(test)] mod tests { … }` block are left out (whatever follows the block
/// is still read).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let Some(start) = code.find("#[cfg(test)]\nmod tests {") else { return code };
    let mut depth = 0usize;
    let mut end = code.len();
    for (i, c) in code[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    end = start + i + 1;
                    break;
                }
            }
            _ => {}
        }
    }
    format!("{}{}", &code[..start], &code[end..])
}

/// Every `crate::NAME` a piece of code names (the top-level module it reaches;
/// the names `lib.rs` re-exports count as the module they come from).
fn crate_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let module = match name.as_str() {
            "Clock" | "IdGen" | "SystemClock" | "UlidGen" => "clock".to_string(),
            "Config" => "config".to_string(),
            "ApiError" => "error".to_string(),
            _ => name,
        };
        if !module.is_empty() {
            out.insert(module);
        }
    }
    out
}

/// The top-level module a file of `shared/src` belongs to (`domain`, `store`, `error`, ...).
fn layer_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("a file under shared/src");
    let first = rel.components().next().expect("a path").as_os_str().to_string_lossy().to_string();
    first.trim_end_matches(".rs").to_string()
}

/// What each part of `shared/src` may import from the crate, lowest layer first
/// (docs/architecture.md draws the same picture).
fn allowed() -> BTreeMap<&'static str, &'static [&'static str]> {
    const FOUNDATION: &[&str] = &["clock", "calls", "meter", "telemetry"];
    BTreeMap::from([
        ("clock", FOUNDATION),
        ("calls", FOUNDATION),
        ("meter", FOUNDATION),
        ("telemetry", FOUNDATION),
        ("domain", &["domain", "clock"][..]),
        ("config", &["domain", "clock"][..]),
        ("store", &["store", "domain", "config", "clock", "calls", "meter"][..]),
        ("mail", &["mail", "store", "domain", "config", "clock", "calls", "meter"][..]),
        ("stripe_adapter", &["stripe_adapter", "domain", "config", "clock", "calls", "meter"][..]),
        ("app", &["app", "store", "mail", "stripe_adapter", "domain", "config", "clock", "calls", "meter"][..]),
        (
            "http",
            &["http", "error", "app", "store", "mail", "stripe_adapter", "domain", "config", "clock", "calls", "meter"]
                [..],
        ),
        (
            "error",
            &["http", "error", "app", "store", "mail", "stripe_adapter", "domain", "config", "clock", "calls", "meter"]
                [..],
        ),
        (
            "idempotency",
            &[
                "idempotency",
                "http",
                "error",
                "app",
                "store",
                "mail",
                "stripe_adapter",
                "domain",
                "config",
                "clock",
                "calls",
                "meter",
            ][..],
        ),
    ])
}

#[test]
fn every_import_of_the_domain_crate_runs_down_a_layer() {
    let src = workspace().join("shared/src");
    let allowed = allowed();
    let mut wrong = Vec::new();
    for file in rust_files(&src) {
        let layer = layer_of(&src, &file);
        if layer == "lib" {
            continue;
        }
        let Some(may) = allowed.get(layer.as_str()) else {
            panic!("{} is in no layer: add `{layer}` to allowed() and to docs/architecture.md", file.display());
        };
        for module in crate_modules(&code_of(&file)) {
            if !may.contains(&module.as_str()) {
                wrong.push(format!("{} ({layer}) imports crate::{module}", file.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "imports that run back up a layer:\n{}", wrong.join("\n"));
}

/// The domain modules a piece of code names through `prefix` (`crate::domain::`,
/// or `super::` from a top-level domain file).
fn named_modules(code: &str, prefix: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        rest = &rest[i + prefix.len()..];
        // `super::{a, b::c}` names several modules at once.
        let names: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end]
                .split(',')
                .map(|part| part.trim().split("::").next().unwrap_or("").trim().to_string())
                .collect()
        } else {
            vec![rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()]
        };
        out.extend(names.into_iter().filter(|n| modules.contains(n)));
    }
    out
}

#[test]
fn domain_modules_import_each_other_without_a_cycle() {
    let dir = workspace().join("shared/src/domain");
    // A domain module is a file (`tier.rs`) or a folder (`promotion/`) of `domain/`.
    let module_of = |file: &Path| -> Option<String> {
        let rel = file.strip_prefix(&dir).ok()?;
        let first = rel.components().next()?.as_os_str().to_string_lossy().to_string();
        let name = first.trim_end_matches(".rs").to_string();
        (name != "mod").then_some(name)
    };
    let files = rust_files(&dir);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for file in &files {
        let Some(m) = module_of(file) else { continue };
        let code = code_of(file);
        let top_level = file.parent() == Some(dir.as_path());
        let mut deps = named_modules(&code, "crate::domain::", &modules);
        // From a top-level file `super::` is `domain`; inside a folder module it is
        // the folder itself, and `super::super::` is `domain`.
        deps.extend(named_modules(&code, if top_level { "super::" } else { "super::super::" }, &modules));
        deps.remove(&m);
        edges.get_mut(&m).expect("a module").extend(deps);
    }
    // Kahn's algorithm: whatever cannot be ordered sits on a cycle.
    let mut importers: BTreeMap<&str, usize> = edges.iter().map(|(m, d)| (m.as_str(), d.len())).collect();
    let mut ready: Vec<&str> = importers.iter().filter(|(_, n)| **n == 0).map(|(m, _)| *m).collect();
    let mut ordered = BTreeSet::new();
    while let Some(m) = ready.pop() {
        ordered.insert(m.to_string());
        for (other, deps) in &edges {
            if deps.contains(m) {
                let n = importers.get_mut(other.as_str()).expect("a module");
                *n -= 1;
                if *n == 0 {
                    ready.push(other);
                }
            }
        }
    }
    assert!(modules.contains("promotion") && modules.contains("tier"), "folder and file modules are both found");
    assert!(edges["promotion"].contains("tier"), "a folder module's imports are read");
    let on_cycle: Vec<String> = modules
        .iter()
        .filter(|m| !ordered.contains(*m))
        .map(|m| {
            let deps: Vec<&String> = edges[m].iter().filter(|d| !ordered.contains(*d)).collect();
            format!("{m} -> {deps:?}")
        })
        .collect();
    assert!(on_cycle.is_empty(), "domain modules on an import cycle:\n{}", on_cycle.join("\n"));
}

#[test]
fn functions_name_no_index_and_no_key_format() {
    let functions = workspace().join("functions");
    let mut wrong = Vec::new();
    for file in rust_files(&functions) {
        let code = code_of(&file);
        for needle in ["GSI1", "GSI2", "GSI3", "store::keys", "KeyConditionExpression", "key_condition_expression"] {
            if code.contains(needle) {
                wrong.push(format!("{} names {needle}", file.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "index and key choices belong to the store:\n{}", wrong.join("\n"));
}

#[test]
fn the_checks_above_see_what_they_look_for() {
    // A check that reads nothing passes for the wrong reason: hold the readers
    // against known text.
    let code = "use crate::store::Store;\n// crate::http in a comment\nlet x = crate::domain::tier::Tier;";
    let text: String = code
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(crate_modules(&text), BTreeSet::from(["store".to_string(), "domain".to_string()]));
    let src = workspace().join("shared/src");
    assert!(rust_files(&src.join("domain")).len() > 20, "the domain's files are found");
    assert_eq!(layer_of(&src, &src.join("store/keys.rs")), "store");
    assert_eq!(layer_of(&src, &src.join("error.rs")), "error");
}
