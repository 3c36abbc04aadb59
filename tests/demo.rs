//! The demo at tiny scale, end to end over its HTTP API: its audit passes, its report's
//! totals are the ledger's own (`GET /v1/pool` of a server on the same directory),
//! every CSV adds up, the chart is an SVG document, every path of a lesson — deemed
//! confirmation and expiry after their windows included — is taken, and no entry names
//! anyone but a pseudonymous party.

use std::collections::BTreeSet;
use std::path::Path;

use lesson_ledger::client::Client;
use lesson_ledger::demo::{self, DemoConfig, Scale};
use lesson_ledger::http::{Server, ServerConfig};
use lesson_ledger::ledger::writer::Ledger;

/// The pseudonymous refs the demo may use: `operator`, `stu-` + 6 digits, `inst-` + 4
/// digits, `assoc-` + 2 digits.
fn is_pseudonymous(party: &str) -> bool {
    let digits = |rest: &str, n: usize| rest.len() == n && rest.bytes().all(|b| b.is_ascii_digit());
    party == "operator"
        || party.strip_prefix("stu-").is_some_and(|r| digits(r, 6))
        || party.strip_prefix("inst-").is_some_and(|r| digits(r, 4))
        || party.strip_prefix("assoc-").is_some_and(|r| digits(r, 2))
}

#[test]
fn pseudonymous_pattern_refuses_names() {
    for ok in ["operator", "stu-000123", "inst-0042", "assoc-01"] {
        assert!(is_pseudonymous(ok), "{ok}");
    }
    for bad in [
        "Zhang Wei",
        "stu-12",
        "inst-00042",
        "assoc-1",
        "13800138000",
        "",
    ] {
        assert!(!is_pseudonymous(bad), "{bad}");
    }
}

/// Parses a CSV of the report: (first cell, owed, made good, outstanding) per row.
fn csv_rows(path: &Path) -> Vec<(String, u64, u64, u64)> {
    let text = std::fs::read_to_string(path).expect("csv readable");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("claim,student,lessons,owed_fen,made_good_fen,outstanding_fen"),
        "{}",
        path.display()
    );
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), 6, "{l}");
            let n = |i: usize| cells[i].parse::<u64>().expect("a number of fen");
            (cells[0].to_string(), n(3), n(4), n(5))
        })
        .collect()
}

#[test]
fn tiny_demo_audits_and_reports_the_ledgers_own_totals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = DemoConfig {
        data: dir.path().join("demo"),
        scale: Scale::Tiny,
        seed: 7,
        keep_serving: false,
    };
    let outcome = demo::run(&config).expect("the tiny demo runs");

    // The association's audit over HTTP passed, over the whole log, consistent with
    // the checkpoint it remembered from its first look, and its replay agreed.
    assert!(outcome.audit.passed);
    assert_eq!(outcome.audit.entries, outcome.entries);
    assert!(outcome.audit.proofs_verified > 0);
    assert!(outcome
        .audit
        .consistent_with
        .is_some_and(|m| m < outcome.entries));
    assert!(outcome
        .audit
        .state_line
        .contains("the pool served equals the replay's"));
    assert!(outcome.audit.checkpoint.contains("— assoc-01 "));

    // The refusals the story expects, and the resubmission answered with its receipt.
    let codes: BTreeSet<&str> = outcome.refusals.iter().map(|r| r.0.as_str()).collect();
    for code in [
        "institution_banned",
        "window_not_elapsed",
        "allocation_past_expiry",
        "missing_signature",
        "wrong_ledger",
    ] {
        assert!(codes.contains(code), "{code} missing from {codes:?}");
    }
    assert_eq!(outcome.exists, 1);
    // Every path of a lesson and an allocation, the time-driven ones included.
    let l = &outcome.lessons;
    for (what, n) in [
        ("declined", l.declined),
        ("expired", l.expired),
        ("co-signed", l.consumed),
        ("confirmed", l.confirmed),
        ("deemed confirmed", l.deemed),
        ("disputes upheld", l.upheld),
        ("disputes rejected", l.rejected),
    ] {
        assert!(n > 0, "no allocation or lesson {what}");
    }

    // The report's totals equal the ledger's own, as its server serves them.
    let (ledger, _) = Ledger::open(&config.ledger_dir()).expect("ledger reopens");
    let server = Server::start(
        ledger,
        "127.0.0.1:0".parse().expect("addr"),
        ServerConfig::default(),
    )
    .expect("server");
    let client = Client::new(&server.url()).expect("client");
    let pool = client.pool().expect("GET /v1/pool");
    let t = &outcome.totals;
    assert_eq!(t.pledged_fen, pool.pledged.0);
    assert_eq!(t.reserved_fen, pool.reserved.0);
    assert_eq!(t.delivered_fen, pool.delivered.0);
    assert_eq!(t.available_fen, pool.available.0);
    assert_eq!(t.claims_value_fen, pool.claims_value.0);
    assert_eq!(t.made_good_fen, pool.claims_consumed.0);
    assert_eq!(t.claims, pool.claims);
    assert_eq!(t.pledges_approved, pool.pledges_approved);
    assert!(t.delivered_fen > 0);
    assert!(t.students_served > 0);
    assert_eq!(
        client.log_info().expect("GET /v1/log").size,
        outcome.entries
    );

    // One CSV per closed institution; each row: outstanding = owed − made good; the
    // total row is the institution's report.
    let report = config.report_dir();
    assert_eq!(t.institutions.len(), 3);
    for row in &t.institutions {
        let r = client
            .institution_report(&row.institution)
            .expect("institution report");
        assert_eq!(
            (row.owed_fen, row.made_good_fen, row.outstanding_fen),
            (r.owed.0, r.made_good.0, r.outstanding.0)
        );
        let rows = csv_rows(&report.join(format!("{}.csv", row.institution)));
        for (first, owed, good, outstanding) in &rows {
            assert_eq!(*outstanding, owed - good, "{first}");
        }
        let (first, owed, good, outstanding) = rows.last().expect("a total row");
        assert_eq!(first, "total");
        assert_eq!(
            (*owed, *good, *outstanding),
            (r.owed.0, r.made_good.0, r.outstanding.0)
        );
        let claims: u64 = rows[..rows.len() - 1].iter().map(|r| r.1).sum();
        assert_eq!(
            claims, r.owed.0,
            "the claims add up to what {} owes",
            row.institution
        );
    }
    let csvs = std::fs::read_dir(&report)
        .expect("report dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "csv"))
        })
        .count();
    assert_eq!(csvs, 3);

    // The chart is an SVG document with three lines; the Markdown names the verdict
    // and the day.
    let svg = std::fs::read_to_string(report.join("pool.svg")).expect("pool.svg");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(40)]);
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 3);
    let md = std::fs::read_to_string(report.join("report.md")).expect("report.md");
    assert!(md.contains("Verdict: **PASS**"));
    assert!(md.contains("The ledger's day is 1 s"));

    // Families chose (issue 18), and the figures compare the same data without and with
    // their choices; the run recorded is the one with them.
    let c = &outcome.choices;
    assert!(c.families > 0, "{c:?}");
    assert!(c.with.matched_fen <= c.with.bound_fen && c.without.matched_fen <= c.without.bound_fen);
    assert!(c.with.matched_fen > 0 && c.without.matched_fen > 0, "{c:?}");
    assert!(md.contains("## Families' choices"));

    // No personal data: every party an entry names, and every signer, is pseudonymous;
    // and the story used every kind it promised (read back over HTTP).
    let mut kinds = BTreeSet::new();
    // The operator's key is named after the ledger's origin (C2SP), not after a party.
    let origin = client.log_info().expect("log info").origin;
    for leaf in client.entries(0, outcome.entries).expect("entries") {
        let i = leaf.index;
        let p: serde_json::Value = serde_json::from_slice(leaf.envelope.payload()).expect("json");
        kinds.insert(p["kind"].as_str().expect("kind").to_string());
        for field in ["party", "student", "institution", "operator"] {
            if let Some(v) = p.get(field) {
                let v = v.as_str().expect("a ref");
                assert!(is_pseudonymous(v), "entry {i}: {field} = {v:?}");
            }
        }
        for s in leaf.envelope.signatures() {
            let name = s.keyid().split('+').next().expect("key name");
            assert!(
                is_pseudonymous(name) || name == origin,
                "entry {i}: signer {name:?}"
            );
        }
    }
    for kind in [
        "genesis",
        "party_registered",
        "institution_closed",
        "institution_whitelisted",
        "institution_blacklisted",
        "claim_recorded",
        "claim_preferences_set",
        "pledge_offered",
        "pledge_approved",
        "match_run",
        "allocation_made",
        "allocation_declined",
        "allocation_expired",
        "lesson_consumed",
        "lesson_proposed",
        "lesson_confirmed",
        "lesson_deemed_confirmed",
        "lesson_disputed",
        "dispute_resolved",
    ] {
        assert!(kinds.contains(kind), "{kind} never appears");
    }
    server.shutdown().expect("shutdown");

    // The demo never overwrites a ledger.
    let again = demo::run(&config).expect_err("a second run in the same directory");
    assert_eq!(again.code(), "log_exists");
}

#[test]
fn the_same_seed_makes_the_same_world() {
    use lesson_ledger::demo::world::World;
    let a = World::new(11, Scale::Small, 1_700_000_000_000_000);
    let b = World::new(11, Scale::Small, 1_700_000_000_000_000);
    let c = World::new(12, Scale::Small, 1_700_000_000_000_000);
    assert_eq!(a.claim(1234), b.claim(1234));
    assert_ne!(a.claim(1234), c.claim(1234));
    assert_eq!(a.pledges(), b.pledges());
    assert_eq!(
        a.key("stu-000001").expect("key").vkey(),
        b.key("stu-000001").expect("key").vkey()
    );
    // The small pool passes 1.4 billion yuan, from the same number of pledges.
    let total: u64 = a.pledges().iter().map(|p| p.value_total_fen()).sum();
    assert!(total > demo::world::POOL_FLOOR_FEN, "{total}");
    assert_eq!(a.pledges().len() as u64, a.params().pledges);
    // Claims keep to the plausible ranges.
    for n in 0..500 {
        let claim = a.claim(n);
        assert!((1..=60).contains(&claim.lessons));
        assert!((10_000..=60_000).contains(&claim.price_fen));
        assert!((1..=12).contains(&claim.grade));
        assert_eq!(claim.evidence_digest.len(), 64);
    }
}
