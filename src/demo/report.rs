//! Step 6: the summary table and the report directory.
//!
//! Every figure is read from the ledger (pool totals, institution reports, student
//! balances), never from the story's own bookkeeping, and cross-checked: the closed
//! institutions' reports and the districts must add up to the pool's totals. The
//! report directory holds `report.md`, one `inst-XXXX.csv` per closed institution
//! (each claim's owed, made good and outstanding, then the institution's total) and
//! `pool.svg` (pledged, reserved and delivered as the log grew).
//!
//! ```
//! use lesson_ledger::demo::report::percent;
//! assert_eq!(percent(1, 3), "33.3%");
//! assert_eq!(percent(0, 0), "-");
//! ```

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::Duration;

use indicatif::ProgressBar;
use rayon::prelude::*;

use super::audit::AuditReport;
use super::feed::Feed;
use super::story::yuan;
use super::world::World;
use super::{io_err, svg, DemoError, DemoOutcome};
use crate::ledger::defaults::{CONFIRMATION_WINDOW_DAYS, SHANGHAI_DISTRICTS};
use crate::ledger::queries::StudentSummary;

/// One district's coverage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistrictRow {
    /// The district.
    pub district: String,
    /// Claims of its students.
    pub claims: u64,
    /// Value owed to its students, in fen.
    pub owed_fen: u64,
    /// Value made good by lessons consumed, in fen.
    pub made_good_fen: u64,
    /// Its students with at least one lesson consumed.
    pub students_served: u64,
}

/// One closed institution's liability, as its report gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstitutionRow {
    /// The closed institution's id.
    pub institution: String,
    /// Distinct students holding a claim against it.
    pub students: u64,
    /// Claims against it.
    pub claims: u64,
    /// Value owed over its claims, in fen.
    pub owed_fen: u64,
    /// Value made good by lessons consumed, in fen.
    pub made_good_fen: u64,
    /// `owed − made_good`, in fen.
    pub outstanding_fen: u64,
}

/// The report's totals (all read from the ledger).
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Approved pledges.
    pub pledges_approved: u64,
    /// Value of the approved pledges, in fen.
    pub pledged_fen: u64,
    /// Pledged value not allocated, in fen.
    pub available_fen: u64,
    /// Pledged value reserved by allocations, in fen.
    pub reserved_fen: u64,
    /// Pledged value delivered as lessons consumed, in fen.
    pub delivered_fen: u64,
    /// Claims.
    pub claims: u64,
    /// Value of every claim, in fen.
    pub claims_value_fen: u64,
    /// Claim value made good by lessons consumed, in fen.
    pub made_good_fen: u64,
    /// Students holding a claim.
    pub students: u64,
    /// Students with some value reserved or consumed.
    pub students_matched: u64,
    /// Students with at least one lesson consumed.
    pub students_served: u64,
    /// Coverage by district.
    pub districts: Vec<DistrictRow>,
    /// Each closed institution's liability.
    pub institutions: Vec<InstitutionRow>,
}

/// `part / whole` as a percentage with one decimal, integer arithmetic only.
#[must_use]
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    let permille = u128::from(part) * 1000 / u128::from(whole);
    format!("{}.{}%", permille / 10, permille % 10)
}

/// Students whose balances are fetched at once (in parallel, on the client's side).
const STUDENTS_PER_ROUND: u64 = 1024;

/// Step 6: read the totals, cross-check them, print the table, write the CSVs and the
/// chart (`report.md` is written by [`write_markdown`] once the timings are known).
///
/// Every student's balance is fetched with its proofs (`GET /v1/students/{ref}`, each
/// proof verified by the client), each closed institution's report from
/// `GET /v1/institutions/{id}/report`, the totals from `GET /v1/pool`.
///
/// # Errors
/// A total that does not add up; a proof that does not verify; I/O; faults.
pub fn run(
    feed: &mut Feed,
    world: &World,
    audit: &AuditReport,
    dir: &Path,
) -> Result<Totals, DemoError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let samples = feed.samples().to_vec();
    let ledger = feed.transport();
    let p = world.params();
    let mut t = totals_from_pool(&ledger.pool()?, p.students);
    let closed: Vec<String> = (0..p.closed).map(|c| world.closed(c)).collect();
    let csvs = read_students(ledger, world, &mut t, &closed)?;
    for (inst, (csv, owed, made_good)) in closed.into_iter().zip(csvs) {
        let row = institution_row(ledger, dir, inst, csv, (owed, made_good))?;
        t.institutions.push(row);
    }
    cross_check(&t)?;
    let path = dir.join("pool.svg");
    fs::write(&path, svg::pool_chart(&samples)).map_err(io_err(&path))?;
    print_summary(&t, audit);
    Ok(t)
}

/// The totals as `GET /v1/pool` gives them, with a row per district to fill.
fn totals_from_pool(pool: &crate::ledger::objects::Pool, students: u64) -> Totals {
    Totals {
        pledges_approved: pool.pledges_approved,
        pledged_fen: pool.pledged.0,
        available_fen: pool.available.0,
        reserved_fen: pool.reserved.0,
        delivered_fen: pool.delivered.0,
        claims: pool.claims,
        claims_value_fen: pool.claims_value.0,
        made_good_fen: pool.claims_consumed.0,
        students,
        districts: SHANGHAI_DISTRICTS
            .iter()
            .map(|d| DistrictRow {
                district: (*d).to_string(),
                ..DistrictRow::default()
            })
            .collect(),
        ..Totals::default()
    }
}

/// Every student's proven balance, [`STUDENTS_PER_ROUND`] at a time in parallel, into
/// the totals; returns per closed institution its CSV so far and what its claims add up
/// to (owed, made good).
fn read_students(
    ledger: &super::transport::HttpLedger,
    world: &World,
    t: &mut Totals,
    closed: &[String],
) -> Result<Vec<(String, u64, u64)>, DemoError> {
    let header = "claim,student,lessons,owed_fen,made_good_fen,outstanding_fen\n";
    let students = world.params().students;
    let mut csvs: Vec<(String, u64, u64)> = vec![(header.to_string(), 0, 0); closed.len()];
    let bar = ProgressBar::new(students);
    let mut first = 0;
    while first < students {
        let last = (first + STUDENTS_PER_ROUND).min(students);
        let summaries = (first..last)
            .into_par_iter()
            .map(|n| {
                let claim = world.claim(n);
                let summary = ledger.student(&claim.student)?.ok_or_else(|| {
                    DemoError::check(format!("claims of {}", claim.student), 1, 0)
                })?;
                Ok((claim, summary))
            })
            .collect::<Result<Vec<_>, DemoError>>()?;
        for (claim, s) in summaries {
            add_student(t, closed, &mut csvs, claim.district, &s)?;
        }
        bar.inc(last - first);
        first = last;
    }
    bar.finish_and_clear();
    Ok(csvs)
}

/// A closed institution's served report, checked against what its claims add up to
/// (`sums`: owed, made good), and its CSV written with the report's total line.
fn institution_row(
    ledger: &super::transport::HttpLedger,
    dir: &Path,
    inst: String,
    mut csv: String,
    sums: (u64, u64),
) -> Result<InstitutionRow, DemoError> {
    let (owed, made_good) = sums;
    let Some(r) = ledger.institution_report(&inst)? else {
        return Err(DemoError::check(format!("report of {inst}"), "one", "none"));
    };
    if (owed, made_good) != (r.owed.0, r.made_good.0) {
        return Err(DemoError::check(
            format!("claims of {inst} against its report (owed, made good)"),
            format!("({}, {})", r.owed.0, r.made_good.0),
            format!("({owed}, {made_good})"),
        ));
    }
    let _ = writeln!(
        csv,
        "total,{} students,{},{},{},{}",
        r.students, r.lessons_owed.0, r.owed.0, r.made_good.0, r.outstanding.0
    );
    let path = dir.join(format!("{inst}.csv"));
    fs::write(&path, csv).map_err(io_err(&path))?;
    Ok(InstitutionRow {
        institution: inst,
        students: r.students,
        claims: r.claims,
        owed_fen: r.owed.0,
        made_good_fen: r.made_good.0,
        outstanding_fen: r.outstanding.0,
    })
}

/// One student's balance into the totals, their district's row and their claims'
/// institutions' CSVs.
fn add_student(
    t: &mut Totals,
    closed: &[String],
    csvs: &mut [(String, u64, u64)],
    district: &str,
    s: &StudentSummary,
) -> Result<(), DemoError> {
    let served = s.consumed.0 > 0;
    t.students_served += u64::from(served);
    t.students_matched += u64::from(served || s.reserved.0 > 0);
    if let Some(row) = t.districts.iter_mut().find(|r| r.district == district) {
        row.claims += s.claims.len() as u64;
        row.owed_fen += s.value.0;
        row.made_good_fen += s.consumed.0;
        row.students_served += u64::from(served);
    }
    for b in &s.claims {
        let outstanding = b.value.0.checked_sub(b.consumed.0).ok_or_else(|| {
            DemoError::check(format!("outstanding of {}", b.claim), "≥ 0", "negative")
        })?;
        let Some(i) = closed.iter().position(|c| *c == b.institution.as_str()) else {
            return Err(DemoError::check(
                format!("institution of {}", b.claim),
                "a closed institution of the demo",
                &b.institution,
            ));
        };
        let (csv, owed, made_good) = &mut csvs[i];
        *owed += b.value.0;
        *made_good += b.consumed.0;
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{outstanding}",
            b.claim, b.student, b.lessons.0, b.value.0, b.consumed.0
        );
    }
    Ok(())
}

/// The institutions' reports and the districts must add up to the pool's totals.
fn cross_check(t: &Totals) -> Result<(), DemoError> {
    let inst_owed: u64 = t.institutions.iter().map(|r| r.owed_fen).sum();
    let inst_good: u64 = t.institutions.iter().map(|r| r.made_good_fen).sum();
    let dist_owed: u64 = t.districts.iter().map(|r| r.owed_fen).sum();
    let dist_good: u64 = t.districts.iter().map(|r| r.made_good_fen).sum();
    for (what, found) in [
        ("institutions' value owed", inst_owed),
        ("districts' value owed", dist_owed),
    ] {
        if found != t.claims_value_fen {
            return Err(DemoError::check(what, t.claims_value_fen, found));
        }
    }
    for (what, found) in [
        ("institutions' value made good", inst_good),
        ("districts' value made good", dist_good),
        ("pool delivered", t.delivered_fen),
    ] {
        if found != t.made_good_fen {
            return Err(DemoError::check(what, t.made_good_fen, found));
        }
    }
    Ok(())
}

fn print_summary(t: &Totals, audit: &AuditReport) {
    println!("{:<34} {:>22}", "pool pledged (yuan)", yuan(t.pledged_fen));
    println!(
        "{:<34} {:>22}",
        "pool reserved (yuan)",
        yuan(t.reserved_fen)
    );
    println!(
        "{:<34} {:>22}",
        "pool delivered (yuan)",
        yuan(t.delivered_fen)
    );
    println!(
        "{:<34} {:>22}",
        "claims owed (yuan)",
        yuan(t.claims_value_fen)
    );
    println!(
        "{:<34} {:>22}",
        "value made good (yuan)",
        format!(
            "{} ({})",
            yuan(t.made_good_fen),
            percent(t.made_good_fen, t.claims_value_fen)
        )
    );
    println!(
        "{:<34} {:>22}",
        "students served / matched / all",
        format!(
            "{} / {} / {}",
            t.students_served, t.students_matched, t.students
        )
    );
    println!("coverage per district (value made good / owed):");
    for r in &t.districts {
        println!(
            "  {:<12} {:>6} claims {:>18} yuan owed {:>8} made good, {} students served",
            r.district,
            r.claims,
            yuan(r.owed_fen),
            percent(r.made_good_fen, r.owed_fen),
            r.students_served
        );
    }
    println!(
        "audit verdict: {} ({} entries, root {}, co-signed by {})",
        if audit.passed { "PASS" } else { "FAIL" },
        audit.entries,
        audit.root_base64,
        audit.cosigned_by
    );
}

/// Prints each step's wall time and entries/s, and where the report is.
pub fn print_finish(outcome: &DemoOutcome, dir: &Path, total: Duration) {
    println!(
        "\n== timings (scale {}, seed {})",
        outcome.scale.as_str(),
        outcome.seed
    );
    for s in &outcome.timings {
        println!(
            "  {:<32} {:>10.2?} {:>9} entries {:>10.0} entries/s",
            s.step,
            s.wall,
            s.entries,
            s.entries_per_sec()
        );
    }
    let secs = total.as_secs_f64().max(1e-9);
    println!(
        "  {:<32} {:>10.2?} {:>9} entries {:>10.0} entries/s",
        "total",
        total,
        outcome.entries,
        outcome.entries as f64 / secs
    );
    for (code, n, msg) in &outcome.refusals {
        println!("  expected refusal {code} ×{n}: {msg}");
    }
    let c = &outcome.choices;
    let t = &outcome.totals;
    println!(
        "families' choices ({} families, {} requesting a course), same claims and pledges:\n  \
         without: {} yuan matched, {} students served\n  \
         with:    {} yuan matched, {} students served; value made good {} of what is owed",
        c.families,
        c.requesting,
        yuan(c.without.matched_fen),
        c.without.students_served,
        yuan(c.with.matched_fen),
        c.with.students_served,
        percent(t.made_good_fen, t.claims_value_fen)
    );
    println!("report written to {}", dir.display());
}

/// The families' choices: the matcher on the same claims and pledges without and with
/// them, and the share of what is owed made good (with them: the story's run).
fn write_choices(md: &mut String, outcome: &DemoOutcome) {
    let c = &outcome.choices;
    let t = &outcome.totals;
    let _ = writeln!(
        md,
        "## Families' choices\n\n{} families chose what they redeem (`claim_preferences_set`: subjects in ranked order, districts, online), {} of them asking for a specific course. The matcher on the same claims and pledges:\n\n| | value matched (yuan) | bound (yuan) | students served | claims served |\n|---|---:|---:|---:|---:|",
        c.families, c.requesting
    );
    for (k, s) in [
        ("without choices", c.without),
        ("with choices (the run recorded)", c.with),
    ] {
        let _ = writeln!(
            md,
            "| {k} | {} | {} | {} | {} |",
            yuan(s.matched_fen),
            yuan(s.bound_fen),
            s.students_served,
            s.claims_served
        );
    }
    let _ = writeln!(
        md,
        "\nValue made good with the choices: {} yuan, {} of what is owed.\n",
        yuan(t.made_good_fen),
        percent(t.made_good_fen, t.claims_value_fen)
    );
}

/// Writes `report.md`: the summary, coverage per district, the institutions, the audit,
/// the expected refusals and the timings.
///
/// # Errors
/// I/O.
pub fn write_markdown(outcome: &DemoOutcome, dir: &Path) -> Result<(), DemoError> {
    let mut md = String::new();
    let _ = writeln!(md, "# Lesson Ledger demo report\n");
    let _ = writeln!(
        md,
        "Scale `{}`, seed `{}` (replay with `lesson-ledger demo --scale {} --seed {}`). \
         Synthetic data; parties are pseudonymous refs.\n",
        outcome.scale.as_str(),
        outcome.seed,
        outcome.scale.as_str(),
        outcome.seed
    );
    write_pool(&mut md, &outcome.totals);
    write_choices(&mut md, outcome);
    write_coverage(&mut md, &outcome.totals);
    write_audit(&mut md, &outcome.audit);
    write_lessons_and_timings(&mut md, outcome);
    let path = dir.join("report.md");
    fs::write(&path, md).map_err(io_err(&path))
}

/// The pool's figures and its chart.
fn write_pool(md: &mut String, t: &Totals) {
    let _ = writeln!(md, "## Pool\n\n| figure | value |\n|---|---:|");
    for (k, v) in [
        ("pledges approved", t.pledges_approved.to_string()),
        ("pledged (yuan)", yuan(t.pledged_fen)),
        ("available (yuan)", yuan(t.available_fen)),
        ("reserved (yuan)", yuan(t.reserved_fen)),
        ("delivered (yuan)", yuan(t.delivered_fen)),
        ("claims", t.claims.to_string()),
        ("claims owed (yuan)", yuan(t.claims_value_fen)),
        ("value made good (yuan)", yuan(t.made_good_fen)),
        ("students served", t.students_served.to_string()),
        ("students matched", t.students_matched.to_string()),
        ("students with claims", t.students.to_string()),
    ] {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    let _ = writeln!(md, "\n![pool use over time](pool.svg)\n");
}

/// Coverage per district and the closed institutions' table.
fn write_coverage(md: &mut String, t: &Totals) {
    let _ = writeln!(
        md,
        "## Coverage per district\n\n| district | claims | owed (yuan) | made good (yuan) | coverage | students served |\n|---|---:|---:|---:|---:|---:|"
    );
    for r in &t.districts {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            r.district,
            r.claims,
            yuan(r.owed_fen),
            yuan(r.made_good_fen),
            percent(r.made_good_fen, r.owed_fen),
            r.students_served
        );
    }
    let _ = writeln!(
        md,
        "\n## Closed institutions\n\nOne CSV each (`<institution>.csv`): every claim's owed, made good and outstanding.\n\n| institution | students | claims | owed (yuan) | made good (yuan) | outstanding (yuan) |\n|---|---:|---:|---:|---:|---:|"
    );
    for r in &t.institutions {
        let _ = writeln!(
            md,
            "| [{i}]({i}.csv) | {} | {} | {} | {} | {} |",
            r.students,
            r.claims,
            yuan(r.owed_fen),
            yuan(r.made_good_fen),
            yuan(r.outstanding_fen),
            i = r.institution
        );
    }
}

/// The audit's verdict and what it checked.
fn write_audit(md: &mut String, a: &AuditReport) {
    let _ = writeln!(
        md,
        "\n## Audit (over HTTP, by `{}`)\n\nVerdict: **{}**. {} entries and {} signatures verified from the tlog tiles; root `{}` recomputed{}.\n{}.\nCo-signed by `{}` (`POST /v1/cosign`); {} inclusion proofs verified for {}.\n\n```text\n{}```",
        a.cosigned_by,
        if a.passed { "PASS" } else { "FAIL" },
        a.entries,
        a.signatures,
        a.root_base64,
        a.consistent_with.map_or_else(String::new, |m| format!(
            "; consistent with the checkpoint of size {m} remembered from the first audit"
        )),
        a.state_line,
        a.cosigned_by,
        a.proofs_verified,
        a.students_checked.join(", "),
        a.checkpoint
    );
}

/// The expected refusals, the lessons' outcomes and the steps' timings.
fn write_lessons_and_timings(md: &mut String, outcome: &DemoOutcome) {
    let _ = writeln!(
        md,
        "\n## Refusals expected by the story\n\n| code | count | example |\n|---|---:|---|"
    );
    for (code, n, msg) in &outcome.refusals {
        let _ = writeln!(md, "| `{code}` | {n} | {msg} |");
    }
    let l = &outcome.lessons;
    let _ = writeln!(
        md,
        "\nResubmissions answered with their first receipt: {}.\n\n## Lessons and time\n\nThe ledger's day is {} s (genesis `day_micros`): the 15-day confirmation window is {} s and allocations are valid {} days ({} s) of ledger time, stamped by the server.\n\n| allocations | declined | expired | co-signed | confirmed | deemed confirmed | disputes upheld | disputes rejected |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} | {} | {} | {} |",
        outcome.exists,
        outcome.day_micros / 1_000_000,
        CONFIRMATION_WINDOW_DAYS * outcome.day_micros / 1_000_000,
        outcome.allocation_validity_days,
        outcome.allocation_validity_days * outcome.day_micros / 1_000_000,
        l.allocations,
        l.declined,
        l.expired,
        l.consumed,
        l.confirmed,
        l.deemed,
        l.upheld,
        l.rejected
    );
    let _ = writeln!(
        md,
        "\n## Timings\n\n| step | wall time | entries | entries/s |\n|---|---:|---:|---:|"
    );
    for s in &outcome.timings {
        let _ = writeln!(
            md,
            "| {} | {:.2?} | {} | {:.0} |",
            s.step,
            s.wall,
            s.entries,
            s.entries_per_sec()
        );
    }
}
