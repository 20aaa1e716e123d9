//! The driver's gRPC service: executor registration, heartbeats, job submission.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use arrow::ipc::writer::StreamWriter;
use datafusion::common::Result;
use datafusion::logical_expr::LogicalPlan;
use futures::{FutureExt, Stream, StreamExt};
use minispark_planner::config::ShuffleCompression;
use minispark_planner::ipc::write_options;
use minispark_planner::logical_codec::decode_logical_plan;
use minispark_proto::driver_server::Driver as DriverRpc;
use minispark_proto::{
    HeartbeatRequest, HeartbeatResponse, JobEnd, JobEvent, RegisterExecutorRequest,
    RegisterExecutorResponse, StatementEnd, StatementStart, SubmitJobRequest, job_event,
};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};
use tracing::warn;

use crate::cluster::Cluster;
use crate::job::{JobSession, parse_script};

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
        let statements = if request.logical_plan.is_empty() {
            parse_script(&request.script)
                .map_err(|e| Status::invalid_argument(e.to_string()))?
                .into_iter()
                .map(Work::Statement)
                .collect()
        } else {
            let plan = decode_logical_plan(&request.logical_plan, &session.context().task_ctx())
                .map_err(|e| {
                    Status::invalid_argument(format!("cannot decode the DataFrame's plan: {e}"))
                })?;
            vec![Work::Plan(request.script, Box::new(plan))]
        };
        let (tx, rx) = mpsc::channel::<Result<JobEvent, Status>>(4);
        // The job runs in its own task; when the client goes away, `tx`
        // fails and the task ends, dropping (and so cancelling) the job.
        tokio::spawn(async move {
            // The script runs in a task of its own so that even a panic
            // reaches the client as an error instead of a silently ended stream.
            let job_tx = tx.clone();
            let job = tokio::spawn(async move { run_script(session, statements, &job_tx).await });
            let error = match job.await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e.to_string(),
                Err(e) => format!("internal error: the job task failed: {e}"),
            };
            let _ = tx.send(Err(Status::internal(error))).await;
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Error used to stop a script when the client has gone.
fn client_gone() -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::Execution("client disconnected; job cancelled".into())
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
            r = execution => r?,
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
            let batch = batch?;
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
    send(job_event::Event::JobEnd(JobEnd { statements: count })).await?;
    Ok(())
}
