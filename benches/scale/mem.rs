//! Resident memory of a process, from `/proc/<pid>/status`.

/// `VmRSS` (resident now) and `VmHWM` (the peak of resident memory), in KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    /// `RssAnon`: the heap, stacks and other anonymous memory.
    pub anon_kib: u64,
    /// `RssFile`: mapped files, mostly the executable's code.
    pub file_kib: u64,
}

impl Memory {
    /// This process.
    pub fn of_self() -> Option<Self> {
        Self::read("/proc/self/status")
    }

    /// Another process.
    pub fn of(pid: u32) -> Option<Self> {
        Self::read(&format!("/proc/{pid}/status"))
    }

    fn read(path: &str) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        };
        Some(Memory {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
            anon_kib: field("RssAnon:").unwrap_or(0),
            file_kib: field("RssFile:").unwrap_or(0),
        })
    }
}

/// KiB as MiB, one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
