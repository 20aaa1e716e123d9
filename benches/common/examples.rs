//! The SQL examples of `examples/netflix`, shared by the test suite and the
//! benchmark runner so that every example, including ones added later, is
//! both tested and benchmarked.

use std::path::Path;

/// The examples' names (file names without `.sql`), sorted.
pub fn netflix_sql_examples() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/netflix");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".sql").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}
