//! # minispark: a distributed dataframe engine, a mini Spark on DataFusion
//!
//! A driver plans SQL jobs into stages with shuffle boundaries and runs them
//! on executor processes that exchange Arrow data over gRPC.
//!
//! ```text
//!   minispark submit job.sql
//!        │
//!        ▼
//!   ┌─────────┐  LaunchTask   ┌────────────┐   FetchPartition   ┌────────────┐
//!   │ driver  │──────────────▶│ executor 0 │◀──────────────────▶│ executor 1 │
//!   │ planner │◀──────────────│  tasks     │   Arrow IPC blocks │  tasks     │
//!   └─────────┘  TaskStatus   └────────────┘                    └────────────┘
//! ```
//!
//! The crates, in dependency order:
//! * [`proto`]: the gRPC contract.
//! * [`planner`]: stage cutting, exchange nodes, Spark-compatible hashing,
//!   the built-in TPC-H catalog, settings.
//! * [`executor`]: task runner and shuffle storage.
//! * [`driver`]: cluster registry, scheduler, sessions.
//!
//! This crate adds an embedded cluster ([`local::LocalCluster`]) and the
//! `minispark` command line.
//!
//! Running a job script on an embedded cluster of two executor processes:
//!
//! ```no_run
//! # async fn example() -> datafusion::common::Result<()> {
//! use minispark::local::{LocalCluster, LocalClusterOptions};
//! let cluster = LocalCluster::start(LocalClusterOptions::new(2)?).await?;
//! let session = cluster.driver.session(&Default::default())?;
//! minispark::client::run_script_in_session(
//!     &session,
//!     "SELECT l_returnflag, count(*) FROM tpch.sf0_01.lineitem GROUP BY 1 ORDER BY 1",
//!     &mut |out| {
//!         println!("{}", arrow::util::pretty::pretty_format_batches(&out.batches)?);
//!         Ok(())
//!     },
//! )
//! .await?;
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod dataframe;
pub mod local;
pub mod output;
pub mod prelude;
pub mod session;

pub use dataframe::{DataFrame, JoinStrategy};
pub use session::{Master, Session, SessionBuilder};

pub use minispark_driver as driver;
pub use minispark_executor as executor;
pub use minispark_planner as planner;
pub use minispark_proto as proto;
