//! Running a job script on a cluster, local or remote, and collecting each
//! statement's result.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::LogicalPlan;
use futures::StreamExt;
use minispark_driver::deep_work::parse_checked;
use minispark_driver::job::JobSession;
use minispark_driver::job_counters::JobCounters;
use minispark_driver::statement_errors::{in_statement, statement_places, strip_bom};
use minispark_driver::status_store::StageProgress;
use minispark_planner::ipc::ChunkDecoder;
use minispark_planner::logical_codec::encode_logical_plan;
use minispark_proto::{Security, SubmitJobRequest, job_event};

/// The result of one statement of a script.
#[derive(Debug, Clone)]
pub struct StatementOutput {
    /// Position of the statement in the script (0-based).
    pub index: usize,
    pub sql: String,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// What the statement's job did (attempts, failures, lost executors,
    /// recomputed outputs, adaptive and salting decisions); `None` when the
    /// statement ran no job.
    pub counters: Option<JobCounters>,
}

impl StatementOutput {
    /// True for the output of `EXPLAIN` / `EXPLAIN ANALYZE`: one text column named "plan".
    pub fn is_plan_text(&self) -> bool {
        self.schema.fields().len() == 1
            && self.schema.field(0).name() == "plan"
            && *self.schema.field(0).data_type() == arrow::datatypes::DataType::Utf8
    }

    /// The text cells of a plan output.
    pub fn plan_text(&self) -> Vec<String> {
        self.batches
            .iter()
            .flat_map(|b| {
                let col = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>();
                col.map(|c| c.iter().flatten().map(str::to_string).collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// Shows a job's warnings (what it ignored and why) on stderr, one line each.
pub fn print_warnings(warnings: &[String]) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    for w in warnings {
        let _ = writeln!(err, "warning: {w}");
    }
}

/// Runs every statement of `script` in `session`, calling `on_result` for
/// each statement that returns rows, in order. A failing statement's error
/// names it (number, line, first line); warnings go to stderr. Deep
/// statements need a deep stack: run this on a thread with one, as the
/// CLI does.
pub async fn run_script_in_session(
    session: &JobSession,
    script: &str,
    on_result: &mut dyn FnMut(StatementOutput) -> Result<()>,
) -> Result<()> {
    let places = statement_places(strip_bom(script));
    for (index, statement) in parse_checked(script)?.into_iter().enumerate() {
        let sql = statement.to_string();
        let result = session.execute_statement(statement).await;
        print_warnings(&session.take_warnings());
        let result = result.map_err(|e| in_statement(e, index, &places))?;
        if !result.returns_rows {
            continue;
        }
        let counters = result.counters;
        let mut stream = result.stream;
        let mut batches = vec![];
        while let Some(b) = stream.next().await {
            batches.push(b.map_err(|e| in_statement(e, index, &places))?);
        }
        on_result(StatementOutput {
            index,
            sql,
            schema: result.schema,
            batches,
            counters,
        })?;
    }
    Ok(())
}

/// Submits `script` to a driver over gRPC, proving `security`'s secret
/// (and with TLS for an `https://` master).
pub async fn run_script_remote(
    master: &str,
    security: &Security,
    script: &str,
    settings: HashMap<String, String>,
    on_result: &mut dyn FnMut(StatementOutput) -> Result<()>,
) -> Result<()> {
    run_script_remote_with_progress(master, security, script, settings, on_result, None).await
}

/// [`run_script_remote`], asking the driver for the progress of the job's
/// running stages when `on_progress` is given: it is called with them
/// whenever they change (what `submit` draws on a terminal).
pub async fn run_script_remote_with_progress(
    master: &str,
    security: &Security,
    script: &str,
    settings: HashMap<String, String>,
    on_result: &mut dyn FnMut(StatementOutput) -> Result<()>,
    on_progress: Option<&mut dyn FnMut(Vec<StageProgress>)>,
) -> Result<()> {
    let request = SubmitJobRequest {
        script: script.to_string(),
        settings,
        logical_plan: vec![],
        progress: on_progress.is_some(),
    };
    submit_remote(master, security, request, on_result, on_progress).await
}

/// Submits a DataFrame's logical plan to a driver over gRPC and returns its
/// result. `label` names the job in results and the driver's logs.
pub async fn run_plan_remote(
    master: &str,
    security: &Security,
    plan: &LogicalPlan,
    label: &str,
    settings: HashMap<String, String>,
) -> Result<StatementOutput> {
    let request = SubmitJobRequest {
        script: label.to_string(),
        settings,
        logical_plan: encode_logical_plan(plan)?,
        progress: false,
    };
    let mut output = None;
    submit_remote(
        master,
        security,
        request,
        &mut |out| {
            output = Some(out);
            Ok(())
        },
        None,
    )
    .await?;
    // A plan that returns no rows (DDL) sends no statement; it has an
    // empty result.
    Ok(output.unwrap_or_else(|| StatementOutput {
        index: 0,
        sql: label.to_string(),
        schema: Arc::new(Schema::empty()),
        batches: vec![],
        counters: None,
    }))
}

/// Sends one SubmitJob request and collects its statements' results.
async fn submit_remote(
    master: &str,
    security: &Security,
    request: SubmitJobRequest,
    on_result: &mut dyn FnMut(StatementOutput) -> Result<()>,
    mut on_progress: Option<&mut dyn FnMut(Vec<StageProgress>)>,
) -> Result<()> {
    let mut client = minispark_proto::driver_client(master, security)?;
    let response = client
        .submit_job(request)
        .await
        .map_err(|s| minispark_proto::from_status(s, &format!("driver at {master}")))?;
    let mut events = response.into_inner();
    let mut current: Option<(StatementOutput, ChunkDecoder)> = None;
    let mut ended = false;
    loop {
        let event = events
            .message()
            .await
            .map_err(|s| minispark_proto::from_status(s, &format!("driver at {master}")))?;
        let Some(event) = event.and_then(|e| e.event) else {
            break;
        };
        // Progress may come at any time, even after the end.
        if let job_event::Event::Progress(progress) = event {
            if let Some(on_progress) = on_progress.as_mut() {
                on_progress(
                    progress
                        .stages
                        .into_iter()
                        .map(|s| StageProgress {
                            job_id: s.job_id,
                            stage: s.stage as usize,
                            total: s.total as usize,
                            done: s.done as usize,
                            running: s.running as usize,
                        })
                        .collect(),
                );
            }
            continue;
        }
        if ended {
            return Err(DataFusionError::Execution(
                "driver sent events after the end of the job".into(),
            ));
        }
        match event {
            job_event::Event::StatementStart(start) => {
                let mut decoder = ChunkDecoder::new();
                decoder.push(bytes::Bytes::from(start.ipc_schema))?;
                let output = StatementOutput {
                    index: start.index as usize,
                    sql: start.sql,
                    schema: Arc::new(Schema::empty()),
                    batches: vec![],
                    counters: None,
                };
                current = Some((output, decoder));
            }
            job_event::Event::IpcData(data) => {
                let Some((output, decoder)) = current.as_mut() else {
                    return Err(DataFusionError::Execution(
                        "driver sent data before a statement".into(),
                    ));
                };
                output
                    .batches
                    .extend(decoder.push(bytes::Bytes::from(data))?);
            }
            job_event::Event::StatementEnd(end) => {
                let Some((mut output, mut decoder)) = current.take() else {
                    return Err(DataFusionError::Execution(
                        "driver ended an unknown statement".into(),
                    ));
                };
                decoder.finish()?;
                output.schema = decoder
                    .schema()
                    .unwrap_or_else(|| Arc::new(Schema::empty()));
                output.counters = end.counters.as_ref().map(JobCounters::from_proto);
                on_result(output)?;
            }
            job_event::Event::JobEnd(end) => {
                print_warnings(&end.warnings);
                ended = true;
            }
            job_event::Event::Progress(_) => {}
        }
    }
    if !ended {
        return Err(DataFusionError::Execution(format!(
            "the driver at {master} ended the job without finishing it"
        )));
    }
    Ok(())
}
