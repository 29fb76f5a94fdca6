//! The machine we run on: default thread count and a description every result carries.

use serde::Serialize;

/// Threads to use by default: the physical core count (as llama-bench does), at least 1.
pub fn default_threads() -> u32 {
    sysinfo::System::physical_core_count()
        .ok()
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1) as u32
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Machine {
    pub host: String,
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub cpu: String,
    pub logical_cpus: usize,
    pub physical_cores: usize,
    pub memory_bytes: u64,
}

impl Machine {
    pub fn describe() -> Machine {
        let mut cpu = String::new();
        let mut logical = 0;
        let mut memory = 0;
        if let Ok(mut sys) = sysinfo::System::new() {
            sys.refresh_cpu_all();
            sys.refresh_memory();
            cpu = sys
                .cpus()
                .first()
                .map(|c| c.brand().trim().to_string())
                .unwrap_or_default();
            logical = sys.cpus().len();
            memory = sys.total_memory();
        }
        Machine {
            host: sysinfo::System::host_name().unwrap_or_default(),
            os: sysinfo::System::long_os_version().unwrap_or_default(),
            kernel: sysinfo::System::kernel_version().unwrap_or_default(),
            arch: sysinfo::System::cpu_arch(),
            cpu,
            logical_cpus: logical,
            physical_cores: sysinfo::System::physical_core_count().unwrap_or(0),
            memory_bytes: memory,
        }
    }

    /// One line: `Intel Xeon ... (2 cores, 24 GiB), Debian 12, Linux 6.1`.
    pub fn one_line(&self) -> String {
        format!(
            "{} ({} cores, {}), {}, kernel {}",
            if self.cpu.is_empty() {
                "unknown CPU"
            } else {
                &self.cpu
            },
            self.physical_cores,
            crate::units::bytes(self.memory_bytes),
            self.os,
            self.kernel
        )
    }
}

/// Memory the system can give without swapping (`MemAvailable` on Linux), within this
/// process's cgroup limit where sysinfo finds one.
pub fn available_memory() -> u64 {
    let Ok(mut sys) = sysinfo::System::new() else {
        return 0;
    };
    sys.refresh_memory();
    let available = sys.available_memory();
    match sys.cgroup_limits() {
        Some(c) => available.min(c.free_memory),
        None => available,
    }
}
