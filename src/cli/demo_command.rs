//! The `demo` command: runs [`crate::demo::run`] in `--data DIR` (default: a new
//! directory under the system's temporary directory).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{CliError, DemoArgs, ScaleArg};
use crate::demo::{self, DemoConfig, Scale};

impl From<ScaleArg> for Scale {
    fn from(s: ScaleArg) -> Scale {
        match s {
            ScaleArg::Tiny => Scale::Tiny,
            ScaleArg::Small => Scale::Small,
            ScaleArg::City => Scale::City,
        }
    }
}

/// A fresh directory name under the temporary directory (kept after the run, so the
/// report and the ledger can be inspected).
fn temp_data_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("lesson-ledger-demo-{}-{nanos}", std::process::id()))
}

/// `demo`.
///
/// # Errors
/// [`CliError::Demo`]: an unexpected refusal, a failed audit or check, a fault.
pub fn demo(args: DemoArgs) -> Result<(), CliError> {
    let config = DemoConfig {
        data: args.data.unwrap_or_else(temp_data_dir),
        scale: args.scale.into(),
        seed: args.seed,
        keep_serving: args.keep_serving,
    };
    demo::run(&config)?;
    Ok(())
}
