//! Hostile programs against the real sandbox, one per test. Tests of the bwrap backend
//! skip, saying why, when bwrap does not work on the machine.

use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crate::sandbox::{
    BackendKind, Outcome, Priority, ProcessLimit, Protections, Sandbox, SandboxPolicy, Verdict,
    TAIL_BYTES,
};

const PASSING: &str = "def add(a,b): return a+b\nassert add(2,3)==5\n";
const FAILING: &str = "def add(a,b): return a+b\nassert add(2,3)==6\n";
const INFINITE_LOOP: &str = "while True: pass\n";
const HUGE_ALLOCATION: &str = "x = bytearray(10*1024**3)\n";

/// Short limits so hostile tests finish fast: 2 s wall clock, 1 s CPU.
fn short_policy() -> SandboxPolicy {
    SandboxPolicy {
        wall_timeout_ms: 2_000,
        cpu_seconds: 1,
        ..SandboxPolicy::default()
    }
}

/// A strong bwrap sandbox with `policy`, or None (and a message) when there is none here.
fn bwrap_sandbox(policy: SandboxPolicy) -> Option<Sandbox> {
    match Sandbox::with_backend(policy, BackendKind::Bwrap) {
        Ok(sandbox) => Some(sandbox),
        Err(err) => {
            eprintln!("skipping: no strong bwrap sandbox here: {err:#}");
            None
        }
    }
}

/// The rlimits-only sandbox, allowed to be weak.
fn rlimits_sandbox() -> Sandbox {
    let policy = SandboxPolicy {
        allow_weak: true,
        ..short_policy()
    };
    Sandbox::with_backend(policy, BackendKind::RlimitsOnly).expect("rlimits sandbox")
}

fn run(sandbox: &Sandbox, program: &str) -> Outcome {
    let outcome = sandbox
        .run_python(program)
        .expect("the sandbox itself works");
    eprintln!("{:?}: {}", outcome.verdict, outcome.reason);
    outcome
}

/// A directory for one test's temp dirs, searchable by the sandbox user.
fn temp_root() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("frontier-sandbox-test-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).unwrap().next().is_none()
}

/// Processes whose name or command line contains `needle`.
fn processes_matching(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let path = entry.path();
        let comm = fs::read_to_string(path.join("comm")).unwrap_or_default();
        let cmdline = fs::read(path.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if comm.contains(needle) || cmdline.contains(needle) {
            let stat = fs::read_to_string(path.join("stat")).unwrap_or_default();
            found.push(format!("{}: {} [{}]", path.display(), cmdline, stat.trim()));
        }
    }
    found
}

/// Peak resident memory of this test process, from /proc/self/status.
fn peak_rss_bytes() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Removes a file when dropped, also when the test fails.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn sandbox_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Sandbox>();
}

#[test]
fn policy_defaults_and_serde_names() {
    let policy = SandboxPolicy::default();
    assert_eq!(policy.memory_bytes, 2 << 30);
    assert_eq!(policy.cpu_seconds, 10);
    assert_eq!(policy.wall_timeout_ms, 10_000);
    assert_eq!(policy.max_processes, 32);
    assert_eq!(policy.max_file_bytes, 16 << 20);
    assert_eq!(policy.max_open_files, 64);
    assert_eq!(policy.max_output_bytes, 1 << 20);
    assert!(!policy.allow_weak);
    let json = serde_json::to_string(&policy).unwrap();
    assert_eq!(
        serde_json::from_str::<SandboxPolicy>(&json).unwrap(),
        policy
    );
    let partial: SandboxPolicy = serde_json::from_str(r#"{"cpu_seconds": 3}"#).unwrap();
    assert_eq!(partial.cpu_seconds, 3);
    assert_eq!(partial.wall_timeout_ms, 10_000);
    assert_eq!(
        serde_json::to_string(&BackendKind::RlimitsOnly).unwrap(),
        "\"rlimits_only\""
    );
    assert_eq!(
        serde_json::to_string(&Verdict::Timeout).unwrap(),
        "\"timeout\""
    );
}

#[test]
fn report_says_what_holds() {
    let protections = Protections::detect(&SandboxPolicy::default());
    let report = protections.report();
    eprintln!("{report}");
    for label in [
        "sandbox backend:",
        "bwrap:",
        "network:",
        "process limit:",
        "rlimits:",
    ] {
        assert!(report.contains(label), "{label} missing from\n{report}");
    }
    let json = serde_json::to_string(&protections).unwrap();
    assert_eq!(
        serde_json::from_str::<Protections>(&json).unwrap(),
        protections
    );
}

#[test]
fn canonical_program_passes() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let outcome = run(&sandbox, PASSING);
    assert_eq!(outcome.verdict, Verdict::Pass, "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(0));
}

#[test]
fn failing_assert_fails_with_assertion_error() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let outcome = run(&sandbox, FAILING);
    assert_eq!(outcome.verdict, Verdict::Fail, "{outcome:?}");
    assert_eq!(outcome.reason, "exit code 1: AssertionError");
    assert_eq!(outcome.exit_code, Some(1));
}

#[test]
fn environment_is_scrubbed_and_hashing_is_fixed() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let program = "import os\nprint(sorted(os.environ))\nprint(os.getcwd(), os.environ['HOME'])\nprint(hash('frontier'))\nopen('scratch.txt', 'w').write('ok')\n";
    let first = run(&sandbox, program);
    assert_eq!(first.verdict, Verdict::Pass, "{first:?}");
    let mut lines = first.stdout_tail.lines();
    assert_eq!(
        lines.next(),
        // PWD is set by bwrap itself, to /sandbox.
        Some("['HOME', 'LANG', 'PATH', 'PWD', 'PYTHONDONTWRITEBYTECODE', 'PYTHONHASHSEED']")
    );
    assert_eq!(lines.next(), Some("/sandbox /sandbox"));
    let second = run(&sandbox, program);
    assert_eq!(
        first.stdout_tail, second.stdout_tail,
        "PYTHONHASHSEED=0 holds"
    );
}

#[test]
fn infinite_loop_times_out() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let outcome = run(&sandbox, INFINITE_LOOP);
    assert_eq!(outcome.verdict, Verdict::Timeout, "{outcome:?}");
    assert!(outcome.duration_ms < 3_000, "{outcome:?}");
}

#[test]
fn sleeping_program_hits_the_wall_clock() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let outcome = run(&sandbox, "import time\ntime.sleep(60)\n");
    assert_eq!(outcome.verdict, Verdict::Timeout, "{outcome:?}");
    assert_eq!(outcome.reason, "wall-clock timeout after 2.0 s");
    assert!(outcome.duration_ms < 3_000, "{outcome:?}");
}

#[test]
fn only_the_wall_clock_marks_a_cpu_dependent_timeout() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let sleeping = run(&sandbox, "import time\ntime.sleep(60)\n");
    assert!(sleeping.hit_wall_clock(), "{sleeping:?}");
    // 1 s of CPU comes before 2 s of wall clock for a loop alone on a core.
    let looping = run(&sandbox, INFINITE_LOOP);
    assert_eq!(looping.signal, Some(libc::SIGXCPU), "{looping:?}");
    assert!(!looping.hit_wall_clock(), "{looping:?}");
    assert!(!run(&sandbox, FAILING).hit_wall_clock());
}

/// What a passing program printed, run at `priority`.
fn printed_at(sandbox: &Sandbox, program: &str, priority: Priority) -> String {
    let o = sandbox
        .run_python_at(program, priority)
        .expect("the sandbox itself works");
    assert_eq!(o.verdict, Verdict::Pass, "{o:?}");
    o.stdout_tail.trim().to_string()
}

#[test]
fn background_runs_at_the_lowest_priority() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let nice = |priority| {
        printed_at(&sandbox, "import os\nprint(os.nice(0))\n", priority)
            .parse::<i32>()
            .expect("a nice value")
    };
    let ours = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    assert_eq!(nice(Priority::Normal), ours);
    assert_eq!(nice(Priority::Background), 19);
}

/// The program's session is its autogroup; at the lowest priority the group's nice is 19
/// too, or the program would take a whole autogroup's share of the CPU from ours.
#[test]
fn background_runs_in_an_autogroup_at_the_lowest_priority() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    if !std::path::Path::new("/proc/self/autogroup").exists() {
        eprintln!("skipped: this kernel has no autogroups (/proc/self/autogroup)");
        return;
    }
    let autogroup = |priority| {
        printed_at(
            &sandbox,
            "print(open('/proc/self/autogroup').read())\n",
            priority,
        )
    };
    let ours = std::fs::read_to_string("/proc/self/autogroup").unwrap();
    let background = autogroup(Priority::Background);
    assert!(background.ends_with(" nice 19"), "{background}");
    assert_ne!(
        background,
        ours.trim(),
        "the program has a session of its own"
    );
    let normal = autogroup(Priority::Normal);
    assert!(normal.ends_with(" nice 0"), "{normal}");
}

/// The fork bombs run as the same sandbox user, and RLIMIT_NPROC counts that user's
/// processes machine-wide: one bomb running while the other starts leaves the second's bwrap
/// no process to make ("Creating new namespace failed: Resource temporarily unavailable").
static ONE_BOMB_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn fork_bomb_is_contained_and_leaves_no_process() {
    let _one = ONE_BOMB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let root = temp_root();
    let sandbox = sandbox.with_temp_root(root.path());
    // Each bomb process renames itself (children inherit the name) so we can look for
    // survivors on the host afterwards.
    let marker = format!("fbomb{}", std::process::id());
    let program = format!(
        "open('/proc/self/comm', 'w').write('{marker}')\nimport os\nwhile True:\n    os.fork()\n"
    );
    let started = Instant::now();
    let outcome = run(&sandbox, &program);
    assert_ne!(outcome.verdict, Verdict::Pass, "{outcome:?}");
    assert!(started.elapsed().as_millis() < 5_000, "{outcome:?}");
    assert_eq!(processes_matching(&marker), Vec::<String>::new());
    let root_path = root.path().to_string_lossy().into_owned();
    assert_eq!(processes_matching(&root_path), Vec::<String>::new());
    assert!(is_empty_dir(root.path()));
}

#[test]
fn fork_bomb_is_contained_by_rlimit_nproc_alone() {
    // The mechanism for machines without a writable pids cgroup: RLIMIT_NPROC as uid 65534.
    let _one = ONE_BOMB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let Some(uid) = sandbox.protections().run_as_uid else {
        eprintln!("skipping: not root, RLIMIT_NPROC is already what holds here");
        return;
    };
    let mut protections = sandbox.protections().clone();
    protections.process_limit = ProcessLimit::RlimitNproc { uid };
    let sandbox = Sandbox {
        protections,
        temp_root: std::env::temp_dir(),
    };
    let marker = format!("nproc{}", std::process::id());
    let program = format!(
        "open('/proc/self/comm', 'w').write('{marker}')\nimport os\nwhile True:\n    os.fork()\n"
    );
    let outcome = run(&sandbox, &program);
    assert_ne!(outcome.verdict, Verdict::Pass, "{outcome:?}");
    assert_eq!(processes_matching(&marker), Vec::<String>::new());
}

#[test]
fn huge_allocation_fails_with_memory_error() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let outcome = run(&sandbox, HUGE_ALLOCATION);
    assert_eq!(outcome.verdict, Verdict::Fail, "{outcome:?}");
    assert!(outcome.reason.contains("MemoryError"), "{outcome:?}");
}

#[test]
fn processes_together_cannot_pass_the_memory_limit() {
    // Each child stays under RLIMIT_AS (1 GiB); only the run's memory cgroup stops the sum.
    // The CPU limit is not the one under test: on a loaded machine, reclaim inside a full
    // cgroup charged one child more than short_policy's 1 s (SIGXCPU before the cgroup acted).
    let policy = SandboxPolicy {
        memory_bytes: 1 << 30,
        wall_timeout_ms: 5_000,
        cpu_seconds: 10,
        ..short_policy()
    };
    let Some(sandbox) = bwrap_sandbox(policy) else {
        return;
    };
    if sandbox.protections().memory_cgroup.is_none() {
        eprintln!("skipping: no memory cgroup here, memory is capped per process only");
        return;
    }
    let program = concat!(
        "import os, time\n",
        "children = []\n",
        "for _ in range(3):\n",
        "    pid = os.fork()\n",
        "    if pid == 0:\n",
        "        x = b'x' * (600 * 1024 * 1024)\n",
        "        time.sleep(1)\n",
        "        os._exit(0)\n",
        "    children.append(pid)\n",
        "for pid in children:\n",
        "    _, status = os.waitpid(pid, 0)\n",
        "    if os.WIFSIGNALED(status):\n",
        "        raise SystemExit(f'child killed by signal {os.WTERMSIG(status)}')\n",
    );
    let outcome = run(&sandbox, program);
    assert_ne!(outcome.verdict, Verdict::Pass, "{outcome:?}");
    assert!(outcome.reason.contains("memory"), "{outcome:?}");
}

#[test]
fn writing_outside_the_temp_dir_fails() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    for target in [
        "/tmp/frontier-escape-test",
        "/etc/frontier-escape",
        "/work/frontier-escape",
    ] {
        let _ = fs::remove_file(target);
        let outcome = run(
            &sandbox,
            &format!("open('{target}', 'w').write('escaped')\n"),
        );
        assert_eq!(outcome.verdict, Verdict::Fail, "{target}: {outcome:?}");
        assert!(
            !Path::new(target).exists(),
            "{target} was written on the host"
        );
    }
}

#[test]
fn network_is_unreachable() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let program = format!(
        "import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\ns.sendall(b'hello')\n"
    );
    let outcome = run(&sandbox, &program);
    assert_eq!(outcome.verdict, Verdict::Fail, "{outcome:?}");
    match listener.accept() {
        Err(err) if err.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the listener saw a connection: {other:?}"),
    }
}

#[test]
fn secret_in_home_is_hidden() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
    let path = home.join(format!(".frontier-sandbox-secret-{}", std::process::id()));
    let secret = format!("frontier-secret-{}", std::process::id() * 7919);
    fs::write(&path, &secret).unwrap();
    let _cleanup = RemoveOnDrop(path.clone());
    let program = format!("print(open('{}').read())\n", path.display());
    let outcome = run(&sandbox, &program);
    assert_eq!(outcome.verdict, Verdict::Fail, "{outcome:?}");
    assert!(!outcome.stdout_tail.contains(&secret), "{outcome:?}");
    assert!(!outcome.stderr_tail.contains(&secret), "{outcome:?}");
}

#[test]
fn killing_the_parent_does_not_reach_us() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let program = concat!(
        "import os, signal\n",
        "attempts = [\n",
        "    lambda: os.kill(os.getppid(), signal.SIGKILL),\n",
        "    lambda: os.killpg(os.getpgid(os.getppid()), signal.SIGKILL),\n",
        "    lambda: os.kill(1, signal.SIGKILL),\n",
        "    lambda: os.kill(-1, signal.SIGKILL),\n",
        "]\n",
        "for attempt in attempts:\n",
        "    try:\n",
        "        attempt()\n",
        "        print('sent', flush=True)\n",
        "    except Exception as e:\n",
        "        print(repr(e), flush=True)\n",
    );
    let outcome = run(&sandbox, program);
    eprintln!("{}", outcome.stdout_tail);
    assert!(!outcome.reason.contains("SyntaxError"), "{outcome:?}");
    assert!(
        !outcome.stdout_tail.is_empty(),
        "the attempts ran: {outcome:?}"
    );
    // Still here, and the sandbox still works.
    assert_eq!(run(&sandbox, PASSING).verdict, Verdict::Pass);
}

#[test]
fn printing_a_gigabyte_is_killed_at_the_output_limit() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let program = "import sys\nchunk='x'*1048576\nfor _ in range(1024): sys.stdout.write(chunk)\n";
    let started = Instant::now();
    let outcome = run(&sandbox, program);
    assert_eq!(outcome.verdict, Verdict::Killed, "{outcome:?}");
    assert_eq!(outcome.reason, "output limit 1 MiB exceeded");
    assert!(started.elapsed().as_millis() < 2_000, "{outcome:?}");
    assert!(outcome.stdout_tail.len() <= TAIL_BYTES);
    assert!(
        peak_rss_bytes() < 256 << 20,
        "peak RSS {}",
        peak_rss_bytes()
    );
}

#[test]
fn temp_dir_is_removed_after_pass_and_timeout() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let root = temp_root();
    let sandbox = sandbox.with_temp_root(root.path());
    let program = "open('left-behind.txt', 'w').write('x')\n";
    assert_eq!(run(&sandbox, program).verdict, Verdict::Pass);
    assert!(is_empty_dir(root.path()));
    let cpu_bound = "open('left-behind.txt', 'w').write('x')\nwhile True: pass\n";
    let sleeper = "open('left-behind.txt', 'w').write('x')\nimport time\ntime.sleep(60)\n";
    let locked = "import os\nos.makedirs('a/b')\nopen('a/b/f', 'w').write('x')\nos.chmod('a/b', 0)\nos.chmod('a', 0)\nwhile True: pass\n";
    for program in [cpu_bound, sleeper, locked] {
        assert_eq!(run(&sandbox, program).verdict, Verdict::Timeout);
        assert!(is_empty_dir(root.path()));
    }
}

#[test]
fn concurrent_runs_get_their_own_verdicts() {
    let Some(sandbox) = bwrap_sandbox(short_policy()) else {
        return;
    };
    let sandbox = Arc::new(sandbox);
    let cases: [(&str, Verdict); 4] = [
        (PASSING, Verdict::Pass),
        (FAILING, Verdict::Fail),
        ("import sys\nsys.exit(3)\n", Verdict::Fail),
        ("print('x' * 100)\n", Verdict::Pass),
    ];
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let sandbox = Arc::clone(&sandbox);
            thread::spawn(move || {
                (0..2)
                    .map(|i| {
                        let (program, want) = cases[(t + i) % cases.len()];
                        (sandbox.run_python(program).unwrap().verdict, want)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<(Verdict, Verdict)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(results.len(), 8);
    for (got, want) in results {
        assert_eq!(got, want);
    }
}

#[test]
fn rlimits_backend_needs_allow_weak() {
    let err = Sandbox::with_backend(short_policy(), BackendKind::RlimitsOnly).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("--allow-weak-sandbox"), "{message}");
}

#[test]
fn rlimits_backend_passes_canonical_program() {
    let sandbox = rlimits_sandbox();
    assert_eq!(sandbox.protections().backend(), BackendKind::RlimitsOnly);
    assert!(!sandbox.protections().is_strong());
    assert_eq!(run(&sandbox, PASSING).verdict, Verdict::Pass);
    let failing = run(&sandbox, FAILING);
    assert_eq!(failing.reason, "exit code 1: AssertionError");
}

#[test]
fn rlimits_backend_times_out_infinite_loop() {
    let outcome = run(&rlimits_sandbox(), INFINITE_LOOP);
    assert_eq!(outcome.verdict, Verdict::Timeout, "{outcome:?}");
    assert!(outcome.duration_ms < 3_000, "{outcome:?}");
}

#[test]
fn rlimits_backend_fails_huge_allocation() {
    let outcome = run(&rlimits_sandbox(), HUGE_ALLOCATION);
    assert_eq!(outcome.verdict, Verdict::Fail, "{outcome:?}");
    assert!(outcome.reason.contains("MemoryError"), "{outcome:?}");
}
