//! What happened to a worker under a memory cap: fits, OOM-killed, refused, thrashing, or
//! failed for a reason that is not memory — with the evidence, for one job and for a cell.

use serde::{Deserialize, Serialize};

use frontier_core::units;
use frontier_process::{ChildExit, ChildOutcome};
use frontier_process::{Mechanism, MemCap};

/// Tokens/s under the cap below this fraction of uncapped is thrashing.
pub const THRASHING_SPEED_RATIO: f64 = 0.5;
/// Reading more than this many times the model file from disk (with mmap) is thrashing:
/// the kernel is dropping weight pages to stay under the cap and reading them again.
pub const THRASHING_REREAD_RATIO: f64 = 1.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Fits,
    Thrashing,
    /// The worker failed for a reason other than memory.
    Failed,
    OomKilled,
    Refused,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Fits => "fits",
            Verdict::Thrashing => "thrashing",
            Verdict::Failed => "failed",
            Verdict::OomKilled => "OOM-killed",
            Verdict::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        [
            Verdict::Fits,
            Verdict::Thrashing,
            Verdict::Failed,
            Verdict::OomKilled,
            Verdict::Refused,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// How the weights were held: `mmap`, `no-mmap` or `mlock`.
pub fn load_mode(use_mmap: bool, use_mlock: bool) -> &'static str {
    match (use_mmap, use_mlock) {
        (_, true) => "mlock",
        (true, false) => "mmap",
        (false, false) => "no-mmap",
    }
}

/// One worker's memory under (or without) a cap, as stored and reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryRecord {
    /// `speed`, `speed_uncapped` or `eval`.
    pub job: String,
    pub limit: Option<u64>,
    pub mechanism: Option<Mechanism>,
    pub mode: String,
    pub estimate: Option<u64>,
    pub weights: u64,
    /// `ru_maxrss` of the worker.
    pub peak_rss: Option<u64>,
    /// Sampled every 20 ms: `RssAnon` and `RssFile` of /proc/PID/status.
    pub peak_anon: Option<u64>,
    pub peak_file: Option<u64>,
    pub cgroup_peak: Option<u64>,
    pub disk_read: Option<u64>,
    pub major_faults: Option<u64>,
    pub verdict: Verdict,
    pub detail: String,
    /// Generation tokens/s of this job (speed jobs).
    pub tg_ts: Option<f64>,
    /// The context the worker ran: KV cells and sequences (when known).
    #[serde(default)]
    pub n_ctx: Option<u32>,
    #[serde(default)]
    pub n_seq: Option<u32>,
}

/// What the parent knows when a worker ended.
pub struct JobEnd<'a> {
    pub outcome: &'a ChildOutcome,
    /// The worker's own error message, if it reported one.
    pub error: Option<&'a str>,
    pub file_size: u64,
    pub use_mmap: bool,
    /// Generation tokens/s under the cap, and uncapped, when both were measured.
    pub tg_capped: Option<f64>,
    pub tg_uncapped: Option<f64>,
}

/// Judges one worker.
pub fn judge(cap: Option<&MemCap>, end: &JobEnd<'_>) -> (Verdict, String) {
    let o = end.outcome;
    let success = o.exit.success() && end.error.is_none();
    if let (Some(cap), Some(applied)) = (cap, &o.cap) {
        let limit = units::bytes(cap.limit);
        if applied.oom_kills > 0
            || (matches!(cap.mechanism, Mechanism::CgroupV1 | Mechanism::CgroupV2)
                && o.exit == ChildExit::Signal(libc::SIGKILL))
        {
            return (
                Verdict::OomKilled,
                format!(
                    "OOM-killed by the kernel at the {limit} cap ({}); peak RSS {}",
                    cap.mechanism.as_str(),
                    units::bytes(o.peak_rss_bytes)
                ),
            );
        }
        if applied.watchdog_fired {
            return (
                Verdict::OomKilled,
                format!(
                    "stopped by the watchdog: resident memory passed the {limit} cap (peak RSS {})",
                    units::bytes(o.peak_rss_bytes)
                ),
            );
        }
        if cap.mechanism == Mechanism::RlimitAs && !success && allocation_failed(o, end.error) {
            return (
                Verdict::OomKilled,
                format!(
                    "an allocation failed under RLIMIT_AS {limit}: {}",
                    end.error
                        .map(str::to_string)
                        .unwrap_or_else(|| o.failure_summary())
                ),
            );
        }
    }
    if !success {
        let why = end
            .error
            .map(str::to_string)
            .unwrap_or_else(|| o.failure_summary());
        return (Verdict::Failed, why);
    }
    if cap.is_none() {
        return (Verdict::Fits, "no cap".into());
    }
    let limit = units::bytes(cap.map_or(0, |c| c.limit));
    let reread = o
        .sampled
        .disk_read
        .filter(|_| end.use_mmap && end.file_size > 0)
        .map(|read| {
            (
                read as f64 > THRASHING_REREAD_RATIO * end.file_size as f64 + (32 << 20) as f64,
                format!(
                    "read {} from disk for a {} model",
                    units::bytes(read),
                    units::bytes(end.file_size)
                ),
            )
        });
    // Tokens/s against uncapped is the direct test; disk reads are the evidence without it.
    // Only a cgroup makes the kernel drop the weights' pages, and pages it dropped are read
    // again: under RLIMIT_AS or the watchdog, or without re-reads, a slower run is other
    // load on the machine, not the cap.
    let evicts = cap
        .is_some_and(|c| matches!(c.mechanism, Mechanism::CgroupV1 | Mechanism::CgroupV2))
        && reread.as_ref().is_none_or(|(reread, _)| *reread);
    if let (Some(capped), Some(free)) = (end.tg_capped, end.tg_uncapped) {
        let ratio = if free > 0.0 { capped / free } else { 1.0 };
        let reads = reread.map(|(_, r)| format!("; {r}")).unwrap_or_default();
        let mut speed = format!("generation {capped:.1} t/s under the cap vs {free:.1} t/s uncapped ({ratio:.2}×){reads}");
        if ratio < THRASHING_SPEED_RATIO && !evicts {
            speed.push_str("; slower, but this cap evicts no pages: other load, not the cap");
        }
        return if ratio < THRASHING_SPEED_RATIO && evicts {
            (Verdict::Thrashing, speed)
        } else {
            (
                Verdict::Fits,
                format!(
                    "peak RSS {} under the {limit} cap; {speed}",
                    units::bytes(o.peak_rss_bytes)
                ),
            )
        };
    }
    if let Some((true, reads)) = &reread {
        return (
            Verdict::Thrashing,
            format!("{reads}: weight pages dropped under the cap and read again"),
        );
    }
    (
        Verdict::Fits,
        format!(
            "peak RSS {} under the {limit} cap",
            units::bytes(o.peak_rss_bytes)
        ),
    )
}

/// Whether a failed worker's last words are those of a refused allocation (or it crashed as
/// code does that does not check one).
fn allocation_failed(o: &ChildOutcome, error: Option<&str>) -> bool {
    const SIGNS: [&str; 7] = [
        "alloc",
        "out of memory",
        "cannot allocate memory",
        "enomem",
        "failed to mmap",
        "unable to load model",
        "failed to load model",
    ];
    let text = error
        .map(str::to_string)
        .into_iter()
        .chain(o.stderr_tail.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n")
        .to_ascii_lowercase();
    SIGNS.iter().any(|s| text.contains(s))
        || matches!(
            o.exit,
            ChildExit::Signal(libc::SIGABRT) | ChildExit::Signal(libc::SIGSEGV)
        )
}

/// The cell's verdict: its worst job's.
pub fn cell_verdict(records: &[MemoryRecord]) -> Option<&MemoryRecord> {
    records
        .iter()
        .filter(|r| r.job != "speed_uncapped")
        .max_by_key(|r| r.verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontier_process::usage::SampledPeaks;
    use frontier_process::CapApplied;
    use std::time::Duration;

    fn outcome(
        exit: ChildExit,
        applied: Option<CapApplied>,
        disk_read: Option<u64>,
    ) -> ChildOutcome {
        ChildOutcome {
            failure: None,
            exit,
            peak_rss_bytes: 300 << 20,
            stderr_tail: vec![],
            wall: Duration::from_secs(1),
            sampled: SampledPeaks {
                disk_read,
                ..SampledPeaks::default()
            },
            major_faults: 0,
            cap: applied,
        }
    }

    fn applied(oom_kills: u64, watchdog_fired: bool) -> CapApplied {
        CapApplied {
            oom_kills,
            watchdog_fired,
            cgroup_peak: None,
        }
    }

    fn cap(mechanism: Mechanism) -> MemCap {
        MemCap {
            limit: 256 << 20,
            mechanism,
            force: true,
        }
    }

    fn end<'a>(o: &'a ChildOutcome, error: Option<&'a str>) -> JobEnd<'a> {
        JobEnd {
            outcome: o,
            error,
            file_size: 270 << 20,
            use_mmap: true,
            tg_capped: None,
            tg_uncapped: None,
        }
    }

    #[test]
    fn a_cgroup_kill_is_oom() {
        let c = cap(Mechanism::CgroupV1);
        let o = outcome(ChildExit::Signal(9), Some(applied(1, false)), None);
        let (v, why) = judge(Some(&c), &end(&o, None));
        assert_eq!(v, Verdict::OomKilled, "{why}");
        assert!(
            why.contains("256 MiB") && why.contains("cgroup v1"),
            "{why}"
        );
    }

    #[test]
    fn the_watchdog_and_refused_allocations_are_oom() {
        let o = outcome(ChildExit::Signal(9), Some(applied(0, true)), None);
        assert_eq!(
            judge(Some(&cap(Mechanism::Watchdog)), &end(&o, None)).0,
            Verdict::OomKilled
        );
        let o = outcome(ChildExit::Code(1), Some(applied(0, false)), None);
        let e = end(
            &o,
            Some("failed to load model: unable to allocate CPU buffer"),
        );
        assert_eq!(
            judge(Some(&cap(Mechanism::RlimitAs)), &e).0,
            Verdict::OomKilled
        );
        // The same error without a cap is a plain failure.
        assert_eq!(judge(None, &e).0, Verdict::Failed);
    }

    #[test]
    fn slow_or_rereading_is_thrashing_and_otherwise_it_fits() {
        let c = cap(Mechanism::CgroupV1);
        // The 270 MiB file read once: slow is other load, not the cap.
        let o = outcome(ChildExit::Code(0), Some(applied(0, false)), Some(280 << 20));
        let mut e = end(&o, None);
        assert_eq!(judge(Some(&c), &e).0, Verdict::Fits);
        e.tg_capped = Some(20.0);
        e.tg_uncapped = Some(100.0);
        let (v, why) = judge(Some(&c), &e);
        assert_eq!(v, Verdict::Fits, "{why}");
        assert!(why.contains("other load"), "{why}");
        // Read again and again: slow is the cap.
        let o = outcome(ChildExit::Code(0), Some(applied(0, false)), Some(1 << 30));
        let mut e = end(&o, None);
        e.tg_capped = Some(20.0);
        e.tg_uncapped = Some(100.0);
        let (v, why) = judge(Some(&c), &e);
        assert_eq!(v, Verdict::Thrashing);
        assert!(why.contains("0.20×"), "{why}");
        e.tg_capped = Some(90.0);
        assert_eq!(judge(Some(&c), &e).0, Verdict::Fits);
        let o = outcome(ChildExit::Code(0), Some(applied(0, false)), Some(2 << 30));
        assert_eq!(judge(Some(&c), &end(&o, None)).0, Verdict::Thrashing);
    }

    #[test]
    fn a_slow_run_under_a_cap_that_evicts_nothing_is_not_thrashing() {
        let o = outcome(ChildExit::Code(0), Some(applied(0, false)), Some(0));
        let mut e = end(&o, None);
        e.tg_capped = Some(7.3);
        e.tg_uncapped = Some(40.2);
        for m in [Mechanism::Watchdog, Mechanism::RlimitAs] {
            let (v, why) = judge(Some(&cap(m)), &e);
            assert_eq!(v, Verdict::Fits, "{why}");
            assert!(why.contains("other load"), "{why}");
        }
    }

    #[test]
    fn the_cell_takes_its_worst_job() {
        let rec = |job: &str, verdict| MemoryRecord {
            job: job.into(),
            limit: None,
            mechanism: None,
            mode: "mmap".into(),
            estimate: None,
            weights: 0,
            peak_rss: None,
            peak_anon: None,
            peak_file: None,
            cgroup_peak: None,
            disk_read: None,
            major_faults: None,
            verdict,
            detail: String::new(),
            tg_ts: None,
            n_ctx: None,
            n_seq: None,
        };
        let records = [
            rec("speed", Verdict::Fits),
            rec("speed_uncapped", Verdict::Failed),
            rec("eval", Verdict::OomKilled),
        ];
        assert_eq!(cell_verdict(&records).unwrap().verdict, Verdict::OomKilled);
        for v in ["fits", "thrashing", "failed", "OOM-killed", "refused"] {
            assert_eq!(Verdict::parse(v).unwrap().as_str(), v);
        }
    }
}
