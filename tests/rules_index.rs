//! `docs/RULES.md` is the repository's own page of the behaviour contract: each rule id, what
//! it means, and where it is tested. This test keeps it true: every file, Gherkin tag and test
//! function it names exists, and every test or tag named after a rule is listed under it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A rule id at the start of a test name (`h2b_...` -> `H2`, `gw1_x2_...` -> `GW1`, `X2`).
fn rule_ids_of_test(name: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for token in name.split('_') {
        let letters: String = token.chars().take_while(char::is_ascii_lowercase).collect();
        let rest = &token[letters.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let tail = &rest[digits.len()..];
        let family = ["st", "gw", "c", "h", "s", "b", "o", "x", "m", "l"];
        if !family.contains(&letters.as_str())
            || digits.is_empty()
            || digits.len() > 2
            || !(tail.is_empty() || (tail.len() == 1 && "abcd".contains(tail)))
        {
            break;
        }
        ids.push(format!("{}{digits}", letters.to_ascii_uppercase()));
    }
    ids
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !path.ends_with("node_modules") {
                files(&path, ext, out);
            }
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn test_functions(text: &str) -> Vec<String> {
    text.split("fn ")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest[name.len()..].starts_with('(').then_some(name)
        })
        .collect()
}

#[test]
fn every_rule_row_names_things_that_exist_and_every_rule_test_is_listed() {
    let root = root();
    let page = fs::read_to_string(root.join("docs/RULES.md")).unwrap();
    // id -> (linked file, backticked names) of its row.
    let mut listed: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    for line in page
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| id"))
    {
        let cells: Vec<&str> = line.split(" | ").collect();
        let id = cells[0].trim_start_matches("| ").to_owned();
        assert!(!listed.contains_key(&id), "rule {id} is listed twice");
        let mut refs = Vec::new();
        for part in cells.last().unwrap().split("<br>") {
            let Some(start) = part.find("](../") else {
                continue;
            };
            let path: String = part[start + 5..]
                .chars()
                .take_while(|c| *c != ')')
                .collect();
            let names = part
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect();
            refs.push((path, names));
        }
        listed.insert(id, refs);
    }
    assert!(listed.len() >= 50, "only {} rules listed", listed.len());

    for (id, refs) in &listed {
        for (path, names) in refs {
            let text = fs::read_to_string(root.join(path))
                .unwrap_or_else(|e| panic!("{id}: {path} is named but unreadable: {e}"));
            for name in names {
                if let Some(tag) = name.strip_prefix('@') {
                    let base = tag.trim_end_matches(|c: char| c.is_ascii_lowercase());
                    assert_eq!(base, id, "{path}: tag {name} listed under {id}");
                    assert!(
                        text.split_whitespace().any(|w| w == name),
                        "{id}: {path} has no {name} tag"
                    );
                } else {
                    assert!(
                        test_functions(&text).contains(name),
                        "{id}: {path} has no fn {name}"
                    );
                    assert!(
                        rule_ids_of_test(name).contains(id),
                        "{id}: `{name}` is not named after {id}"
                    );
                }
            }
        }
    }

    // Completeness: every test named after a rule, and every rule tag, is on the page.
    let mut sources = Vec::new();
    files(&root.join("tests"), "rs", &mut sources);
    files(&root.join("src"), "rs", &mut sources);
    let mut missing = BTreeSet::new();
    for file in &sources {
        let text = fs::read_to_string(file).unwrap();
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for name in test_functions(&text) {
            for id in rule_ids_of_test(&name) {
                let row = listed.get(&id);
                let found = row.is_some_and(|refs| {
                    refs.iter()
                        .any(|(p, names)| *p == rel && names.contains(&name))
                });
                if !found {
                    missing.insert(format!("{id}: {rel} `{name}`"));
                }
            }
        }
    }
    let mut features = Vec::new();
    files(&root.join("features"), "feature", &mut features);
    for file in &features {
        let text = fs::read_to_string(file).unwrap();
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for word in text.split_whitespace().filter(|w| w.starts_with('@')) {
            let tag = word.trim_start_matches('@');
            let id: String = tag
                .chars()
                .take_while(|c| !c.is_ascii_lowercase())
                .collect();
            let row = listed.get(&id);
            let found = row.is_some_and(|refs| {
                refs.iter()
                    .any(|(p, names)| *p == rel && names.iter().any(|n| n == word))
            });
            if !found {
                missing.insert(format!("{id}: {rel} {word}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not listed in docs/RULES.md (run the index script or add them):\n{}",
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn test_names_map_to_rule_ids() {
    assert_eq!(rule_ids_of_test("h2b_after_a_restart"), ["H2"]);
    assert_eq!(rule_ids_of_test("gw1_x2_a_corrupt_record"), ["GW1", "X2"]);
    assert_eq!(rule_ids_of_test("l1_records"), ["L1"]);
    assert!(rule_ids_of_test("handles_are_send_and_sync").is_empty());
    assert!(rule_ids_of_test("s").is_empty());
}
