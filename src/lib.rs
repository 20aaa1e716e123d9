//! # minispark: a distributed dataframe engine, a mini Spark on DataFusion
//!
//! A driver plans SQL or DataFrame jobs into stages with shuffle boundaries
//! and runs them on executors that exchange Arrow data over gRPC.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> datafusion::common::Result<()> {
//! use minispark::prelude::*;
//!
//! // An embedded cluster of two executors; "http://driver:7077" for a real one.
//! let session = Session::builder().master("local[2]").build().await?;
//!
//! // A built-in, generated data set: no files needed.
//! let events = session.table("netflix.tiny.viewing_events").await?;
//! let titles = session.table("netflix.tiny.titles").await?;
//!
//! // Transformations only build a plan...
//! let top = events
//!     .join(titles, JoinType::Inner, &["title_id"], &["title_id"], None)?
//!     .aggregate(vec![col("title")], vec![count(lit(1)).alias("views")])?
//!     .sort(vec![col("views").sort(false, true), col("title").sort(true, false)])?
//!     .limit(0, Some(3))?;
//!
//! // ...actions run it on the cluster: the stages and their shuffles,
//! println!("{}", top.explain().await?);
//! // and the answer.
//! let batches = top.collect().await?;
//! assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
//! # Ok(())
//! # }
//! ```
//!
//! The same job as SQL, with the command line:
//! `minispark submit job.sql --master local[2]`.
//!
//! ```text
//!   Session / DataFrame      minispark submit job.sql
//!             │                │
//!             ▼                ▼
//!   ┌─────────────┐  LaunchTask   ┌────────────┐   FetchPartition   ┌────────────┐
//!   │   driver    │──────────────▶│ executor 0 │◀──────────────────▶│ executor 1 │
//!   │   planner   │◀──────────────│  tasks     │   Arrow IPC blocks │  tasks     │
//!   └─────────────┘  TaskStatus   └────────────┘                    └────────────┘
//! ```
//!
//! * [`Session`] and [`DataFrame`]: the DataFrame API. A DataFrame is a
//!   DataFusion logical plan; actions (`collect`, `show`, `count`,
//!   `explain`, `write_parquet`) send it to the driver.
//!   [`DataFrame::collect_with_counters`] and [`Session::last_job_counters`]
//!   say what the job did ([`JobCounters`]: attempts, failures, executors
//!   lost, map outputs recomputed, adaptive and salting decisions).
//! * [`prelude`]: the session types plus DataFusion's expression builders.
//! * [`local`]: the embedded cluster behind `local[N]`.
//! * [`client`]: running job scripts (the CLI's `submit`).
//! * [`demo`]: `minispark demo shuffle`, a shuffle shown map task by map task.
//!
//! The crates underneath, in dependency order:
//! * [`proto`]: the gRPC contract.
//! * [`functions`]: the SQL functions of every session: Spark's Murmur3
//!   `hash` and partition ids, statistical functions, `salt_pick`.
//! * [`planner`]: stage cutting, exchange nodes, join hints, the built-in
//!   `tpch` and `netflix` catalogs, settings.
//! * [`executor`]: task runner and shuffle storage.
//! * [`driver`]: cluster registry, scheduler, sessions.

pub mod client;
pub mod dataframe;
pub mod demo;
pub mod local;
pub mod output;
pub mod prelude;
pub mod session;

pub use dataframe::{DataFrame, JoinStrategy};
pub use minispark_driver::job_counters::JobCounters;
pub use session::{Master, Session, SessionBuilder};

pub use minispark_datagen as datagen;
pub use minispark_driver as driver;
pub use minispark_executor as executor;
pub use minispark_functions as functions;
pub use minispark_planner as planner;
pub use minispark_proto as proto;
