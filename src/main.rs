//! `lesson-ledger`: the command line. All the work is in the library; this maps errors
//! to the exit codes documented in `lesson_ledger::cli`.

use std::process::ExitCode;

use clap::Parser;
use lesson_ledger::cli::{self, Cli};

// The ledger's writer makes and drops many small objects per entry; with glibc's malloc,
// allocation was a third of its time (perf, `cargo bench --bench ledger_rules`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lesson-ledger: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
