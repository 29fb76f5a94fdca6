//! Steps 3 and 4 of a cell: start the worker (read on its own thread) and the sandbox
//! threads, all feeding one channel, and handle each message on its own: an answer is
//! scored and stored at once (a code answer once its program has run in the sandbox).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::Result;
use frontier_engine::EngineStats;
use frontier_process::{run_worker, ChildOutcome, MemCap, WorkerCommand};
use serde_json::json;

use super::register::Pending;
use crate::eval::infer::WorkResult;
use crate::eval::job::{EvalEvent, EvalReady, EvalRequest};
use crate::hashing::sha256_hex;
use crate::output::progress;
use crate::sandbox::{Outcome, Priority, Sandbox};
use crate::store::{ItemRow, Store};
use crate::tasks::{humaneval, score, Scored};

/// What the cell hears, from the worker's reader thread and the sandbox threads.
pub(super) enum Msg {
    Worker(EvalEvent),
    WorkerExit(Result<ChildOutcome>),
    Sandboxed(String, Checked),
}

/// A program's run in the sandbox, as the cell scores it.
pub(super) struct Checked {
    outcome: Result<Outcome>,
    /// The program's time in the sandbox, a first run's included.
    ms: u64,
    /// Run again at normal priority once the worker exited: starved beside the engine, it
    /// reached the wall clock.
    rerun: bool,
}

/// Runs a program, at the lowest priority while the worker is running (so the engine keeps
/// its cores). The verdict a wall-clock timeout gives depends on how much of the CPU the
/// program got, so a program stopped by the wall clock at the lowest priority runs again
/// once the worker has exited, at normal priority, as it would have without the engine, and
/// that run's verdict counts. (Run beside the engine instead, it would take a whole
/// autogroup's share of the cores from it for up to the timeout, and its verdict would
/// depend on the engine's load.) This sandbox thread waits for that; the others go on.
fn check(sandbox: &Sandbox, program: &str, engine_running: &AtomicBool) -> Checked {
    let priority = if engine_running.load(Ordering::SeqCst) {
        Priority::Background
    } else {
        Priority::Normal
    };
    let took = |o: &Result<Outcome>| o.as_ref().map_or(0, |o| o.duration_ms);
    let mut outcome = sandbox.run_python_at(program, priority);
    let mut ms = took(&outcome);
    let rerun =
        priority == Priority::Background && outcome.as_ref().is_ok_and(Outcome::hit_wall_clock);
    if rerun {
        while engine_running.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        outcome = sandbox.run_python_at(program, Priority::Normal);
        ms += took(&outcome);
    }
    Checked { outcome, ms, rerun }
}

/// The flag a program's rerun waits on, cleared when the worker's thread is done with it —
/// also if that thread panics, so no rerun waits for ever.
struct EngineRunning(Arc<AtomicBool>);

impl Drop for EngineRunning {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// The threads feeding a cell's channel, and the queue of programs for the sandbox.
pub(super) struct Threads {
    worker: JoinHandle<()>,
    sandboxes: Vec<JoinHandle<()>>,
    programs: Sender<(String, String)>,
}

impl Threads {
    /// Starts the worker on `request` (under `cap`) and `sandbox_threads` sandbox threads.
    pub fn start(
        command: WorkerCommand,
        request: EvalRequest,
        cap: Option<MemCap>,
        sandbox: Option<Arc<Sandbox>>,
        sandbox_threads: usize,
    ) -> (Threads, Receiver<Msg>) {
        let (tx, rx) = mpsc::channel::<Msg>();
        let worker_tx = tx.clone();
        let engine_running = Arc::new(AtomicBool::new(true));
        let running = EngineRunning(engine_running.clone());
        let worker = std::thread::spawn(move || {
            let events = worker_tx.clone();
            let outcome = run_worker(&command, request, cap.as_ref(), move |e| {
                let _ = events.send(Msg::Worker(e));
            });
            drop(running);
            let _ = worker_tx.send(Msg::WorkerExit(outcome));
        });
        let (programs, queue) = mpsc::channel::<(String, String)>();
        let queue = Arc::new(Mutex::new(queue));
        let mut sandboxes = Vec::new();
        if let Some(sandbox) = sandbox {
            for _ in 0..sandbox_threads.max(1) {
                let (sandbox, queue, tx) = (sandbox.clone(), queue.clone(), tx.clone());
                let running = engine_running.clone();
                sandboxes.push(std::thread::spawn(move || loop {
                    let next = queue.lock().ok().and_then(|q| q.recv().ok());
                    let Some((key, program)) = next else { break };
                    let _ = tx.send(Msg::Sandboxed(key, check(&sandbox, &program, &running)));
                }));
            }
        }
        (
            Threads {
                worker,
                sandboxes,
                programs,
            },
            rx,
        )
    }

    /// Where a code answer's program goes to run.
    pub fn programs(&self) -> Sender<(String, String)> {
        self.programs.clone()
    }

    /// Closes the program queue and waits for every thread.
    pub fn join(self) {
        drop(self.programs);
        for t in self.sandboxes {
            let _ = t.join();
        }
        let _ = self.worker.join();
    }
}

/// A cell's progress: its own bar (joined to a sweep's display), a line a minute where the
/// bar is hidden, and the sweep's overall bar.
pub(super) struct CellProgress {
    pub bar: indicatif::ProgressBar,
    lines: progress::ProgressLines,
    overall: Option<indicatif::ProgressBar>,
}

impl CellProgress {
    pub fn new(
        items: usize,
        label: &str,
        quiet: bool,
        sweep: Option<&super::SweepProgress>,
    ) -> CellProgress {
        let mut bar = progress::count_bar(items as u64, label, quiet);
        if let Some(p) = sweep {
            bar = p.multi.add(bar);
        }
        CellProgress {
            bar,
            lines: progress::ProgressLines::new(quiet),
            overall: sweep.map(|p| p.overall.clone()),
        }
    }

    fn tick(&mut self) {
        self.bar.inc(1);
        self.lines.after_inc(&self.bar);
        if let Some(o) = &self.overall {
            o.inc(1);
        }
    }
}

/// What the cell saw of its worker and sandbox, as the messages came.
#[derive(Debug, Default)]
pub(super) struct Seen {
    pub stored: usize,
    /// The worker's contexts as it made them (scoring, generation).
    pub contexts: Vec<EvalReady>,
    /// When the first context was ready: evaluation time starts there.
    pub ready_at: Option<Instant>,
    pub engine_stats: Option<EngineStats>,
    pub sandbox_ms: f64,
    /// Programs run again at normal priority once the worker exited, after the wall clock
    /// stopped them at the lowest beside it.
    pub sandbox_reruns: usize,
    /// When each task run last stored an item.
    pub last_stored: HashMap<i64, Instant>,
    pub exit: Option<ChildOutcome>,
    /// The worker's own failure, or why it could not be run.
    pub worker_failure: Option<String>,
    /// The first program the sandbox could not run.
    pub sandbox_error: Option<String>,
    pub worker_done: bool,
    pub in_sandbox: usize,
}

impl Seen {
    /// The error the worker side reported: the worker's own, else the sandbox's.
    pub fn reported_error(&self) -> Option<String> {
        self.worker_failure
            .clone()
            .or_else(|| self.sandbox_error.clone())
    }
}

/// A running cell: the items still pending and what has been seen.
pub(super) struct Live<'s, 'p> {
    store: &'s Store,
    pub pending: HashMap<String, Pending<'p>>,
    progress: CellProgress,
    /// Where code answers' programs go (None when no task runs code).
    programs: Option<Sender<(String, String)>>,
    pub seen: Seen,
}

impl<'s, 'p> Live<'s, 'p> {
    pub fn new(
        store: &'s Store,
        pending: HashMap<String, Pending<'p>>,
        progress: CellProgress,
        programs: Option<Sender<(String, String)>>,
    ) -> Self {
        Live {
            store,
            pending,
            progress,
            programs,
            seen: Seen::default(),
        }
    }

    /// Whether more messages are to come: the worker is running or programs are in the sandbox.
    pub fn waiting(&self) -> bool {
        !(self.seen.worker_done && self.seen.in_sandbox == 0)
    }

    /// Handles one message; an error here is the store's (the run stops).
    pub fn handle(&mut self, msg: Msg) -> Result<()> {
        match msg {
            Msg::Worker(EvalEvent::Ready(r)) => {
                if self.seen.ready_at.is_none() {
                    self.seen.ready_at = Some(Instant::now());
                    // Rates from here on: loading the model is not evaluation time.
                    self.progress.bar.reset_elapsed();
                }
                self.seen.contexts.push(r);
            }
            Msg::Worker(EvalEvent::Result(r)) => self.answered(r)?,
            Msg::Worker(EvalEvent::UnitError { key, message }) => {
                if let Some(p) = self.pending.remove(&key) {
                    self.store
                        .insert_item(p.task_run_id, &unit_failure(&p, &message))?;
                    self.seen.stored += 1;
                    self.progress.tick();
                }
            }
            Msg::Worker(EvalEvent::Finished { stats, .. }) => self.seen.engine_stats = Some(stats),
            Msg::WorkerExit(outcome) => {
                self.seen.worker_done = true;
                match outcome {
                    Ok(o) => {
                        if let Some(f) = &o.failure {
                            self.seen.worker_failure = Some(f.message.clone());
                        }
                        self.seen.exit = Some(o);
                    }
                    Err(e) => self.seen.worker_failure = Some(format!("{e:#}")),
                }
            }
            Msg::Sandboxed(key, checked) => self.sandboxed(&key, checked)?,
        }
        Ok(())
    }

    /// An answer: scored and stored now, or (code) sent to the sandbox first.
    fn answered(&mut self, r: WorkResult) -> Result<()> {
        let Some(p) = self.pending.get_mut(&r.key) else {
            return Ok(());
        };
        if score::needs_sandbox(p.item) {
            let program = humaneval::program(p.item, &r.response);
            let key = r.key.clone();
            p.result = Some(r);
            if let Some(programs) = &self.programs {
                self.seen.in_sandbox += 1;
                let _ = programs.send((key, program));
            }
            return Ok(());
        }
        let Some(scored) = score::score(p.item, &r.response) else {
            return Ok(());
        };
        let p = self.pending.remove(&r.key).expect("pending item present");
        self.store_scored(&p, &r, scored)
    }

    fn sandboxed(&mut self, key: &str, checked: Checked) -> Result<()> {
        self.seen.in_sandbox -= 1;
        self.seen.sandbox_ms += checked.ms as f64;
        self.seen.sandbox_reruns += usize::from(checked.rerun);
        let Some(p) = self.pending.remove(key) else {
            return Ok(());
        };
        let Some(r) = p.result.clone() else {
            return Ok(());
        };
        match checked.outcome {
            Ok(o) => {
                let scored = humaneval::score(p.item, &r.response, &o);
                self.store_scored(&p, &r, scored)
            }
            Err(e) => {
                self.seen
                    .sandbox_error
                    .get_or_insert(format!("sandbox: {e:#}"));
                Ok(())
            }
        }
    }

    fn store_scored(&mut self, p: &Pending<'_>, r: &WorkResult, s: Scored) -> Result<()> {
        self.store.insert_item(
            p.task_run_id,
            &ItemRow {
                item_id: p.item.id.clone(),
                group: p.item.group.clone(),
                prompt_sha256: sha256_hex(p.item.work.prompt_text().as_bytes()),
                output: s.output,
                extracted: s.extracted,
                gold: p.item.gold.clone(),
                correct: s.correct,
                format_failure: s.format_failure,
                metrics: s.metrics,
                detail: s.detail,
                prompt_tokens: r.prompt_tokens as u64,
                output_tokens: r.output_tokens as u64,
                time_ms: r.time_ms,
            },
        )?;
        self.seen.last_stored.insert(p.task_run_id, Instant::now());
        self.seen.stored += 1;
        self.progress.tick();
        Ok(())
    }

    /// Stops the progress bar; returns what was seen and the items never answered.
    pub fn end(self) -> (Seen, usize) {
        self.progress.bar.finish_and_clear();
        (self.seen, self.pending.len())
    }
}

/// The stored row of an item the worker could not run.
fn unit_failure(p: &Pending<'_>, message: &str) -> ItemRow {
    let metric = p.task.primary_metric().to_string();
    ItemRow {
        item_id: p.item.id.clone(),
        group: p.item.group.clone(),
        prompt_sha256: sha256_hex(p.item.work.prompt_text().as_bytes()),
        output: String::new(),
        extracted: None,
        gold: p.item.gold.clone(),
        correct: false,
        format_failure: false,
        metrics: [(metric, 0.0)].into(),
        detail: json!({ "error": message }),
        prompt_tokens: 0,
        output_tokens: 0,
        time_ms: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::check;
    use crate::sandbox::{BackendKind, Sandbox, SandboxPolicy, Verdict};

    #[test]
    fn a_program_stopped_by_the_wall_clock_beside_the_engine_runs_again_after_it() {
        let policy = SandboxPolicy {
            wall_timeout_ms: 1_000,
            cpu_seconds: 1,
            ..SandboxPolicy::default()
        };
        let sandbox = match Sandbox::with_backend(policy, BackendKind::Bwrap) {
            Ok(sandbox) => sandbox,
            Err(err) => {
                eprintln!("skipping: no strong bwrap sandbox here: {err:#}");
                return;
            }
        };
        let sleeping = "import time\ntime.sleep(60)\n";
        let running = Arc::new(AtomicBool::new(true));
        let engine = {
            let running = running.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(2_500));
                running.store(false, Ordering::SeqCst);
            })
        };
        let started = Instant::now();
        let beside = check(&sandbox, sleeping, &running);
        engine.join().unwrap();
        assert!(beside.rerun);
        assert_eq!(beside.outcome.unwrap().verdict, Verdict::Timeout);
        assert!(beside.ms >= 2_000, "both runs' time: {}", beside.ms);
        assert!(
            started.elapsed() >= Duration::from_millis(3_500),
            "the second run waits for the engine to end: {:?}",
            started.elapsed()
        );
        let alone = check(&sandbox, sleeping, &AtomicBool::new(false));
        assert!(!alone.rerun);
        assert!(alone.ms < 2_000, "one run's time: {}", alone.ms);
        let passing = check(&sandbox, "assert 1 + 1 == 2\n", &AtomicBool::new(true));
        assert!(!passing.rerun);
        assert_eq!(passing.outcome.unwrap().verdict, Verdict::Pass);
    }
}
