//! Step 4a: the operator runs the matcher through `POST /v1/match` (bearer token from
//! the ledger directory's `operator.token`); the server records the run (`match_run`)
//! and its allocations. The demo reads them back from the entry bundles: which claim,
//! which pledge, how many lessons. The story goes on from what the ledger recorded, not from what the
//! demo would have chosen.
//!
//! ```no_run
//! # use lesson_ledger::demo::{feed::Feed, matching, world::World, HttpLedger, Scale};
//! # let world = World::new(1, Scale::Tiny, 0);
//! # let mut feed = Feed::new(HttpLedger::new("http://127.0.0.1:8080", "operator+1+A")?, "l.example/a", 1);
//! let allocations = matching::run(&mut feed, &world, std::path::Path::new("/tmp/l"), 0)?;
//! println!("{} allocations", allocations.len());
//! # Ok::<(), lesson_ledger::demo::DemoError>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::feed::Feed;
use super::story::yuan;
use super::world::World;
use super::{io_err, DemoError};
use crate::http::operator::OPERATOR_TOKEN;
use crate::log::leaf::Leaf;

/// An allocation as the ledger recorded it, with the demo's numbering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alloc {
    /// The allocation's id, as the matcher named it.
    pub id: String,
    /// The student number of the claim (see [`World::claim`]).
    pub claim: u64,
    /// The donor number of the pledge (see [`World::donor`]).
    pub donor: usize,
    /// Lessons allocated.
    pub lessons: u64,
}

/// The fields of `allocation_made` the story needs.
#[derive(Deserialize)]
struct AllocationMade {
    kind: String,
    #[serde(default)]
    allocation: String,
    #[serde(default)]
    claim: String,
    #[serde(default)]
    pledge: String,
    #[serde(default)]
    lessons: u64,
}

/// Entries read per slice.
const SLICE_ENTRIES: u64 = 16 * crate::log::tiles::TILE_WIDTH;

/// The next entry of `[from, to)`, reading a slice when `leaves` is empty.
fn next_leaf(
    feed: &Feed,
    leaves: &mut std::vec::IntoIter<Leaf>,
    from: &mut u64,
    to: u64,
) -> Result<Option<Leaf>, DemoError> {
    if leaves.as_slice().is_empty() && *from < to {
        let end = (*from + SLICE_ENTRIES).min(to);
        *leaves = feed.transport().entries(*from, end)?.into_iter();
        *from = end;
    }
    Ok(leaves.next())
}

/// Step 4a: one match run; the allocations it recorded, in log order. `expected_fen` is
/// the value the demo's own matcher run found on the same data with the families'
/// choices ([`super::choices`]): the server's run must match exactly that.
///
/// # Errors
/// No token; the endpoint's refusal; an allocation the world does not know (a claim
/// or pledge the demo never made); a count that differs from the run's answer; a value
/// matched other than `expected_fen`.
pub fn run(
    feed: &mut Feed,
    world: &World,
    ledger_dir: &Path,
    expected_fen: u64,
) -> Result<Vec<Alloc>, DemoError> {
    feed.flush()?;
    let path = ledger_dir.join(OPERATOR_TOKEN);
    let token = std::fs::read_to_string(&path).map_err(io_err(&path))?;
    let answer = feed.transport().run_match(&token)?;
    let after = feed.transport().size()?;
    // The run's entries: its `match_run`, then its allocations.
    let before = answer.first_index.unwrap_or(after);
    let donors: HashMap<String, usize> = world
        .pledges()
        .into_iter()
        .map(|p| (p.pledge, usize::try_from(p.donor).unwrap_or(usize::MAX)))
        .collect();
    let mut allocs = Vec::new();
    // Read in slices, so that a city's half a million allocations are never all held
    // as entries at once.
    let mut leaves = Vec::new().into_iter();
    let mut from = before;
    while let Some(leaf) = next_leaf(feed, &mut leaves, &mut from, after)? {
        let made: AllocationMade =
            serde_json::from_slice(leaf.envelope.payload()).map_err(|source| {
                DemoError::EntryPayload {
                    index: leaf.index,
                    source,
                }
            })?;
        if made.kind != "allocation_made" {
            continue;
        }
        let unknown = |what: &str| {
            DemoError::check(
                format!("allocation {} of the match run", made.allocation),
                format!("a {what} of the demo"),
                format!("{} / {}", made.claim, made.pledge),
            )
        };
        let claim = made
            .claim
            .strip_prefix("c-")
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| world.claim(*n).claim == made.claim)
            .ok_or_else(|| unknown("claim"))?;
        let donor = *donors.get(&made.pledge).ok_or_else(|| unknown("pledge"))?;
        allocs.push(Alloc {
            id: made.allocation,
            claim,
            donor,
            lessons: made.lessons,
        });
    }
    feed.note_appended(after)?;
    if allocs.len() as u64 != answer.allocations {
        return Err(DemoError::check(
            "allocations read back from the match run",
            answer.allocations,
            allocs.len(),
        ));
    }
    print_run(&answer, allocs.len(), expected_fen)?;
    Ok(allocs)
}

/// Prints the run's figures, after checking its value matched is `expected_fen`.
fn print_run(
    answer: &crate::client::MatchAnswer,
    allocations: usize,
    expected_fen: u64,
) -> Result<(), DemoError> {
    let figure = |k: &str| answer.report.get(k).and_then(serde_json::Value::as_u64);
    if figure("matched_fen") != Some(expected_fen) {
        return Err(DemoError::check(
            "value matched by the recorded run (fen), as on the demo's own data",
            expected_fen,
            figure("matched_fen").map_or_else(|| "?".into(), |v| v.to_string()),
        ));
    }
    println!(
        "match run {}: {} allocations recorded, {} yuan matched of a bound of {} yuan ({}), {} students served",
        answer.run.as_deref().unwrap_or("(dry run)"),
        allocations,
        figure("matched_fen").map_or_else(|| "?".into(), yuan),
        figure("bound_fen").map_or_else(|| "?".into(), yuan),
        figure("ratio_ppm").map_or_else(|| "?".into(), |ppm| format!(
            "{}.{:02}%",
            ppm / 10_000,
            ppm / 100 % 100
        )),
        figure("students_served").map_or_else(|| "?".into(), |v| v.to_string()),
    );
    Ok(())
}
