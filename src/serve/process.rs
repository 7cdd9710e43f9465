//! The process series every Prometheus exporter has (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`...), read from `/proc/self` at each scrape so that they are
//! current, as the client libraries do. Linux only: elsewhere there are none.
//!
//! Figures come from the same files the Go and Python clients read: `stat` (CPU time and start
//! time, in clock ticks of 1/100 s: the kernel's USER_HZ, fixed at 100 for user space),
//! `status` (`VmSize`, `VmRSS`, in kB), `fd/` (open descriptors), `limits` (`Max open files`)
//! and `/proc/stat`'s `btime` (boot time).

use bytes::Bytes;
use iam_credential_report::expose::{self, ProcessStats};

/// Clock ticks per second in `/proc` (USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// Reads the figures; what cannot be read is left out.
pub fn read() -> ProcessStats {
    let mut p = ProcessStats::default();
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // The command name (field 2) is in parentheses and may contain spaces: count fields
        // from the last ')'.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // After ')': field 3 is state, so field N is fields[N - 3].
            let at = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
            if let (Some(utime), Some(stime)) = (at(14), at(15)) {
                p.cpu_seconds = (utime + stime) / TICKS_PER_SECOND;
            }
            if let (Some(start), Some(boot)) = (at(22), boot_time()) {
                p.start_time_seconds = Some(boot + start / TICKS_PER_SECOND);
            }
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let kb = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|k| k * 1024)
        };
        p.virtual_memory_bytes = kb("VmSize:");
        p.resident_memory_bytes = kb("VmRSS:");
    }
    p.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64);
    p.max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        });
    p
}

/// The process series read now, to follow the snapshot: as text, or as a gzip member of its
/// own when `gzip`. Gzip allows members to follow one another (RFC 1952, 2.2), and every gzip
/// reader Prometheus and curl use reads them all, so the snapshot's bytes are sent as they
/// are and only the few hundred bytes of process series are compressed per scrape.
pub fn tail(gzip: bool) -> Bytes {
    let text = expose::compose([&expose::render_process(&read())]);
    if gzip {
        expose::packed::gzip_member(text.as_bytes())
    } else {
        Bytes::from(text)
    }
}

fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_the_process_series_as_text_or_a_gzip_member() {
        use std::io::Read;
        let mut text = String::new();
        flate2::read::GzDecoder::new(&tail(true)[..])
            .read_to_string(&mut text)
            .unwrap();
        assert!(
            text.starts_with("# HELP process_cpu_seconds_total"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE process_cpu_seconds_total counter\n"),
            "{text}"
        );
        assert!(tail(false).starts_with(b"# HELP process_cpu_seconds_total"));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_process() {
        let p = read();
        assert!(p.cpu_seconds >= 0.0);
        assert!(p.open_fds.is_some_and(|n| n >= 3), "{p:?}");
        assert!(p.max_fds.is_some_and(|n| n >= p.open_fds.unwrap()), "{p:?}");
        assert!(
            p.resident_memory_bytes.is_some_and(|b| b > 1 << 20),
            "{p:?}"
        );
        assert!(p.virtual_memory_bytes >= p.resident_memory_bytes, "{p:?}");
        let now = chrono::Utc::now().timestamp() as f64;
        let started = p.start_time_seconds.unwrap();
        // Started in the last day, and not in the future (1 s of rounding).
        assert!(
            started <= now + 1.0 && started > now - 86_400.0,
            "{started} {now}"
        );
    }
}
