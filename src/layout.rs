//! The layout's own rule, checked by a test: no circle of imports between the crate's top-level
//! modules. A module's imports are the `crate::…` paths in its code (comments, its `tests`
//! module and `tests.rs` files left out); the command line (`src/cli/`, the binary) sits on
//! top and is not checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its code names.
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("src is readable").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("tests.rs") {
                files.push(p);
            }
        }
    }
    let top = |p: &Path| -> Option<String> {
        let rel = p.strip_prefix(src).ok()?;
        let first = rel.components().next()?.as_os_str().to_str()?;
        let name = first.strip_suffix(".rs").unwrap_or(first);
        (!matches!(name, "lib" | "main" | "cli")).then(|| name.to_string())
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|p| top(p)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for p in &files {
        let Some(from) = top(p) else { continue };
        let text = std::fs::read_to_string(p).expect("source is readable");
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for to in named(line) {
                if to != from && modules.contains(&to) {
                    graph.get_mut(&from).expect("module").insert(to);
                }
            }
        }
    }
    graph
}

/// The top-level modules a line names: `crate::a…` and each name in `crate::{a, b::c}`.
fn named(line: &str) -> Vec<String> {
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut out = Vec::new();
    for (i, _) in line.match_indices("crate::") {
        let rest = &line[i + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                // The names at the group's own level: `crate::{a::{b, c}, d}` names a and d.
                let (mut depth, mut start) = (0, true);
                for (j, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => start = true,
                        c if start && !c.is_whitespace() => {
                            start = false;
                            out.push(ident(&group[j..]));
                        }
                        _ => {}
                    }
                }
            }
            None => out.push(ident(rest)),
        }
    }
    out
}

/// A circle in `graph`, as the modules along it (first repeated at the end), if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit<'a>(
        m: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| *p == m) {
            let mut c: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
            c.push(m.to_string());
            return Some(c);
        }
        if !done.insert(m) {
            return None;
        }
        path.push(m);
        for next in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|m| visit(m, graph, &mut Vec::new(), &mut done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_circle_of_imports_between_modules() {
        let graph = imports(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
        assert!(graph.len() > 20, "modules found: {:?}", graph.keys());
        assert!(graph["pipeline"].contains("results") && !graph["report"].contains("pipeline"));
        if let Some(c) = circle(&graph) {
            panic!("import circle: {}", c.join(" → "));
        }
    }

    #[test]
    fn a_circle_is_found_and_named() {
        let g = |edges: &[(&str, &str)]| {
            let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (a, b) in edges {
                graph.entry(a.to_string()).or_default().insert(b.to_string());
                graph.entry(b.to_string()).or_default();
            }
            graph
        };
        assert_eq!(circle(&g(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
        assert_eq!(
            circle(&g(&[("a", "b"), ("b", "c"), ("c", "a")])),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        assert_eq!(
            named("use crate::review::{Review}; let x = crate::git::redact(&y);"),
            ["review", "git"]
        );
        assert_eq!(named("use crate::{evidence, rubric::Rubric};"), ["evidence", "rubric"]);
        assert_eq!(
            named("use crate::{store::{Stage, Store}, review};"),
            ["store", "review"]
        );
    }

    #[test]
    fn the_history_reads_the_repository_in_one_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/git/history");
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().into_string().unwrap();
            if matches!(name.as_str(), "read.rs" | "mod.rs") {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap();
            for io in ["git2", "rayon", "std::fs", "Repository"] {
                assert!(
                    !text.contains(io),
                    "{name} names {io}: the history's I/O belongs in read.rs"
                );
            }
        }
    }
}
