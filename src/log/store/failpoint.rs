//! One failpoint, for the crash tests: `LESSON_LEDGER_FAILPOINT=log-before-sync:N` stops
//! the writer for good right after the `N`th batch (counted from 1 in this process) was
//! written to `log.dat` and before its `fdatasync`, having printed
//! `failpoint log-before-sync: entries A..B written, not synced` to stderr, so that a
//! test can SIGKILL the process at exactly that point (`tests/pipeline.rs`).
//!
//! Unset (always, outside tests) it costs one relaxed load a batch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The variable naming the failpoint.
pub const FAILPOINT_ENV: &str = "LESSON_LEDGER_FAILPOINT";
const BEFORE_SYNC: &str = "log-before-sync:";

/// The batch number at which to stop, if the variable asks for one.
fn armed() -> Option<u64> {
    static ARMED: OnceLock<Option<u64>> = OnceLock::new();
    *ARMED.get_or_init(|| {
        let value = std::env::var(FAILPOINT_ENV).ok()?;
        let armed = value.strip_prefix(BEFORE_SYNC).and_then(|n| n.parse().ok());
        if armed.is_none() {
            tracing::warn!(%value, "{FAILPOINT_ENV} is not `{BEFORE_SYNC}N`; no failpoint armed");
        }
        armed
    })
}

/// Called once a batch holding entries `[first, end)` is written and not yet synced.
pub(super) fn before_sync(first: u64, end: u64) {
    static WRITTEN: AtomicU64 = AtomicU64::new(0);
    let Some(at) = armed() else {
        return;
    };
    if WRITTEN.fetch_add(1, Ordering::Relaxed) + 1 != at {
        return;
    }
    eprintln!("failpoint log-before-sync: entries {first}..{end} written, not synced");
    loop {
        // Held here, with the batch unsynced, until the test kills the process.
        std::thread::park();
    }
}
