//! The code's layout, read from the source: the library's modules import each other without
//! circles, the library knows nothing of the subcommands or of clap, and subcommands never use
//! each other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// A file's code without its comments and its unit tests.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let before_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
    before_tests
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names that follow `prefix` in `text` (`crate::` → the modules a file refers to).
fn referenced(text: &str, prefix: &str) -> Vec<String> {
    text.match_indices(prefix)
        .map(|(at, _)| {
            text[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// The library's top-level modules (a file or a folder under `src/`), each with the other
/// modules its files refer to through `crate::`.
fn library_graph() -> BTreeMap<String, Vec<String>> {
    let root = src();
    let binary = ["main", "cli", "commands"];
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in rust_files(&root) {
        let relative = file.strip_prefix(&root).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_string_lossy().trim_end_matches(".rs").to_string();
        if binary.contains(&module.as_str()) || module == "lib" {
            continue;
        }
        let text = code(&file);
        let uses = graph.entry(module.clone()).or_default();
        uses.extend(
            referenced(&text, "crate::")
                .into_iter()
                .filter(|m| *m != module),
        );
    }
    let modules: Vec<String> = graph.keys().cloned().collect();
    for uses in graph.values_mut() {
        uses.retain(|m| modules.contains(m));
        uses.sort();
        uses.dedup();
    }
    graph
}

/// A circle in `graph`, if there is one, as the modules along it.
fn circle(graph: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.iter().any(|d| d == node) {
            return None;
        }
        path.push(node.to_string());
        for next in &graph[node] {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.push(node.to_string());
        None
    }
    let (mut path, mut done) = (Vec::new(), Vec::new());
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut path, &mut done))
}

#[test]
fn the_library_has_no_import_circles() {
    let graph = library_graph();
    assert!(graph.contains_key("schedule") && graph.contains_key("fit"));
    assert!(graph["fit"].contains(&"schedule".to_string()), "{graph:?}");
    assert_eq!(circle(&graph), None, "{graph:#?}");
    // the check itself finds a circle when there is one
    let mut bent = graph.clone();
    bent.get_mut("schedule").unwrap().push("fit".into());
    assert!(circle(&bent).is_some());
}

#[test]
fn the_core_knows_no_commands_and_commands_use_no_other_command() {
    let root = src();
    for file in rust_files(&root) {
        let relative = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = code(&file);
        if relative.starts_with("commands") {
            let others = referenced(&text, "commands::");
            assert!(others.is_empty(), "{relative} uses commands::{others:?}");
            assert!(!text.contains("use super::"), "{relative} uses a sibling");
        } else if !["main.rs", "cli.rs"].contains(&relative.as_str()) {
            assert!(!text.contains("clap"), "{relative} knows clap");
            assert!(
                !text.contains("crate::cli"),
                "{relative} knows the arguments"
            );
        }
    }
    // the schedule, the report and the plots take plain numbers
    for module in ["schedule", "report.rs", "plot.rs"] {
        let path = root.join(module);
        let files = if path.is_dir() {
            rust_files(&path)
        } else {
            vec![path]
        };
        for file in files {
            let text = code(&file);
            assert!(!text.contains("Tensor"), "{} knows tensors", file.display());
        }
    }
}
