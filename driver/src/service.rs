//! The driver's gRPC service: executor registration, heartbeats, job submission.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::ipc::writer::StreamWriter;
use datafusion::common::Result;
use datafusion::logical_expr::LogicalPlan;
use futures::{FutureExt, Stream, StreamExt};
use minispark_planner::config::ShuffleCompression;
use minispark_planner::ipc::write_options;
use minispark_planner::logical_codec::decode_logical_plan;
use minispark_proto::driver_server::Driver as DriverRpc;
use minispark_proto::{
    HeartbeatRequest, HeartbeatResponse, JobEnd, JobEvent, Progress, RegisterExecutorRequest,
    RegisterExecutorResponse, StageProgress, StatementEnd, StatementStart, SubmitJobRequest,
    job_event,
};
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};
use tracing::warn;

use crate::cluster::Cluster;
use crate::deep_work;
use crate::job::JobSession;
use crate::statement_errors::{in_statement, statement_places, strip_bom};

#[derive(Debug)]
pub struct DriverService {
    pub cluster: Arc<Cluster>,
}

type JobEventStream = Pin<Box<dyn Stream<Item = Result<JobEvent, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl DriverRpc for DriverService {
    async fn register_executor(
        &self,
        request: Request<RegisterExecutorRequest>,
    ) -> Result<Response<RegisterExecutorResponse>, Status> {
        let Some(info) = request.into_inner().executor else {
            return Err(Status::invalid_argument(
                "RegisterExecutor without executor info",
            ));
        };
        self.cluster
            .register(&info)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Response::new(RegisterExecutorResponse {
            heartbeat_interval_ms: self.cluster.heartbeat_interval.as_millis() as u64,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let beat = request.into_inner();
        let known = self
            .cluster
            .heartbeat(&beat.executor_id, beat.running_tasks as usize);
        Ok(Response::new(HeartbeatResponse { known }))
    }

    type SubmitJobStream = JobEventStream;

    async fn submit_job(
        &self,
        request: Request<SubmitJobRequest>,
    ) -> Result<Response<Self::SubmitJobStream>, Status> {
        let request = request.into_inner();
        let session = JobSession::new(Arc::clone(&self.cluster), &request.settings)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (tx, rx) = mpsc::channel::<Result<JobEvent, Status>>(4);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), Status>>();
        let panic_tx = tx.clone();
        // Progress, when asked for: ends when the job does (`done`).
        let (done, job_done) = oneshot::channel::<()>();
        if request.progress {
            tokio::spawn(send_progress(
                Arc::clone(&self.cluster),
                session.clone(),
                tx.clone(),
                job_done,
            ));
        }
        // Parsing, decoding, planning and running happen on a thread with a
        // deep stack (see `deep_work`): a deep expression cannot overflow a
        // runtime worker and abort the driver. When the client goes away,
        // `tx` fails and the job ends, dropping (and so cancelling) it.
        let job = async move {
            let statements = match read_work(&request, &session) {
                Ok(statements) => statements,
                Err(status) => {
                    let _ = ready_tx.send(Err(status));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let places = if request.logical_plan.is_empty() {
                statement_places(strip_bom(&request.script))
            } else {
                vec![]
            };
            if let Err(e) = run_script(session, statements, &places, &tx).await {
                let _ = tx.send(Err(Status::internal(e.to_string()))).await;
            }
            drop(done);
        };
        // Even a panic reaches the client as an error instead of a silently
        // ended stream.
        deep_work::spawn_job("minispark-job", job, move |message| {
            let _ = panic_tx.blocking_send(Err(Status::internal(format!(
                "internal error: the job task failed: {message}"
            ))));
        })
        .map_err(|e| Status::resource_exhausted(e.to_string()))?;
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(status)) => return Err(status),
            Err(_) => {
                return Err(Status::internal(
                    "internal error: the job failed before it started",
                ));
            }
        }
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        Ok(Response::new(Box::pin(stream)))
    }
}

/// The statements of a submitted job: its script parsed and measured (see
/// [`deep_work::parse_checked`]), or its DataFrame plan decoded. Runs on
/// the job's deep-stack thread.
fn read_work(request: &SubmitJobRequest, session: &JobSession) -> Result<Vec<Work>, Status> {
    if request.logical_plan.is_empty() {
        Ok(deep_work::parse_checked(&request.script)
            .map_err(|e| Status::invalid_argument(e.to_string()))?
            .into_iter()
            .map(Work::Statement)
            .collect())
    } else {
        let plan = decode_logical_plan(&request.logical_plan, &session.context().task_ctx())
            .map_err(|e| {
                Status::invalid_argument(format!(
                    "cannot decode the DataFrame's plan: {}",
                    minispark_proto::limits::explain_decode_error(&e.to_string())
                ))
            })?;
        Ok(vec![Work::Plan(request.script.clone(), Box::new(plan))])
    }
}

/// Error used to stop a script when the client has gone.
fn client_gone() -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::Execution("client disconnected; job cancelled".into())
}

/// How often a job's progress is looked at (Spark's console progress bar:
/// 200 ms).
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

/// Sends the running stages of `session`'s jobs to its client whenever they
/// change, until `job_done` fires or the client goes.
async fn send_progress(
    cluster: Arc<Cluster>,
    session: JobSession,
    tx: mpsc::Sender<Result<JobEvent, Status>>,
    mut job_done: oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(PROGRESS_INTERVAL);
    let mut last: Option<Vec<StageProgress>> = None;
    loop {
        tokio::select! {
            _ = &mut job_done => return,
            _ = tick.tick() => {}
        }
        let ours = session.started_jobs();
        let stages: Vec<StageProgress> = cluster
            .status
            .active_stages()
            .into_iter()
            .filter(|p| ours.contains(&p.job_id))
            .map(|p| StageProgress {
                job_id: p.job_id,
                stage: p.stage as u32,
                done: p.done as u32,
                total: p.total as u32,
                running: p.running as u32,
            })
            .collect();
        if last.as_ref() == Some(&stages) {
            continue;
        }
        let event = JobEvent {
            event: Some(job_event::Event::Progress(Progress {
                stages: stages.clone(),
            })),
        };
        if tx.send(Ok(event)).await.is_err() {
            return;
        }
        last = Some(stages);
    }
}

/// One unit of a submitted job: a statement of a script, or a DataFrame's
/// logical plan with its label.
enum Work {
    Statement(datafusion::sql::parser::Statement),
    Plan(String, Box<LogicalPlan>),
}

async fn run_script(
    session: JobSession,
    statements: Vec<Work>,
    places: &[crate::statement_errors::StatementPlace],
    tx: &mpsc::Sender<Result<JobEvent, Status>>,
) -> Result<()> {
    let send = |event: job_event::Event| async {
        tx.send(Ok(JobEvent { event: Some(event) }))
            .await
            .map_err(|_| client_gone())
    };
    let count = statements.len() as u32;
    for (index, statement) in statements.into_iter().enumerate() {
        let start = Instant::now();
        let (sql, execution) = match statement {
            Work::Statement(statement) => (
                statement.to_string(),
                session.execute_statement(statement).boxed(),
            ),
            Work::Plan(label, plan) => (label, session.execute_logical_plan(*plan).boxed()),
        };
        // Stop as soon as the client disconnects, even mid-job.
        let result = tokio::select! {
            r = execution => r.map_err(|e| in_statement(e, index, places))?,
            _ = tx.closed() => {
                warn!("client disconnected; cancelling job");
                return Err(client_gone());
            }
        };
        if !result.returns_rows {
            continue;
        }
        let mut writer = StreamWriter::try_new_with_options(
            Vec::new(),
            &result.schema,
            write_options(ShuffleCompression::Lz4)?,
        )?;
        let ipc_schema = std::mem::take(writer.get_mut());
        send(job_event::Event::StatementStart(StatementStart {
            index: index as u32,
            sql,
            ipc_schema,
        }))
        .await?;
        let mut rows = 0u64;
        let counters = result.counters.map(|c| c.to_proto());
        let mut stream = result.stream;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| in_statement(e, index, places))?;
            rows += batch.num_rows() as u64;
            writer.write(&batch)?;
            let bytes = std::mem::take(writer.get_mut());
            send(job_event::Event::IpcData(bytes)).await?;
        }
        writer.finish()?;
        let tail = std::mem::take(writer.get_mut());
        send(job_event::Event::IpcData(tail)).await?;
        send(job_event::Event::StatementEnd(StatementEnd {
            index: index as u32,
            rows,
            elapsed_ms: start.elapsed().as_millis() as u64,
            counters,
        }))
        .await?;
    }
    send(job_event::Event::JobEnd(JobEnd {
        statements: count,
        warnings: session.take_warnings(),
    }))
    .await?;
    Ok(())
}
