//! `CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '...' [OPTIONS (...)]`.
//!
//! Options pick the version (time travel), in Spark's reader-option names or
//! short ones:
//!
//! | option | value |
//! |---|---|
//! | `'version'` or `'versionAsOf'` | a version number, e.g. `'3'` |
//! | `'timestamp'` or `'timestampAsOf'` | an instant, e.g. `'2026-01-01T00:00:00Z'` (a time without offset is UTC): the newest version committed at or before it |
//!
//! Without either the table reads its newest version at every query.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::common::{Result, ScalarValue, plan_datafusion_err, plan_err};
use datafusion::logical_expr::CreateExternalTable;

use crate::log::TimeTravel;
use crate::table::DeltaTable;

/// The `STORED AS DELTA` table factory.
#[derive(Debug, Default)]
pub struct DeltaTableFactory;

#[async_trait::async_trait]
impl TableProviderFactory for DeltaTableFactory {
    async fn create(
        &self,
        state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        if !cmd.table_partition_cols.is_empty() {
            return plan_err!(
                "a Delta table's partition columns come from its log: drop PARTITIONED BY"
            );
        }
        if !cmd.schema.fields().is_empty() {
            return plan_err!("a Delta table's columns come from its log: drop the column list");
        }
        let [location] = cmd.locations.as_slice() else {
            return plan_err!(
                "a Delta table has one LOCATION, got {}",
                cmd.locations.len()
            );
        };
        let travel = time_travel(&cmd.options)?;
        let table = DeltaTable::open(state, location, travel)
            .await
            .map_err(|e| e.context(format!("cannot create Delta table {}", cmd.name)))?;
        Ok(Arc::new(table))
    }
}

/// The version `options` ask for (keys as DataFusion passes them:
/// lowercase, `format.` before a bare key).
pub fn time_travel(options: &HashMap<String, String>) -> Result<TimeTravel> {
    let mut travel = TimeTravel::Latest;
    let mut set = |t: TimeTravel| {
        if travel != TimeTravel::Latest {
            return plan_err!("give one of the options 'version' and 'timestamp', not both");
        }
        travel = t;
        Ok(())
    };
    let mut keys: Vec<&String> = options.keys().collect();
    keys.sort();
    for key in keys {
        let value = options[key].trim();
        let bare = key.strip_prefix("format.").unwrap_or(key);
        match bare {
            "version" | "versionasof" => {
                let v = value.parse::<u64>().map_err(|_| {
                    plan_datafusion_err!(
                        "option '{bare}': '{value}' is not a version number (0, 1, 2, ...)"
                    )
                })?;
                set(TimeTravel::Version(v))?;
            }
            "timestamp" | "timestampasof" => set(TimeTravel::TimestampMillis(
                parse_timestamp(value).map_err(|e| e.context(format!("option '{bare}'")))?,
            ))?,
            other => {
                return plan_err!(
                    "unknown option '{other}' for a Delta table; its options are 'version' \
                     (or 'versionAsOf') and 'timestamp' (or 'timestampAsOf')"
                );
            }
        }
    }
    Ok(travel)
}

/// An instant as milliseconds since the epoch: RFC 3339 (`2026-01-01T10:00:00Z`,
/// `...+02:00`) or a date and time without an offset, taken as UTC.
pub fn parse_timestamp(text: &str) -> Result<i64> {
    let utc = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    match ScalarValue::try_from_string(text.to_string(), &utc) {
        Ok(ScalarValue::TimestampMillisecond(Some(ms), _)) => Ok(ms),
        _ => plan_err!(
            "'{text}' is not a timestamp; write e.g. '2026-01-01T10:00:00Z' or \
             '2026-01-01 10:00:00' (UTC)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_pick_the_version() {
        assert_eq!(time_travel(&options(&[])).unwrap(), TimeTravel::Latest);
        assert_eq!(
            time_travel(&options(&[("format.version", "3")])).unwrap(),
            TimeTravel::Version(3)
        );
        assert_eq!(
            time_travel(&options(&[("format.versionasof", "0")])).unwrap(),
            TimeTravel::Version(0)
        );
        assert_eq!(
            time_travel(&options(&[("format.timestamp", "1970-01-01T00:00:01Z")])).unwrap(),
            TimeTravel::TimestampMillis(1000)
        );
        assert_eq!(
            time_travel(&options(&[("format.timestampasof", "1970-01-01 00:00:02")])).unwrap(),
            TimeTravel::TimestampMillis(2000)
        );
        let both = time_travel(&options(&[
            ("format.version", "1"),
            ("format.timestamp", "1970-01-01"),
        ]));
        assert!(both.unwrap_err().to_string().contains("not both"));
        let bad = time_travel(&options(&[("format.version", "-1")])).unwrap_err();
        assert!(bad.to_string().contains("not a version number"), "{bad}");
        let bad = time_travel(&options(&[("format.timestamp", "yesterday")])).unwrap_err();
        assert!(bad.to_string().contains("not a timestamp"), "{bad}");
        let bad = time_travel(&options(&[("format.snapshot", "1")])).unwrap_err();
        assert!(
            bad.to_string().contains("unknown option 'snapshot'"),
            "{bad}"
        );
    }
}
