//! Work on what arrives over the wire (SQL text, serialized plans) that may
//! nest deeply: it runs on threads with a large stack, and nesting beyond
//! [`MAX_PLAN_DEPTH`] is refused with an error naming the limit.
//!
//! Parsing a long `1+1+...+1` is iterative, but what follows is not:
//! DataFusion clones, compares and drops expressions recursively, so 5 000
//! terms overflow the 2 MiB stack of a tokio worker and abort the whole
//! driver. A job submitted over gRPC therefore runs on a thread of its own
//! with a [`DEEP_WORK_STACK_BYTES`] stack (address space, touched only as
//! deep as the plan goes), and its SQL is measured before it is planned.
//! Serialized plans are decoded by prost, whose recursion limit (100 nested
//! messages) refuses deeper ones before they are built.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::{DataFusionError, Result};
use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, TableFactor, Visit, Visitor};
pub use minispark_proto::limits::{DEEP_WORK_STACK_BYTES, MAX_PLAN_DEPTH};

/// Most jobs running at once on deep-stack threads of one driver; more are
/// refused (each holds a thread).
pub const MAX_CONCURRENT_JOBS: usize = 512;

/// Jobs running on deep-stack threads now.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Releases a job's place when its thread ends.
struct Place;

impl Drop for Place {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `job` to completion on a new thread with a deep stack, inside the
/// current tokio runtime (tasks it spawns run on the runtime's workers).
/// `on_panic` gets the panic's message if the job panics.
pub fn spawn_job<F>(
    name: &str,
    job: F,
    on_panic: impl FnOnce(String) + Send + 'static,
) -> Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let running = RUNNING.fetch_add(1, Ordering::SeqCst);
    let place = Place;
    if running >= MAX_CONCURRENT_JOBS {
        return Err(DataFusionError::ResourcesExhausted(format!(
            "the driver runs at most {MAX_CONCURRENT_JOBS} jobs at once; try again later"
        )));
    }
    let handle = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name(name.to_string())
        .stack_size(DEEP_WORK_STACK_BYTES)
        .spawn(move || {
            let _place = place;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                handle.block_on(job);
            }));
            if let Err(panic) = result {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                on_panic(message);
            }
        })
        .map_err(|e| {
            DataFusionError::ResourcesExhausted(format!("cannot start a job thread: {e}"))
        })?;
    Ok(())
}

/// Runs `f` on a thread with a deep stack and waits for it without
/// blocking the runtime.
pub async fn on_deep_stack<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("minispark-deep".into())
        .stack_size(DEEP_WORK_STACK_BYTES)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| DataFusionError::ResourcesExhausted(format!("cannot start a thread: {e}")))?;
    rx.await
        .map_err(|_| DataFusionError::Execution("the work thread failed".into()))
}

/// Measures nesting: expressions in expressions, queries in queries,
/// relations and set operations in a query.
#[derive(Default)]
struct Depth {
    current: usize,
    deepest: usize,
    relations: usize,
    /// CASE expressions inside CASE expressions, now and at most.
    cases: usize,
    deepest_case: usize,
}

/// Deepest nesting of CASE expressions accepted. A plan travels to the
/// executors as protobuf, decoded at most [`minispark_proto::limits::PROTOBUF_NESTING_LIMIT`]
/// messages deep, and every CASE level takes several: deeper CASEs could
/// never run, and planning them costs more than linear time (a CASE nested
/// 2 000 deep plans for minutes), so they are refused before planning.
pub const MAX_CASE_NESTING: usize = minispark_proto::limits::PROTOBUF_NESTING_LIMIT;

impl Depth {
    fn enter(&mut self, levels: usize) -> ControlFlow<usize> {
        self.current += levels;
        self.deepest = self.deepest.max(self.current);
        if self.deepest > MAX_PLAN_DEPTH {
            ControlFlow::Break(self.deepest)
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Set operations along the left spine of a query body (`a UNION b UNION c`
/// nests to the left).
fn set_operations(query: &Query) -> usize {
    let mut n = 0;
    let mut body: &SetExpr = &query.body;
    while let SetExpr::SetOperation { left, .. } = body {
        n += 1;
        body = left;
    }
    n
}

impl Visitor for Depth {
    type Break = usize;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<usize> {
        self.enter(1 + set_operations(query))
    }

    fn post_visit_query(&mut self, query: &Query) -> ControlFlow<usize> {
        self.current -= 1 + set_operations(query);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, _factor: &TableFactor) -> ControlFlow<usize> {
        // Joins nest in the plan: every relation of a FROM is a level.
        self.relations += 1;
        if self.relations > MAX_PLAN_DEPTH {
            return ControlFlow::Break(self.relations);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<usize> {
        if matches!(expr, Expr::Case { .. }) {
            self.cases += 1;
            self.deepest_case = self.deepest_case.max(self.cases);
            if self.cases > MAX_CASE_NESTING {
                return ControlFlow::Break(self.cases);
            }
        }
        self.enter(1)
    }

    fn post_visit_expr(&mut self, expr: &Expr) -> ControlFlow<usize> {
        if matches!(expr, Expr::Case { .. }) {
            self.cases -= 1;
        }
        self.current -= 1;
        ControlFlow::Continue(())
    }
}

/// Refuses a statement that nests deeper than [`MAX_PLAN_DEPTH`]. Call it
/// on a deep stack: it walks the statement recursively.
pub fn check_statement_depth(statement: &DFStatement) -> Result<()> {
    let mut depth = Depth::default();
    let flow = visit_statement(statement, &mut depth);
    match flow {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(levels) if depth.deepest_case > MAX_CASE_NESTING => {
            Err(DataFusionError::Plan(format!(
                "CASE expressions nest more than {MAX_CASE_NESTING} deep (at least {levels}); \
                 minispark refuses CASE nested deeper than its limit of {MAX_CASE_NESTING}: \
                 plans travel to executors as protobuf, decoded at most \
                 {MAX_CASE_NESTING} messages deep. Write the conditions as one flat \
                 CASE WHEN ... WHEN ... END"
            )))
        }
        ControlFlow::Break(levels) => Err(DataFusionError::Plan(format!(
            "the statement nests more than {MAX_PLAN_DEPTH} levels deep (at least {levels}: \
             expressions, subqueries, joins or set operations); minispark refuses plans deeper \
             than its nesting limit of {MAX_PLAN_DEPTH}"
        ))),
    }
}

fn visit_statement(statement: &DFStatement, depth: &mut Depth) -> ControlFlow<usize> {
    match statement {
        DFStatement::Statement(s) => s.visit(depth),
        DFStatement::Explain(e) => visit_statement(&e.statement, depth),
        DFStatement::CopyTo(copy) => match &copy.source {
            CopyToSource::Query(q) => q.visit(depth),
            CopyToSource::Relation(_) => ControlFlow::Continue(()),
        },
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => ControlFlow::Continue(()),
    }
}

/// Jobs running on deep-stack threads now.
pub fn running_jobs() -> usize {
    RUNNING.load(Ordering::SeqCst)
}

/// Parses a job script and checks each statement's nesting. Call it on a
/// deep stack, and drop what it returns there too (dropping a deep
/// statement recurses).
pub fn parse_checked(script: &str) -> Result<Vec<DFStatement>> {
    let statements = crate::job::parse_script(script)?;
    for s in &statements {
        check_statement_depth(s)?;
    }
    Ok(statements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(terms: usize) -> String {
        format!("SELECT {}", vec!["1"; terms].join("+"))
    }

    /// Parses on a deep stack; returns the statement count or the error.
    async fn parse(script: String) -> Result<usize> {
        on_deep_stack(move || parse_checked(&script).map(|s| s.len())).await?
    }

    #[tokio::test]
    async fn deep_statements_are_measured_and_refused_by_name() {
        assert_eq!(parse(chain(5_000)).await.unwrap(), 1);
        let err = parse(chain(MAX_PLAN_DEPTH + 10))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("nesting limit of {MAX_PLAN_DEPTH}")),
            "{err}"
        );
        let unions = vec!["SELECT 1"; MAX_PLAN_DEPTH + 10].join(" UNION ALL ");
        let err = parse(unions).await.unwrap_err().to_string();
        assert!(err.contains("nesting limit"), "{err}");
        let case = format!(
            "SELECT {}1{}",
            "CASE WHEN true THEN ".repeat(MAX_CASE_NESTING + 1),
            " ELSE 0 END".repeat(MAX_CASE_NESTING + 1)
        );
        let err = parse(case).await.unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "CASE nested deeper than its limit of {MAX_CASE_NESTING}"
            )),
            "{err}"
        );
        // Ordinary scripts pass.
        let ok = parse("SELECT 1; EXPLAIN SELECT (1 + 2) * 3".into()).await;
        assert_eq!(ok.unwrap(), 2);
    }
}
