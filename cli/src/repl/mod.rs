//! `traceql repl`: an interactive TraceQL prompt with history, multi-line input,
//! highlighting, completion and backslash commands. On a terminal Ctrl-C cancels the
//! running search (or the line being typed) and Ctrl-D leaves; with standard input
//! not a terminal it runs one query (or command) per line.

mod helper;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Config, Editor};
use traceql_exec::metrics::MetricsOptions;
use traceql_exec::{Engine, EngineError, Order, ParsedQuery, QueryStats, SearchOptions};

use self::helper::{COMMANDS, ReplHelper};
use crate::common::{failure, open};
use crate::render::Look;
use crate::render::waterfall::waterfall;
use crate::render::{self, Format};
use crate::{data, say};

/// Arguments of `traceql repl`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  traceql repl
  traceql repl --data ./traces
  echo '{ status = error }' | traceql repl")]
pub struct ReplArgs {
    #[command(flatten)]
    store: data::ReadArgs,
}

/// What the session remembers between lines.
struct Session {
    engine: Engine,
    /// How `\data` reaches a remote store.
    remote: data::RemoteArgs,
    /// The workers `\data` keeps running queries on (`--cluster`).
    cluster: Option<String>,
    interrupts: Interrupts,
    format: Format,
    options: SearchOptions,
    /// Step and instant flag of metrics queries.
    metrics: MetricsOptions,
    spans: bool,
    timing: bool,
}

/// Ctrl-C while a search runs. The handler is installed when the REPL starts, so an
/// early Ctrl-C cannot kill the process; interrupts from before a search are forgotten.
struct Interrupts {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Interrupts {
    fn new() -> Self {
        Interrupts {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok(),
        }
    }

    fn forget_earlier(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            use futures::FutureExt;
            while let Some(Some(())) = signal.recv().now_or_never() {}
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            signal.recv().await;
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// What to do after a line.
enum Next {
    Continue,
    Quit,
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("TRACEQL_HISTORY")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".traceql_history")))
}

/// Completion for `engine`'s store: attribute names and values from the blocks'
/// descriptions, and from a sample of traces of Tempo's blocks, which describe less.
async fn helper(engine: &Engine, color: bool) -> ReplHelper {
    // Completion is a help: a sample that cannot be read leaves it to the rest.
    let sample = engine.sample_unrecorded_blocks().await.unwrap_or_default();
    let mut attributes = engine.attribute_names();
    attributes.extend(sample.names);
    attributes.sort();
    attributes.dedup();
    let mut fields: Vec<String> = attributes.clone();
    fields.push("name".into());
    let values = fields
        .into_iter()
        .map(|f| {
            let mut v = engine.known_values(&f);
            v.extend(sample.values.get(&f).into_iter().flatten().cloned());
            v.sort();
            v.dedup();
            (f, v)
        })
        .filter(|(_, v)| !v.is_empty())
        .collect();
    ReplHelper {
        attributes,
        values,
        color,
    }
}

/// Runs `traceql repl`.
pub async fn run(args: &ReplArgs) -> ExitCode {
    let engine = match open(&args.store).await {
        Ok(engine) => engine,
        Err(e) => return failure(&e),
    };
    let mut session = Session {
        engine,
        remote: args.store.remote.clone(),
        cluster: args.store.cluster(),
        interrupts: Interrupts::new(),
        format: Format::Table,
        options: SearchOptions::default(),
        metrics: MetricsOptions::default(),
        spans: false,
        timing: false,
    };
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if let Next::Quit = session.line(&line).await {
                break;
            }
        }
        return ExitCode::SUCCESS;
    }
    interactive(session).await
}

async fn interactive(mut session: Session) -> ExitCode {
    let look = Look::stdout();
    let config = Config::builder()
        .auto_add_history(true)
        .max_history_size(10_000);
    let mut editor: Editor<ReplHelper, DefaultHistory> = match config
        .map_err(|e| e.to_string())
        .and_then(|c| Editor::with_config(c.build()).map_err(|e| e.to_string()))
    {
        Ok(editor) => editor,
        Err(e) => return crate::fail(&format!("cannot start the line editor: {e}")),
    };
    editor.set_helper(Some(helper(&session.engine, look.color).await));
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    eprintln!(
        "traceql {} — TraceQL over {}. \\help for commands, Tab completes, Ctrl-D leaves.",
        env!("CARGO_PKG_VERSION"),
        session.engine.store_name()
    );
    loop {
        let line = tokio::task::block_in_place(|| editor.readline("traceql> "));
        match line {
            Ok(line) => {
                if let Next::Quit = session.line(&line).await {
                    break;
                }
                if line.trim_start().starts_with("\\data") {
                    editor.set_helper(Some(helper(&session.engine, look.color).await));
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: {e}");
                break;
            }
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    ExitCode::SUCCESS
}

impl Session {
    /// Runs one line: a backslash command or a query.
    async fn line(&mut self, line: &str) -> Next {
        let line = line.trim();
        if line.is_empty() {
            return Next::Continue;
        }
        if let Some(command) = line.strip_prefix('\\') {
            return self.command(command).await;
        }
        self.search(line).await;
        Next::Continue
    }

    /// Runs a search or a metrics query (over the store's whole time span unless a
    /// range is set) and prints its results; Ctrl-C cancels it.
    async fn search(&mut self, query: &str) {
        let started = Instant::now();
        self.interrupts.forget_earlier();
        let interrupted = self.interrupts.next();
        let parsed = match ParsedQuery::parse(query) {
            Ok(parsed) => parsed,
            Err(e) => {
                failure(&e);
                return;
            }
        };
        if parsed.is_metrics() {
            let options = MetricsOptions {
                start_unix_nano: self.options.start_unix_nano,
                end_unix_nano: self.options.end_unix_nano,
                ..self.metrics.clone()
            };
            let result = tokio::select! {
                result = self.engine.metrics_parsed(&parsed, &options) => Some(result),
                _ = interrupted => None,
            };
            self.report(result, started, |r| render::metrics(r, self.format));
        } else {
            let result = tokio::select! {
                result = self.engine.search_parsed(&parsed, &self.options) => Some(result),
                _ = interrupted => None,
            };
            self.report(result, started, |r| {
                render::search(r, self.format, self.spans)
            });
        }
    }

    /// Prints the outcome of a query (`None` when it was cancelled) with `print`, and
    /// what it read with `\timing`.
    fn report<T>(
        &self,
        result: Option<Result<(T, QueryStats), EngineError>>,
        started: Instant,
        print: impl FnOnce(&T) -> Result<(), String>,
    ) {
        match result {
            None => eprintln!("cancelled"),
            Some(Err(e)) => {
                failure(&e);
            }
            Some(Ok((response, stats))) => {
                if let Err(e) = print(&response) {
                    eprintln!("error: {e}");
                }
                if self.timing {
                    eprintln!(
                        "{}\ntotal: {:.1?}",
                        render::stats(&stats),
                        started.elapsed()
                    );
                }
            }
        }
    }

    async fn command(&mut self, command: &str) -> Next {
        let (name, rest) = command
            .split_once(char::is_whitespace)
            .unwrap_or((command, ""));
        let rest = rest.trim();
        match name {
            "q" | "quit" | "exit" => return Next::Quit,
            "help" | "?" => {
                let width = COMMANDS.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
                let lines: Vec<String> = COMMANDS
                    .iter()
                    .map(|(c, h)| format!("  {c:<width$}  {h}"))
                    .collect();
                say(&format!(
                    "Type a TraceQL search, e.g. {{ status = error }} | count() > 2, or a metrics \
                     query, e.g. {{ }} | rate() by (resource.service.name); an open \
                     {{ or ( or a trailing operator continues it on the next line.\n{}",
                    lines.join("\n")
                ));
            }
            "data" => match open(&data::ReadArgs {
                data: Some(rest.to_string()),
                remote: self.remote.clone(),
                memory_limit: Some(self.engine.memory_limit()),
                cluster: self.cluster.clone(),
            })
            .await
            {
                Ok(engine) if !rest.is_empty() => {
                    eprintln!("searching {}", engine.store_name());
                    self.engine = engine;
                }
                Ok(_) => eprintln!("usage: \\data STORE"),
                Err(e) => {
                    failure(&e);
                }
            },
            "format" => {
                let shown: Vec<Format> = Format::QUERY
                    .iter()
                    .copied()
                    .filter(|f| !f.is_binary())
                    .collect();
                match Format::of_name(rest).filter(|f| shown.contains(f)) {
                    Some(format) => self.format = format,
                    None => {
                        let names: Vec<&str> = shown.iter().map(|f| f.name()).collect();
                        eprintln!("usage: \\format {}", names.join("|"));
                    }
                }
            }
            "limit" | "spss" => match rest.parse::<usize>() {
                Ok(n) if n > 0 => {
                    if name == "limit" {
                        self.options.limit = n;
                    } else {
                        self.options.spans_per_spanset = n;
                    }
                }
                _ => eprintln!("usage: \\{name} N (a positive number)"),
            },
            "order" => match Order::from_name(rest) {
                Some(order) => self.options.order = order,
                None => eprintln!("usage: \\order newest|oldest|slowest"),
            },
            "step" => match rest {
                "auto" => self.metrics.step_nano = None,
                _ => match crate::time::parse_duration(rest) {
                    Ok(step) if step > 0 => self.metrics.step_nano = Some(step),
                    _ => eprintln!("usage: \\step DURATION (e.g. 30s, 5m) or \\step auto"),
                },
            },
            "instant" => {
                self.metrics.instant = !self.metrics.instant;
                eprintln!(
                    "instant metrics: {}",
                    if self.metrics.instant { "on" } else { "off" }
                );
            }
            "spans" => {
                self.spans = !self.spans;
                eprintln!(
                    "matched spans in tables: {}",
                    if self.spans { "on" } else { "off" }
                );
            }
            "timing" => {
                self.timing = !self.timing;
                eprintln!("timing: {}", if self.timing { "on" } else { "off" });
            }
            "explain" => match self.engine.explain(rest).await {
                Ok(e) => say(&format!(
                    "{}\n\nlogical plan:\n{}\n\nphysical plan:\n{}",
                    e.canonical, e.logical, e.physical
                )),
                Err(e) => {
                    failure(&e);
                }
            },
            "trace" => match self.engine.trace(rest).await {
                Ok(spans) if spans.is_empty() => eprintln!("trace {rest} not found"),
                Ok(spans) => say(&waterfall(&spans, &Look::stdout())),
                Err(e) => {
                    failure(&e);
                }
            },
            other => eprintln!("unknown command \\{other}; \\help lists them"),
        }
        Next::Continue
    }
}
