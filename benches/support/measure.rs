//! What the benchmarks measure about their own process, from `/proc` (Linux).

use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use rayon::prelude::*;

/// Peak resident set size of this process so far (VmHWM), in KiB; 0 if unreadable.
#[allow(dead_code)]
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system) of the whole process, every thread, from `/proc/self/stat`
/// (ticks of 1/100 s, Linux's `USER_HZ`).
#[allow(dead_code)] // not every benchmark measures CPU
pub fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces:
    // utime and stime are fields 14 and 15 of the line, so 12 and 13 after the name.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// CPU time of the calling thread, from `/proc/thread-self/schedstat` (nanoseconds).
#[allow(dead_code)]
pub fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = stat
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// Strict verifications per second on all cores, of distinct messages and keys: the
/// machine's own limit, which every signed-entry figure is printed next to.
#[allow(dead_code)] // not every benchmark verifies signatures
pub fn raw_verify_rate() -> f64 {
    let n = 40_000;
    let keys: Vec<SigningKey> = (0..64u8)
        .map(|i| SigningKey::from_bytes(&[i.wrapping_add(1); 32]))
        .collect();
    let items: Vec<_> = (0..n)
        .into_par_iter()
        .map(|i| {
            let key = &keys[i % keys.len()];
            let msg = format!("message {i}").into_bytes();
            let sig = key.sign(&msg);
            (key.verifying_key(), msg, sig)
        })
        .collect();
    let t = Instant::now();
    let ok = items
        .par_iter()
        .filter(|(k, m, s)| k.verify_strict(m, s).is_ok())
        .count();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(ok, n);
    n as f64 / secs
}

/// Resident memory of this process now, in KiB: (anonymous, file-backed), from
/// `/proc/self/status` (`RssAnon`, `RssFile`); zeros if unreadable.
#[allow(dead_code)]
pub fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("RssAnon:"), field("RssFile:"))
}

/// KiB of this process's mappings of files whose path contains `name` that are dirty
/// in its page tables (`Shared_Dirty` + `Private_Dirty` of `/proc/self/smaps`): pages
/// written since they were last cleaned or released, which the kernel must write back.
#[allow(dead_code)]
pub fn mapped_dirty_kib(name: &str) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut inside = false;
    let mut kib = 0;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header line: address range, perms, offset, dev, inode, path.
            inside = line.contains(name);
        } else if inside
            && (line.starts_with("Shared_Dirty:") || line.starts_with("Private_Dirty:"))
        {
            kib += line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    kib
}
