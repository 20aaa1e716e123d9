//! The `minispark` command line: submit jobs, start drivers and executors,
//! generate data.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use datafusion::common::{DataFusionError, Result};
use minispark::Master;
use minispark::client::{StatementOutput, run_script_in_session, run_script_remote_with_progress};
use minispark::console_progress::{ConsoleProgress, ProgressFeed, terminal_wants_progress};
use minispark::local::{LocalCluster, LocalClusterOptions, default_slots};
use minispark::output::{Format, write_result};

#[derive(Parser, Debug)]
#[command(
    name = "minispark",
    version,
    about = "A distributed dataframe engine: a mini Spark on DataFusion"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a SQL job script (statements separated by `;`).
    Submit {
        /// The job script.
        script: PathBuf,
        /// `local[N]` (default local[2]): an embedded cluster with N executor
        /// processes; or `http://HOST:PORT`: a running driver.
        #[arg(long, default_value = "local[2]")]
        master: String,
        /// Output format of query results.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// A setting, `key=value` (minispark.* or datafusion.*); repeatable.
        /// `minispark settings` lists minispark's.
        #[arg(long = "conf", value_name = "KEY=VALUE")]
        conf: Vec<String>,
        /// For an http(s):// master: its secret and TLS.
        #[command(flatten)]
        security: SecurityArgs,
        #[command(flatten)]
        ui: UiArgs,
    },
    /// Start a driver.
    Driver {
        /// Address to bind, HOST:PORT (a name, an IP, 0.0.0.0 for every
        /// interface; port 0 picks a free one).
        #[arg(long, default_value = "0.0.0.0:7077")]
        listen: String,
        /// Address executors and clients are told to use, HOST[:PORT]
        /// (default: the bound address, or for 0.0.0.0 an address of this
        /// host that other hosts can reach).
        #[arg(long)]
        advertise: Option<String>,
        /// Seconds without a heartbeat after which an executor is lost.
        #[arg(long, default_value_t = 10)]
        heartbeat_timeout: u64,
        /// Port of the web UI (jobs, stages, tasks, executors; JSON under
        /// /api/v1/); taken: the next free one of 16. 0: no UI.
        #[arg(long, default_value_t = 4040)]
        ui_port: u16,
        /// Address the web UI binds. It shows statements and plans: keep it
        /// on loopback unless every user who can reach it may see them.
        #[arg(long, default_value = "127.0.0.1")]
        ui_host: String,
        /// Jobs the web UI keeps (Spark's spark.ui.retainedJobs).
        #[arg(long, default_value_t = minispark::driver::status_store::DEFAULT_RETAINED_JOBS)]
        ui_retained_jobs: usize,
        #[command(flatten)]
        security: SecurityArgs,
        /// Listen on a non-loopback address without a cluster secret: anyone
        /// who can reach the port can run code as this user. Only on a
        /// network you trust.
        #[arg(long)]
        insecure: bool,
    },
    /// Start an executor and register it with a driver.
    Executor {
        /// The driver, e.g. http://127.0.0.1:7077 or http://drivername:7077.
        #[arg(long)]
        driver: String,
        /// Address to bind, HOST:PORT (0.0.0.0:0: every interface, a free port).
        #[arg(long, default_value = "0.0.0.0:0")]
        listen: String,
        /// Address the driver and other executors reach this executor at,
        /// HOST[:PORT] (default: the bound address, or for 0.0.0.0 the local
        /// address of its connection to the driver; the port defaults to the
        /// bound one).
        #[arg(long)]
        advertise: Option<String>,
        /// Tasks run at once.
        #[arg(long)]
        slots: Option<usize>,
        /// Directory for shuffle files.
        #[arg(long)]
        work_dir: Option<PathBuf>,
        #[arg(long)]
        id: Option<String>,
        /// Seconds it waits for a silent driver (one restarting at the same
        /// address is registered with again) before it exits.
        #[arg(long, default_value_t = 900)]
        driver_timeout: u64,
        /// Memory its running tasks share, e.g. 512m or 4g (Spark's
        /// spark.executor.memory): sorts, aggregations and sort-merge joins
        /// spill into the work dir beyond their share. Default: unbounded.
        #[arg(long, value_parser = parse_memory)]
        memory: Option<u64>,
        /// Serve Prometheus metrics at http://HOST:PORT/metrics, HOST being
        /// --listen's (tasks, task durations, shuffle bytes written and
        /// served, spill, fetch failures). 0 picks a free port; the address
        /// is printed on stderr. Without it: not served. Unauthenticated.
        #[arg(long)]
        metrics_port: Option<u16>,
        #[command(flatten)]
        security: SecurityArgs,
        /// Listen on a non-loopback address without a cluster secret: anyone
        /// who can reach the port can run code as this user. Only on a
        /// network you trust.
        #[arg(long)]
        insecure: bool,
    },
    /// Generate a data set as Parquet.
    Gen {
        #[command(subcommand)]
        dataset: Dataset,
    },
    /// Teaching demos on an embedded cluster.
    Demo {
        #[command(subcommand)]
        demo: Demo,
    },
    /// Serve the web UI of finished jobs from their event logs
    /// (minispark.eventLog.dir): Spark's history server.
    History {
        /// The event log directory.
        #[arg(long)]
        dir: PathBuf,
        /// Port of the web UI (Spark's history server: 18080); 0 picks one.
        #[arg(long, default_value_t = 18080)]
        ui_port: u16,
        /// Address the web UI binds.
        #[arg(long, default_value = "127.0.0.1")]
        ui_host: String,
    },
    /// List every minispark.* setting with its default and meaning.
    Settings {
        /// As the README's Markdown table.
        #[arg(long)]
        markdown: bool,
    },
}

/// The cluster secret and TLS of a driver, an executor or a client (README:
/// "Securing a cluster").
#[derive(clap::Args, Debug, Clone, Default)]
struct SecurityArgs {
    /// A file holding the cluster secret (at least 16 bytes; else the
    /// MINISPARK_SECRET environment variable). Every process of a cluster
    /// needs the same one.
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
    /// This process's TLS certificate chain (PEM). A driver or executor with
    /// one serves only TLS, and presents it to the processes it connects to.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The CA (PEM) that signed the certificates of the processes this one
    /// connects to; needed for https:// addresses.
    #[arg(long, value_name = "PATH")]
    tls_ca: Option<PathBuf>,
    /// A server requires client certificates signed by this CA (PEM):
    /// mutual TLS.
    #[arg(long, value_name = "PATH")]
    tls_client_ca: Option<PathBuf>,
}

impl SecurityArgs {
    fn resolve(&self) -> Result<minispark::proto::Security> {
        minispark::proto::Security::resolve(
            self.secret_file.as_deref(),
            &minispark::proto::tls::TlsOptions {
                cert: self.tls_cert.clone(),
                key: self.tls_key.clone(),
                ca: self.tls_ca.clone(),
                client_ca: self.tls_client_ca.clone(),
            },
        )
    }
}

/// The web UI of an embedded cluster (`submit`, `demo`).
#[derive(clap::Args, Debug, Clone)]
struct UiArgs {
    /// Serve the web UI (printed on stderr) and keep the cluster and the UI
    /// up after the job until Ctrl-C.
    #[arg(long)]
    ui: bool,
    /// Port of the web UI; taken: the next free one of 16. 0 picks one.
    #[arg(long, default_value_t = 4040, requires = "ui")]
    ui_port: u16,
    /// Address the web UI binds (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1", requires = "ui")]
    ui_host: String,
}

impl UiArgs {
    /// The UI's listen address, when asked for.
    fn listen(&self) -> Option<String> {
        self.ui.then(|| ui_listen(&self.ui_host, self.ui_port))
    }
}

/// `HOST:PORT`, with an IPv6 host in brackets.
fn ui_listen(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Where an executor's `/metrics` listens: `--listen`'s host, `port`.
fn metrics_listen(listen: &str, port: u16) -> Result<String> {
    let host = match listen.rsplit_once(':') {
        Some((host, _)) if !host.is_empty() => host,
        _ => {
            return Err(DataFusionError::Configuration(format!(
                "--listen {listen}: expected HOST:PORT"
            )));
        }
    };
    Ok(format!("{host}:{port}"))
}

/// With `--ui`: prints the UI's URL and waits for Ctrl-C, so the cluster
/// and its UI stay up after the job.
async fn keep_ui_up(cluster: &LocalCluster) -> Result<()> {
    if let Some(url) = cluster.driver.ui_url() {
        let _ = writeln!(
            std::io::stderr(),
            "minispark UI at {url} : the cluster stays up until Ctrl-C"
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    Ok(())
}

/// Prints where an embedded cluster's UI is, as soon as it runs.
fn announce_ui(cluster: &LocalCluster) {
    if let Some(url) = cluster.driver.ui_url() {
        let _ = writeln!(std::io::stderr(), "minispark UI: {url}");
    }
}

#[derive(Subcommand, Debug)]
enum Demo {
    /// One GROUP BY and one join: the stages, what every map task wrote to
    /// every reduce partition, and the bytes that crossed the network.
    Shuffle {
        /// Executors of the embedded cluster.
        #[arg(long, default_value_t = 2)]
        executors: usize,
        /// Shuffle partitions (reduce tasks).
        #[arg(long, default_value_t = 4)]
        partitions: usize,
        /// Built-in netflix scale: tiny, small, medium, large or sf<X>.
        #[arg(long, default_value = "small")]
        scale: String,
        #[command(flatten)]
        ui: UiArgs,
    },
    /// One skewed join four ways: plain shuffled, broadcast, salted and
    /// adaptive (split); wall time, bytes shuffled, the join's reduce
    /// partitions and task times of each, and the answers checked equal.
    Skew {
        /// About this many viewing events (picks the netflix scale).
        #[arg(long, default_value_t = 20_000_000)]
        rows: u64,
        /// Zipf exponent of title popularity (minispark.netflix.skew).
        #[arg(long, default_value_t = 1.5)]
        skew: f64,
        /// Executors of the embedded cluster.
        #[arg(long, default_value_t = 2)]
        executors: usize,
        /// Shuffle partitions (reduce tasks of the join).
        #[arg(long, default_value_t = 16)]
        partitions: usize,
        #[command(flatten)]
        ui: UiArgs,
    },
}

#[derive(Subcommand, Debug)]
enum Dataset {
    /// TPC-H, one folder per table.
    Tpch {
        #[arg(long, default_value_t = 1.0)]
        scale_factor: f64,
        #[arg(long)]
        out: PathBuf,
    },
    /// The streaming-service data set (users, titles, viewing events, ...),
    /// one folder per table: the rows of the built-in `netflix.*` catalog.
    Netflix {
        /// Multiplies the row counts (1 = 20 million viewing events).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Zipf exponent of title popularity (0 = uniform).
        #[arg(long, default_value_t = minispark::datagen::NetflixParams::with_scale(1.0).skew)]
        skew: f64,
        /// Seed of the generator.
        #[arg(long, default_value_t = minispark::datagen::NetflixParams::with_scale(1.0).seed)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
}

/// Logs to stderr, at `RUST_LOG`'s level or `default`. Colours only on a
/// terminal, and not with `NO_COLOR` set (no-color.org): a log written to a
/// file or a pipe carries no escape codes.
fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Everything runs on a thread with a deep stack (address space, touched
    // only as deep as a plan goes): `submit` on an embedded cluster parses
    // and plans in this process, and a CASE nested 2 000 deep or a sum of
    // 5 000 terms recurses far beyond the main thread's 8 MiB.
    let main = std::thread::Builder::new()
        .name("minispark-main".into())
        .stack_size(minispark::driver::deep_work::DEEP_WORK_STACK_BYTES)
        .spawn(move || run_main(cli));
    match main.map(|thread| thread.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: cannot start the main thread: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_main(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {}", user_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// Prints one statement's result on stdout in `format` (a blank line
/// between two tables).
fn print_statement(
    stdout: &std::io::Stdout,
    first: &mut bool,
    format: Format,
    out: StatementOutput,
) -> Result<()> {
    let mut lock = stdout.lock();
    if format == Format::Table && !*first {
        writeln!(lock)?;
    }
    *first = false;
    if out.is_plan_text() && format == Format::Table {
        // EXPLAIN output reads better as plain text than as a table cell.
        for text in out.plan_text() {
            write!(lock, "{text}")?;
        }
    } else {
        write_result(&mut lock, &out.schema, &out.batches, format)?;
    }
    lock.flush()?;
    Ok(())
}

fn parse_conf(conf: &[String]) -> Result<HashMap<String, String>> {
    conf.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(DataFusionError::Configuration(format!(
                "invalid --conf '{kv}': expected key=value"
            ))),
        })
        .collect()
}

/// What the user reads of an error. A message from the driver (and,
/// through it, from an executor) arrives as DataFusion's "External error"
/// and is shown as the driver wrote it, without that label.
fn user_text(e: &DataFusionError) -> String {
    let text = match e {
        DataFusionError::External(inner) => inner.to_string(),
        other => other.to_string(),
    };
    // Also deeper in the chain of causes (a regex error inside an
    // optimizer rule's message).
    text.replace("External error: ", "")
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Submit {
            script,
            master,
            format,
            conf,
            security,
            ui,
        } => {
            init_tracing("warn");
            let text = std::fs::read_to_string(&script).map_err(|e| {
                DataFusionError::Execution(format!(
                    "cannot read job script {}: {e}",
                    script.display()
                ))
            })?;
            let settings = parse_conf(&conf)?;
            let stdout = std::io::stdout();
            let mut first = true;
            // Live progress of an embedded cluster's stages, on a terminal
            // only (minispark::console_progress); results print with the
            // bars taken down.
            let progress = std::cell::RefCell::new(ConsoleProgress::off());
            let mut print = |out: StatementOutput| -> Result<()> {
                progress
                    .borrow()
                    .suspend(|| print_statement(&stdout, &mut first, format, out))
            };
            // With --ui, the embedded cluster outlives the job (and Ctrl-C
            // then ends the wait, not a job).
            let mut kept: Option<LocalCluster> = None;
            let job = async {
                match master.parse::<Master>()? {
                    Master::Local(executors) => {
                        let mut options =
                            LocalClusterOptions::new(executors)?.with_settings(&settings)?;
                        options.ui = ui.listen();
                        let cluster = LocalCluster::start(options).await?;
                        announce_ui(&cluster);
                        let session = cluster.driver.session(&settings)?;
                        *progress.borrow_mut() =
                            ConsoleProgress::start(Arc::clone(&cluster.driver.cluster.status));
                        let result = run_script_in_session(&session, &text, &mut print).await;
                        progress.borrow_mut().finish();
                        if ui.ui {
                            kept = Some(cluster);
                        }
                        result
                    }
                    Master::Remote(_) if ui.ui => Err(DataFusionError::Configuration(
                        "--ui serves the UI of an embedded cluster (--master local[N]); a driver \
                         serves its own (minispark driver --ui-port)"
                            .into(),
                    )),
                    Master::Remote(url) => {
                        let security = security.resolve()?;
                        // The driver streams its progress only when it
                        // would be drawn.
                        let feed = ProgressFeed::default();
                        let mut on_progress = |stages| feed.set(stages);
                        let wanted = terminal_wants_progress();
                        if wanted {
                            *progress.borrow_mut() = ConsoleProgress::start_fed(feed.clone());
                        }
                        let result = run_script_remote_with_progress(
                            &url,
                            &security,
                            &text,
                            settings,
                            &mut print,
                            wanted.then_some(&mut on_progress as &mut dyn FnMut(_)),
                        )
                        .await;
                        progress.borrow_mut().finish();
                        result
                    }
                }
            };
            let result = tokio::select! {
                r = job => r,
                _ = tokio::signal::ctrl_c() => Err(DataFusionError::Execution("interrupted; job cancelled".into())),
            };
            progress.borrow_mut().finish();
            if let Some(cluster) = &kept {
                if let Err(e) = &result {
                    let _ = writeln!(std::io::stderr(), "error: {}", user_text(e));
                }
                keep_ui_up(cluster).await?;
            }
            result
        }
        Command::Driver {
            listen,
            advertise,
            heartbeat_timeout,
            ui_port,
            ui_host,
            ui_retained_jobs,
            security,
            insecure,
        } => {
            init_tracing("info");
            let driver = minispark::driver::Driver::start(minispark::driver::DriverOptions {
                listen,
                advertise,
                heartbeat_timeout: std::time::Duration::from_secs(heartbeat_timeout),
                security: security.resolve()?,
                insecure,
                ui_listen: (ui_port != 0).then(|| ui_listen(&ui_host, ui_port)),
                retained_jobs: ui_retained_jobs,
                ..Default::default()
            })
            .await?;
            if let Some(url) = driver.ui_url() {
                let _ = writeln!(std::io::stderr(), "minispark UI at {url}");
            }
            // Never panic over a closed stderr: the driver must keep serving.
            let _ = writeln!(
                std::io::stderr(),
                "minispark driver listening on {}",
                driver.url()
            );
            tokio::select! {
                r = driver.wait() => r,
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
        Command::Executor {
            driver,
            listen,
            advertise,
            slots,
            work_dir,
            id,
            driver_timeout,
            memory,
            metrics_port,
            security,
            insecure,
        } => {
            init_tracing("warn");
            let metrics_listen = match metrics_port {
                Some(port) => Some(metrics_listen(&listen, port)?),
                None => None,
            };
            let work_dir =
                work_dir.unwrap_or_else(|| std::env::temp_dir().join("minispark-executor"));
            minispark::executor::run_executor(minispark::executor::ExecutorOptions {
                driver_url: driver,
                listen,
                advertise,
                slots: slots.unwrap_or_else(|| default_slots(1)),
                work_dir,
                id,
                security: security.resolve()?,
                insecure,
                driver_timeout: std::time::Duration::from_secs(driver_timeout),
                memory,
                metrics_listen,
            })
            .await
        }
        Command::Demo {
            demo:
                Demo::Shuffle {
                    executors,
                    partitions,
                    scale,
                    ui,
                },
        } => {
            init_tracing("warn");
            if partitions == 0 {
                return Err(DataFusionError::Configuration(
                    "--partitions must be at least 1".into(),
                ));
            }
            let mut cluster_options = LocalClusterOptions::new(executors)?;
            cluster_options.ui = ui.listen();
            let cluster = LocalCluster::start(cluster_options).await?;
            announce_ui(&cluster);
            let options = minispark::demo::ShuffleDemoOptions { scale, partitions };
            print!(
                "{}",
                minispark::demo::shuffle_demo(&cluster, &options).await?
            );
            keep_ui_up(&cluster).await
        }
        Command::Demo {
            demo:
                Demo::Skew {
                    rows,
                    skew,
                    executors,
                    partitions,
                    ui,
                },
        } => {
            init_tracing("warn");
            let options = minispark::demo::skew::SkewDemoOptions {
                rows,
                skew,
                partitions,
            };
            options.validate()?;
            let mut cluster_options = LocalClusterOptions::new(executors)?;
            cluster_options.ui = ui.listen();
            let cluster = LocalCluster::start(cluster_options).await?;
            announce_ui(&cluster);
            let report = minispark::demo::skew::skew_demo(&cluster, &options).await?;
            print!("{}", report.text);
            keep_ui_up(&cluster).await?;
            if !report.answers_equal {
                return Err(DataFusionError::Execution(
                    "the four runs of the skew demo returned different answers".into(),
                ));
            }
            Ok(())
        }
        Command::History {
            dir,
            ui_port,
            ui_host,
        } => {
            init_tracing("warn");
            let history =
                minispark::driver::ui::history::start(&dir, &ui_listen(&ui_host, ui_port)).await?;
            let mut err = std::io::stderr();
            for problem in &history.problems {
                let _ = writeln!(err, "warning: {problem}");
            }
            let _ = writeln!(
                err,
                "minispark history server at http://{}/ : {} jobs from {} event logs in {}",
                history.address,
                history.jobs,
                history.files,
                dir.display()
            );
            tokio::select! {
                r = history.server => r.map_err(|e| DataFusionError::Execution(format!("history server: {e}"))),
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
        Command::Settings { markdown } => {
            let mut out = std::io::stdout().lock();
            if markdown {
                write!(out, "{}", minispark::planner::config::settings_markdown())?;
            } else {
                for s in minispark::planner::config::SETTINGS {
                    writeln!(out, "{} = {}  (accepts {})", s.name(), s.default, s.accepts)?;
                    writeln!(out, "    {}", s.description)?;
                }
            }
            Ok(())
        }
        Command::Gen {
            dataset: Dataset::Tpch { scale_factor, out },
        } => {
            init_tracing("warn");
            let tables = minispark::datagen::tpch::write_tpch_parquet(scale_factor, &out)?;
            for (name, rows, files) in tables {
                println!("{name}: {rows} rows in {files} file(s)");
            }
            Ok(())
        }
        Command::Gen {
            dataset:
                Dataset::Netflix {
                    scale,
                    skew,
                    seed,
                    out,
                },
        } => {
            init_tracing("warn");
            let params = minispark::datagen::NetflixParams::try_new(scale, skew, seed)?;
            let tables = minispark::datagen::write_netflix_parquet(&params, &out)?;
            for (name, rows, files) in tables {
                println!("{name}: {rows} rows in {files} file(s)");
            }
            Ok(())
        }
    }
}

/// `--memory`: a size as Spark writes it.
fn parse_memory(text: &str) -> Result<u64, String> {
    minispark::planner::runtime_settings::parse_size(text)
}
