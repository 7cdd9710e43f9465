//! The process series every Prometheus exporter has (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`...), read from `/proc/self` at each scrape so that they are
//! current, as the client libraries do. Linux only: elsewhere there are none.
//!
//! Figures come from the same files the Go and Python clients read: `stat` (CPU time and start
//! time, in clock ticks of 1/100 s: the kernel's USER_HZ, fixed at 100 for user space),
//! `status` (`VmSize`, `VmRSS`, in kB), `fd/` (open descriptors), `limits` (`Max open files`)
//! and `/proc/stat`'s `btime` (boot time).

use iam_credential_report::expose::{self, ProcessStats};

/// Clock ticks per second in `/proc` (USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// Reads the figures; what cannot be read is left out.
pub fn read() -> ProcessStats {
    let mut p = ProcessStats::default();
    // Zeroed once, and read into as it is: see `read_proc`.
    let mut buf = vec![0; PROC_FILE_BYTES];
    if let Some(stat) = read_proc("/proc/self/stat", &mut buf) {
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
    if let Some(status) = read_proc("/proc/self/status", &mut buf) {
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
    p.max_fds = read_proc("/proc/self/limits", &mut buf).and_then(|l| {
        l.lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
    });
    p
}

/// Room for any of the `/proc/self` files read here (`status`, the longest, is under 2 KB).
const PROC_FILE_BYTES: usize = 8 * 1024;

/// Reads a small `/proc` file into `buf` with one read call (and one more to see the end):
/// `read_to_string` probes a file of unknown size with small reads first, a dozen calls
/// per scrape for these three files. `buf` keeps its length and is not zeroed again: this
/// crate is built for size, where zeroing it for each file cost more than reading them.
fn read_proc<'a>(path: &str, buf: &'a mut Vec<u8>) -> Option<&'a str> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len + PROC_FILE_BYTES, 0);
        }
        match file.read(&mut buf[len..]).ok()? {
            0 => break,
            n => len += n,
        }
    }
    std::str::from_utf8(&buf[..len]).ok()
}

/// The process series read now, as text: they follow the snapshot in each scrape (in the
/// same gzip member, see `Gzipped::finish`), so that they are current.
pub fn series() -> String {
    expose::compose([&expose::render_process(&read())])
}

/// Read once: it does not change, and `/proc/stat` (a line per CPU and one with every
/// interrupt counter) is the costliest file here to read at each scrape.
fn boot_time() -> Option<f64> {
    static BOOT_TIME: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
    *BOOT_TIME.get_or_init(|| {
        std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse().ok())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_have_their_headers() {
        let text = series();
        assert!(
            text.starts_with("# HELP process_cpu_seconds_total"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE process_cpu_seconds_total counter\n"),
            "{text}"
        );
    }

    #[test]
    fn a_file_longer_than_the_buffer_is_read_whole_and_a_shorter_one_after_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let long: String = (0..3 * PROC_FILE_BYTES)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let (long_path, short_path) = (dir.path().join("long"), dir.path().join("short"));
        std::fs::write(&long_path, &long).unwrap();
        std::fs::write(&short_path, "short\n").unwrap();
        let mut buf = vec![0; PROC_FILE_BYTES];
        assert_eq!(
            read_proc(long_path.to_str().unwrap(), &mut buf),
            Some(long.as_str())
        );
        assert_eq!(
            read_proc(short_path.to_str().unwrap(), &mut buf),
            Some("short\n")
        );
        assert_eq!(read_proc("/nonexistent/file", &mut buf), None);
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
