//! README.md against the code it documents.

use minispark::planner::config::{SETTINGS, settings_markdown};

/// The README's settings table (section "### Settings") is the declared
/// settings, row by row: key, default and description. On a mismatch the
/// message holds the whole expected table (also printed by
/// `minispark settings --markdown`), to paste over the README's.
#[test]
fn readme_settings_table_is_the_declared_settings() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let section = readme
        .split("\n### Settings\n")
        .nth(1)
        .expect("README.md has a ### Settings section");
    let rows: Vec<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    let expected = settings_markdown();
    let fix = format!(
        "README.md's settings table differs from planner/src/config.rs; \
         replace it with (`minispark settings --markdown`):\n\n{expected}"
    );
    let expected: Vec<&str> = expected.lines().collect();
    assert_eq!(
        expected.len(),
        SETTINGS.len() + 2,
        "header, rule, one row each"
    );
    for (i, want) in expected.iter().enumerate() {
        let what = match i {
            0 | 1 => "the header".to_string(),
            _ => SETTINGS[i - 2].name(),
        };
        assert_eq!(rows.get(i), Some(want), "row of {what}\n{fix}");
    }
    assert_eq!(rows.len(), expected.len(), "extra rows\n{fix}");
}
