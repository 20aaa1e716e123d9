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

/// The backquoted names in README.md between `<!-- {list}:begin -->` and
/// `<!-- {list}:end -->`.
fn readme_names(readme: &str, list: &str) -> Vec<String> {
    let begin = format!("<!-- {list}:begin -->");
    let end = format!("<!-- {list}:end -->");
    let start = readme
        .find(&begin)
        .unwrap_or_else(|| panic!("README.md has {begin}"))
        + begin.len();
    let stop = readme
        .find(&end)
        .unwrap_or_else(|| panic!("README.md has {end}"));
    readme[start..stop]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// README.md's lists of Spark functions (section "### Spark SQL functions")
/// are what a session registers from `datafusion-spark`, and what it keeps
/// of its own. On a mismatch the message holds the lists to paste.
#[test]
fn readme_spark_function_lists_are_the_registration() {
    use datafusion::prelude::SessionContext;
    use minispark_functions::{
        register_minispark_functions,
        spark::{kept_names, register_spark_functions},
    };

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let ctx = SessionContext::new();
    register_minispark_functions(&ctx).unwrap();
    let registered = register_spark_functions(&ctx);
    let kept = kept_names(&registered);
    for (list, names) in [
        ("spark-functions-registered", &registered),
        ("spark-functions-kept", &kept),
    ] {
        let shown: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        assert_eq!(
            &readme_names(&readme, list),
            names,
            "README.md's {list} list differs from the registration; replace it with:\n\n{}",
            shown.join(", ")
        );
    }
}
