//! The crate's top-level modules import one another one way: the graph of `crate::` paths in
//! `src/` has no cycle (docs/MODULES.md draws it). A cycle means something lives in the wrong
//! module; the failure names the cycle and the files on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<PathBuf>>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules: `src/x.rs` and `src/x/`, without `lib` and `main`.
fn modules() -> BTreeSet<String> {
    std::fs::read_dir(src())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?.to_owned();
            (p.is_dir() || p.extension().is_some_and(|e| e == "rs")).then_some(name)
        })
        .filter(|n| n != "lib" && n != "main")
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without line comments and without its unit tests (`#[cfg(test)] mod`
/// at the end, as this crate writes them), which may reach anywhere.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first path segments after each `crate::`: `crate::a::b` gives `a`, `crate::{a, b::c}`
/// gives `a` and `b`.
fn crate_paths(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut at_item = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => at_item = true,
                    c if c.is_whitespace() => {}
                    _ if at_item && depth == 1 => {
                        out.push(ident(&group[j..]));
                        at_item = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out
}

fn graph() -> Graph {
    let modules = modules();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut g = Graph::new();
    for file in files {
        let rel = file.strip_prefix(src()).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs").to_owned();
        if !modules.contains(&top) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for m in crate_paths(&code(&text)) {
            if m != top && modules.contains(&m) {
                g.entry(top.clone())
                    .or_default()
                    .entry(m)
                    .or_default()
                    .insert(rel.to_path_buf());
            }
        }
    }
    g
}

/// A cycle, as the modules on it (the first repeated at the end), if there is one.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in g.get(node).into_iter().flat_map(|d| d.keys()) {
            if let Some(c) = visit(g, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(g, n, &mut Vec::new(), &mut done))
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let g = graph();
    for (m, deps) in &g {
        eprintln!("{m} -> {:?}", deps.keys().collect::<Vec<_>>());
    }
    // The layers the house style names are there and point one way.
    for (from, to) in [
        ("pipeline", "capture"),
        ("engine", "pipeline"),
        ("app", "pipeline"),
    ] {
        assert!(g[from].contains_key(to), "{from} no longer uses {to}?");
    }
    if let Some(cycle) = find_cycle(&g) {
        let files: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("{} -> {}: {:?}", w[0], w[1], g[&w[0]][&w[1]]))
            .collect();
        panic!(
            "the modules import each other in a cycle: {}\n{}",
            cycle.join(" -> "),
            files.join("\n")
        );
    }
}

#[test]
fn the_checker_reads_grouped_paths_and_finds_cycles() {
    let code = code(
        "use crate::{a, b::{self, X}, c::d};\nfn f() { crate::e::g(); } // crate::z\n\
         #[cfg(test)]\nmod tests { use crate::y; }",
    );
    assert_eq!(crate_paths(&code), ["a", "b", "c", "e"]);
    let mut g = Graph::new();
    let edge = |g: &mut Graph, a: &str, b: &str| {
        g.entry(a.into())
            .or_default()
            .entry(b.into())
            .or_default()
            .insert(PathBuf::from(format!("{a}.rs")));
    };
    edge(&mut g, "app", "pipeline");
    edge(&mut g, "pipeline", "capture");
    assert_eq!(find_cycle(&g), None);
    edge(&mut g, "capture", "app");
    assert_eq!(
        find_cycle(&g).unwrap(),
        ["app", "pipeline", "capture", "app"]
    );
}
