//! `--keep-serving`: the server stays up after the demo, with the URLs worth opening,
//! until Ctrl-C (or SIGTERM); then it stops gracefully and the ledger is closed.

use super::world::World;
use super::DemoError;
use crate::log::tiles::TILE_WIDTH;

/// Prints the URLs worth opening on the demo's ledger.
pub(super) fn print_urls(url: &str, world: &World) {
    let claim = world.claim(0);
    println!("\nthe server keeps serving the ledger (Ctrl-C to stop):");
    println!("  the web app (it verifies every proof in your browser):");
    for (what, path) in [
        ("home", "/".to_string()),
        (
            "a family's page (zh / en)",
            format!("/students/{}", claim.student),
        ),
        (
            "a closed institution's page",
            format!("/institutions/{}", world.closed(0)),
        ),
        ("the pool, with charts", "/pool".to_string()),
        ("the association's audit", "/audit".to_string()),
    ] {
        println!("  {what:<32} {url}{path}");
    }
    println!("  the JSON API:");
    for (what, path) in [
        ("signed checkpoint, co-signed", "/checkpoint".to_string()),
        ("pool totals", "/v1/pool".to_string()),
        (
            "a claim, with its proofs",
            format!("/v1/claims/{}", claim.claim),
        ),
        (
            "a student, with proofs",
            format!("/v1/students/{}", claim.student),
        ),
        (
            "a closed institution's report",
            format!("/v1/institutions/{}/report", world.closed(0)),
        ),
        ("the first entries (tile)", "/tile/entries/000".to_string()),
        ("the first Merkle hashes (tile)", "/tile/0/000".to_string()),
        ("log size, genesis", "/v1/log".to_string()),
        ("metrics", "/metrics".to_string()),
        ("OpenAPI document", "/openapi.json".to_string()),
    ] {
        println!("  {what:<32} {url}{path}");
    }
    println!(
        "  (full tiles hold {TILE_WIDTH} entries; audit it yourself with \
         `lesson-ledger verify --url {url} --state audit.json`)"
    );
}

/// Blocks until Ctrl-C or SIGTERM.
///
/// # Errors
/// The signal handler could not be installed.
pub(super) fn wait_for_interrupt() -> Result<(), DemoError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| DemoError::Runtime {
            what: "signal runtime",
            source,
        })?;
    runtime
        .block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                let mut term = signal(SignalKind::terminate())?;
                tokio::select! {
                    r = tokio::signal::ctrl_c() => r,
                    _ = term.recv() => Ok(()),
                }
            }
            #[cfg(not(unix))]
            tokio::signal::ctrl_c().await
        })
        .map_err(|source| DemoError::Runtime {
            what: "waiting for Ctrl-C",
            source,
        })?;
    println!("stopping the server");
    Ok(())
}
