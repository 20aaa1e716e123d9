//! Which metadata file is an Iceberg table's current one, given the
//! table's location, without a catalog service.
//!
//! An Iceberg table is a folder whose `metadata/` holds one JSON file per
//! table version; a catalog normally remembers which is current. Without
//! one, minispark takes (as Spark's `HadoopTables` and DuckDB do):
//!
//! * a location that names a `*.metadata.json` file: that file;
//! * else `metadata/version-hint.text` when there is one (Hadoop tables):
//!   `metadata/v<N>.metadata.json`;
//! * else the newest `metadata/*.metadata.json`, by the version number its
//!   name starts with (`v3.metadata.json`, `00003-<uuid>.metadata.json` as
//!   pyiceberg and Java's catalogs write them).

use std::sync::Arc;

use datafusion::execution::object_store::ObjectStoreRegistry;
use iceberg::io::FileIO;

/// The current metadata file of the table at `location`, or an error
/// saying why there is none.
pub async fn current_metadata_file(
    io: &FileIO,
    registry: &Arc<dyn ObjectStoreRegistry>,
    location: &str,
) -> Result<String, String> {
    let location = location.trim_end_matches('/');
    if location.ends_with(".metadata.json") {
        return match io.exists(location).await {
            Ok(true) => Ok(location.to_string()),
            Ok(false) => Err(format!("Iceberg metadata file '{location}' does not exist")),
            Err(e) => Err(format!("cannot read '{location}': {e}")),
        };
    }
    let metadata = format!("{location}/metadata");
    let hint = format!("{metadata}/version-hint.text");
    if io.exists(&hint).await.map_err(|e| e.to_string())? {
        let text = io
            .new_input(&hint)
            .map_err(|e| e.to_string())?
            .read()
            .await
            .map_err(|e| format!("cannot read '{hint}': {e}"))?;
        let version = std::str::from_utf8(&text)
            .ok()
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| format!("'{hint}' does not hold a version number"))?;
        return Ok(format!("{metadata}/v{version}.metadata.json"));
    }
    if let Ok(url) = crate::object_store_io::url_of(location)
        && url.scheme() == "file"
        && let Ok(path) = url.to_file_path()
        && !path.exists()
    {
        return Err(format!("'{location}' does not exist"));
    }
    let names = crate::object_store_io::list_names(registry, &metadata).await?;
    newest(&names)
        .map(|name| format!("{metadata}/{name}"))
        .ok_or_else(|| {
            format!(
                "'{location}' is not an Iceberg table: no metadata/*.metadata.json in it \
                 (give the table's folder, or one of its metadata files)"
            )
        })
}

/// The version a metadata file's name starts with: `v12.metadata.json` and
/// `00012-<uuid>.metadata.json` are version 12.
pub(crate) fn version(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".metadata.json")?;
    let stem = stem.strip_prefix('v').unwrap_or(stem);
    let digits: String = stem.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    digits.parse().ok()
}

/// The name of the newest metadata file among `names`.
pub(crate) fn newest(names: &[String]) -> Option<&String> {
    names
        .iter()
        .filter_map(|n| version(n).map(|v| (v, n)))
        .max_by(|(a, na), (b, nb)| a.cmp(b).then_with(|| na.cmp(nb)))
        .map(|(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_both_spellings() {
        assert_eq!(version("v3.metadata.json"), Some(3));
        assert_eq!(version("00012-1b2c.metadata.json"), Some(12));
        assert_eq!(version("snap-1.avro"), None);
        assert_eq!(version("x.metadata.json"), None);
        let names: Vec<String> = [
            "00002-b.metadata.json",
            "00010-a.metadata.json",
            "00009-c.metadata.json",
            "version-hint.text",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(newest(&names).unwrap(), "00010-a.metadata.json");
        assert_eq!(newest(&[]), None);
    }
}
