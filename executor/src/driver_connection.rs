//! The executor's side of its link to the driver: registration, heartbeats,
//! and registering again after the driver restarts.
//!
//! ```text
//!   register ──▶ heartbeat every interval ──▶ known? ── no ──▶ register again
//!                        │ fails                               (a restarted driver
//!                        ▼                                      does not know us)
//!            heartbeat again after a backoff (200 ms doubling up to 5 s),
//!            logging, for at most `driver_timeout` without an answer
//! ```
//!
//! A driver that goes away (killed, restarted, upgraded) does not take its
//! executors with it: they keep trying at the same address, and register
//! again, under the same id and instance token, as soon as a driver answers
//! there. Only a driver silent for [`DriverLink::driver_timeout`]
//! (`--driver-timeout`, by default [`DEFAULT_DRIVER_TIMEOUT`]: 15 minutes,
//! as Spark's standalone workers give up on their master after about as
//! long; an embedded `local[N]` cluster, whose driver never restarts, gives
//! its executors 15 s),
//! one that refuses the cluster secret, or one that refuses the
//! registration itself for a minute (the id is held by another live
//! executor) stops the executor. Spark's
//! executors die with their driver; its standalone *workers* re-register
//! with a restarted master, which is what a minispark executor does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use datafusion::common::{DataFusionError, Result};
use minispark_proto::Security;
use minispark_proto::driver_client::DriverClient;
use minispark_proto::{AuthChannel, ExecutorInfo, HeartbeatRequest, RegisterExecutorRequest};
use tracing::{info, warn};

/// How long an executor keeps trying to reach a silent driver before it
/// stops, unless told otherwise (`--driver-timeout`).
pub const DEFAULT_DRIVER_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The first wait after a failed call to the driver; it doubles after each
/// further failure, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a driver that answers but refuses the registration is asked
/// again (an id held by a lost process is freed within a heartbeat timeout).
const REFUSED_GIVE_UP: Duration = Duration::from_secs(60);

/// The wait after `failures` failed calls in a row (at least 1).
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// Where the driver is, and how to talk to it.
pub struct DriverLink {
    pub driver_url: String,
    pub security: Security,
    /// This executor, as it registers.
    pub info: ExecutorInfo,
    /// Running tasks, reported in heartbeats.
    pub active_tasks: Arc<AtomicUsize>,
    /// How long a silent driver is waited for before the executor stops.
    pub driver_timeout: Duration,
}

impl DriverLink {
    fn client(&self) -> Result<DriverClient<AuthChannel>> {
        minispark_proto::driver_client(&self.driver_url, &self.security)
    }

    /// Registers, then heartbeats forever; registers again whenever the
    /// driver does not know this executor (it restarted, or declared it
    /// lost). A failed heartbeat is retried with backoff. Returns an error
    /// only when the driver refuses the secret or stays unreachable for
    /// [`Self::driver_timeout`].
    pub async fn run(&self) -> Result<()> {
        let (id, url) = (&self.info.id, &self.driver_url);
        let mut client = self.client()?;
        let mut interval = self.register_patiently(&mut client).await?;
        // Failed heartbeats in a row, and when the first of them failed.
        let mut failures = 0u32;
        let mut silent_since = Instant::now();
        loop {
            let wait = if failures == 0 {
                interval
            } else {
                backoff(failures)
            };
            tokio::time::sleep(wait).await;
            let beat = HeartbeatRequest {
                executor_id: id.clone(),
                running_tasks: self.active_tasks.load(Ordering::SeqCst) as u32,
            };
            match client.heartbeat(beat).await {
                Ok(resp) => {
                    if failures > 0 {
                        info!(
                            executor_id = id,
                            driver_url = url,
                            failures,
                            "the driver answers again"
                        );
                    }
                    failures = 0;
                    if !resp.get_ref().known {
                        warn!(
                            executor_id = id,
                            driver_url = url,
                            "the driver does not know this executor (it restarted, or declared \
                             this executor lost); registering again"
                        );
                        interval = self.register_patiently(&mut client).await?;
                    }
                }
                Err(status) if status.code() == tonic::Code::Unauthenticated => {
                    return Err(DataFusionError::Execution(format!(
                        "the driver at {url} refused this executor's heartbeat: {}",
                        status.message()
                    )));
                }
                Err(status) => {
                    if failures == 0 {
                        silent_since = Instant::now();
                    }
                    failures += 1;
                    let silent = silent_since.elapsed();
                    if silent >= self.driver_timeout {
                        return Err(DataFusionError::Execution(format!(
                            "the driver at {url} has not answered for {}s ({failures} heartbeats); \
                             executor {id} stops: {}",
                            silent.as_secs(),
                            status.message()
                        )));
                    }
                    if failures == 1 || failures.is_multiple_of(10) {
                        warn!(
                            executor_id = id,
                            driver_url = url,
                            failures,
                            silent_s = silent.as_secs(),
                            retry_in_ms = backoff(failures).as_millis() as u64,
                            give_up_after_s = self.driver_timeout.as_secs(),
                            error = %status.message(),
                            "heartbeat failed; waiting for the driver to answer again"
                        );
                    }
                    // A fresh channel: the old one may hold a dead
                    // connection to the previous driver process.
                    client = self.client()?;
                }
            }
        }
    }

    /// Registers, retrying with backoff until the driver answers; returns
    /// the heartbeat interval the driver asks for.
    async fn register_patiently(&self, client: &mut DriverClient<AuthChannel>) -> Result<Duration> {
        let (id, url) = (&self.info.id, &self.driver_url);
        let start = Instant::now();
        let mut failures = 0u32;
        loop {
            let request = RegisterExecutorRequest {
                executor: Some(self.info.clone()),
            };
            match client.register_executor(request).await {
                Ok(resp) => {
                    let ms = resp.into_inner().heartbeat_interval_ms.max(10);
                    info!(
                        executor_id = id,
                        driver_url = url,
                        after_failures = failures,
                        "registered with driver"
                    );
                    return Ok(Duration::from_millis(ms));
                }
                // A wrong or missing secret will not get better by retrying.
                Err(status) if status.code() == tonic::Code::Unauthenticated => {
                    return Err(DataFusionError::Execution(format!(
                        "the driver at {url} refused this executor: {}",
                        status.message()
                    )));
                }
                // The driver answered and refused the registration (an id
                // still held by a process it has not declared lost yet,
                // say): that may clear within a heartbeat timeout, not
                // after minutes.
                Err(status)
                    if status.code() == tonic::Code::InvalidArgument
                        && start.elapsed() >= REFUSED_GIVE_UP =>
                {
                    return Err(DataFusionError::Execution(format!(
                        "the driver at {url} refused executor {id} for {}s: {}",
                        start.elapsed().as_secs(),
                        status.message()
                    )));
                }
                Err(status) => {
                    failures += 1;
                    let waited = start.elapsed();
                    if waited >= self.driver_timeout {
                        return Err(DataFusionError::Execution(format!(
                            "cannot reach the driver at {url} for {}s ({failures} tries); \
                             executor {id} stops: {}",
                            waited.as_secs(),
                            status.message()
                        )));
                    }
                    let wait = backoff(failures);
                    // The first failures are normal while a driver starts:
                    // logged once, then every 10th.
                    if failures == 3 || failures.is_multiple_of(10) {
                        warn!(
                            executor_id = id,
                            driver_url = url,
                            failures,
                            waited_s = waited.as_secs(),
                            retry_in_ms = wait.as_millis() as u64,
                            give_up_after_s = self.driver_timeout.as_secs(),
                            error = %status.message(),
                            "cannot reach the driver; trying again"
                        );
                    }
                    tokio::time::sleep(wait).await;
                    // A fresh channel: the old one may hold a dead
                    // connection to the previous driver process.
                    *client = self.client()?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_bounded() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(5), Duration::from_millis(3200));
        assert_eq!(backoff(6), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
