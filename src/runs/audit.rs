//! What `verify` does with recorded match runs: at each `match_run`, the matcher runs
//! again on the inputs read from the replayed state at that point, with the recorded
//! parameters; its plans must have the recorded count and digest, and the allocations
//! that name the run must be those plans, in order — claim, pledge and lessons.
//!
//! The rules accept each allocation on its own; only this re-run tells an allocation the
//! matcher made from one the operator chose (a different student, pledge or count).
//!
//! Three findings, told apart, each with its stable code:
//! - `match_run_mismatch`: the run is not the matcher's (count, digest, or an allocation
//!   that is not the plan at its position) — the operator chose something else;
//! - `match_run_incomplete`: a new run starts while the last one still expects
//!   allocations and was never closed — an operator's run cut short and left open;
//! - `match_run_unreplayable`: the replayed state or the matcher refuses the inputs.
//!
//! A run cut short and then closed (`match_run_closed`) is not a finding: its recorded
//! allocations were checked, one by one, as the re-run's first plans (the rules take a
//! run's allocations only in plan order), and [`RunAudit::closed`] counts it. A run
//! still open at the end of the log is not an error either (a server may be writing it,
//! or will close it when it restarts); [`RunAudit::open_run`] tells about it.

use crate::ledger::objects::{Allocation, RunRecord};
use crate::ledger::{Changes, Id, MemoryState, Table, Value};
use crate::matching::{match_claims, MatchParams};

/// Where a recorded run and its re-run part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {what} (expected {expected}, recorded {found})")]
pub struct RunDivergence {
    /// Stable code: `match_run_mismatch`, `match_run_incomplete` or
    /// `match_run_unreplayable`.
    pub code: &'static str,
    /// What differs (the count, the digest, an allocation's claim, pledge or lessons).
    pub what: String,
    /// What the re-run gives.
    pub expected: String,
    /// What the log recorded.
    pub found: String,
}

/// The run whose allocations are being compared.
#[derive(Debug)]
struct OpenRun {
    run: Id,
    index: u64,
    declared: u64,
    /// The re-run's plans: (claim, pledge, lessons).
    plans: Vec<(Id, Id, u64)>,
    /// Allocations of the run seen so far.
    seen: usize,
}

/// The replay's check of match runs (see the module docs).
#[derive(Debug, Default)]
pub struct RunAudit {
    open: Option<OpenRun>,
    checked: u64,
    closed: u64,
}

fn mismatch(what: String, expected: String, found: String) -> RunDivergence {
    RunDivergence {
        code: "match_run_mismatch",
        what,
        expected,
        found,
    }
}

impl RunAudit {
    /// A new audit, before genesis.
    pub fn new() -> RunAudit {
        RunAudit::default()
    }

    /// Looks at entry `index` with the `changes` the rules gave it, `state` being the
    /// replayed state before the entry. Entries that touch no run cost a scan of their
    /// (few) changes.
    ///
    /// # Errors
    /// The first [`RunDivergence`].
    pub fn entry(
        &mut self,
        state: &MemoryState,
        index: u64,
        changes: &Changes,
    ) -> Result<(), RunDivergence> {
        let Some(record) = changes.iter().find_map(|(key, value)| match value {
            Value::Run(r) if key.table == Table::Run => Some(r),
            _ => None,
        }) else {
            return Ok(());
        };
        if record.index == index {
            return self.begin(state, record);
        }
        if record.closed_at == Some(index) {
            return self.close(record);
        }
        let Some(alloc) = changes.iter().find_map(|(_, value)| match value {
            Value::Allocation(a) => Some(a),
            _ => None,
        }) else {
            return Err(mismatch(
                format!(
                    "entry {index} changes run {} but makes no allocation",
                    record.run
                ),
                "an allocation_made".into(),
                "another kind".into(),
            ));
        };
        self.allocation(record, alloc)
    }

    fn begin(&mut self, state: &MemoryState, record: &RunRecord) -> Result<(), RunDivergence> {
        if let Some(open) = self.open.take() {
            return Err(RunDivergence {
                code: "match_run_incomplete",
                what: format!(
                    "run {} (entry {}) was followed by run {} before all its allocations",
                    open.run, open.index, record.run
                ),
                expected: format!("{} allocations", open.declared),
                found: open.seen.to_string(),
            });
        }
        let (claims, pledges) =
            super::inputs(state, record.params.at_micros).map_err(|e| RunDivergence {
                code: "match_run_unreplayable",
                what: format!("run {}: the replayed state cannot be read", record.run),
                expected: "readable".into(),
                found: e.to_string(),
            })?;
        let matching =
            match_claims(&claims, &pledges, &MatchParams::from(record.params)).map_err(|e| {
                RunDivergence {
                    code: "match_run_unreplayable",
                    what: format!(
                        "run {}: the matcher refuses the replayed inputs",
                        record.run
                    ),
                    expected: "a matching".into(),
                    found: format!("{} ({e})", e.code()),
                }
            })?;
        let planned = matching.plans.len() as u64;
        if planned != record.allocations {
            return Err(mismatch(
                format!("run {}: number of allocations", record.run),
                planned.to_string(),
                record.allocations.to_string(),
            ));
        }
        let digest = super::digest_of(&matching.plans);
        if digest != record.plans_digest {
            return Err(mismatch(
                format!("run {}: plans digest", record.run),
                digest,
                record.plans_digest.clone(),
            ));
        }
        self.checked += 1;
        if planned > 0 {
            self.open = Some(OpenRun {
                run: record.run.clone(),
                index: record.index,
                declared: record.allocations,
                plans: matching
                    .plans
                    .into_iter()
                    .map(|p| (p.claim, p.pledge, p.lessons.0))
                    .collect(),
                seen: 0,
            });
        }
        Ok(())
    }

    fn allocation(&mut self, record: &RunRecord, alloc: &Allocation) -> Result<(), RunDivergence> {
        let found = (&alloc.claim, &alloc.pledge, alloc.lessons.total().0);
        let Some(open) = self.open.as_mut().filter(|o| o.run == record.run) else {
            // The rules let an allocation name only a run with room left, and a run is
            // open here until that room is used up; so this is a run reported above.
            return Err(mismatch(
                format!(
                    "allocation {} names run {}, which is not open",
                    alloc.allocation, record.run
                ),
                "the open run".into(),
                record.run.to_string(),
            ));
        };
        let position = open.seen;
        let Some((claim, pledge, lessons)) = open.plans.get(position) else {
            return Err(mismatch(
                format!(
                    "run {}: allocation {} beyond the plans",
                    open.run, alloc.allocation
                ),
                format!("{} allocations", open.plans.len()),
                (position + 1).to_string(),
            ));
        };
        if (claim, pledge, *lessons) != found {
            return Err(mismatch(
                format!(
                    "run {} (entry {}): allocation {} is not plan {position}",
                    open.run, open.index, alloc.allocation
                ),
                format!("claim {claim}, pledge {pledge}, {lessons} lessons"),
                format!("claim {}, pledge {}, {} lessons", found.0, found.1, found.2),
            ));
        }
        open.seen += 1;
        if open.seen == open.plans.len() {
            self.open = None;
        }
        Ok(())
    }

    /// `match_run_closed`: the open run ends with what it recorded (each allocation
    /// already checked against its plan).
    fn close(&mut self, record: &RunRecord) -> Result<(), RunDivergence> {
        match self.open.take() {
            Some(open) if open.run == record.run => {
                self.closed += 1;
                Ok(())
            }
            other => {
                let found = other
                    .as_ref()
                    .map_or("no open run".into(), |o| o.run.to_string());
                self.open = other;
                Err(mismatch(
                    format!("run {} is closed but is not the open run", record.run),
                    record.run.to_string(),
                    found,
                ))
            }
        }
    }

    /// Runs closed before all their allocations were recorded.
    pub fn closed(&self) -> u64 {
        self.closed
    }

    /// Runs re-run and found equal to their record so far.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// A run still open at this point: (run, allocations recorded, declared).
    pub fn open_run(&self) -> Option<(String, u64, u64)> {
        self.open
            .as_ref()
            .map(|o| (o.run.to_string(), o.seen as u64, o.declared))
    }
}
