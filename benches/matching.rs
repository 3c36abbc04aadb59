//! Matcher benchmark (issue 5): synthetic, seeded, Shanghai-shaped data; prints time, peak
//! RSS (VmHWM of this process), matched value, the relaxation bound and the ratio, the
//! greedy baseline, and the students served. Target at 1,000,000 claims × 10,000 pledges:
//! ≤ 30 s and ≤ 2 GiB peak RSS on two cores.
//!
//! Each size runs twice on the same data: as recorded, then with families' preferences
//! (issue 18; see `with_preferences`), and prints what choice changed.
//!
//! Run: `cargo bench --bench matching` (about two minutes). `MATCH_BENCH_SIZES` overrides the
//! sizes, e.g. `MATCH_BENCH_SIZES=20000x200,1000000x10000`; `MATCH_BENCH_SEED` the seed;
//! `MATCH_BENCH_SCATTERED=1` lets students accept up to three districts anywhere in the
//! city instead of neighbouring ones (a stress: many more classes and edges).
//!
//! Data: 16 Shanghai districts; 10 subjects (the core three weighted up); grades 1–12;
//! claims of 1–60 lessons at 100–600 yuan, a fifth partly consumed; students accept their
//! own district, often a neighbouring one or two, and online in 60% of cases. Pledges: a
//! quarter online, grade bands 1–4 grades wide, 10–60 seats of 12–48 lessons at 100–600
//! yuan; 3% not approved, 1% banned, 5% outside validity. The pool is about a third of
//! what is owed (Shanghai: 1.4 billion yuan pledged against far more owed), so value and
//! fairness both bind.

// The allocator of the `lesson-ledger` binary (src/main.rs), so figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/measure.rs"]
mod measure;

use std::time::Instant;

use lesson_ledger::ledger::objects::ClaimPreferences;
use lesson_ledger::ledger::{Fen, Id, Lessons};
use lesson_ledger::matching::{match_claims, ClaimInput, MatchParams, MatchReport, PledgeInput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use lesson_ledger::ledger::defaults::SHANGHAI_DISTRICTS as DISTRICTS;
/// Subjects with weights (the core three are most of the market).
const SUBJECTS: [(&str, u32); 10] = [
    ("math", 30),
    ("english", 25),
    ("chinese", 15),
    ("physics", 6),
    ("chemistry", 5),
    ("biology", 3),
    ("art", 5),
    ("music", 4),
    ("sports", 3),
    ("coding", 4),
];
const NOW: u64 = 1_700_000_000_000_000;

fn id(s: &str) -> Id {
    Id::new("id", s).expect("generated ids are valid")
}

fn subject(rng: &mut StdRng) -> usize {
    let total: u32 = SUBJECTS.iter().map(|s| s.1).sum();
    let mut x = rng.gen_range(0..total);
    for (i, s) in SUBJECTS.iter().enumerate() {
        if x < s.1 {
            return i;
        }
        x -= s.1;
    }
    0
}

fn generate(
    n_claims: usize,
    n_pledges: usize,
    seed: u64,
    scattered: bool,
) -> (Vec<ClaimInput>, Vec<PledgeInput>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let districts: Vec<Id> = DISTRICTS.iter().map(|d| id(d)).collect();
    let subjects: Vec<Id> = SUBJECTS.iter().map(|s| id(s.0)).collect();
    // Most students hold one claim; about one in eight a second one (two institutions).
    let mut students = 0usize;
    let institutions = (n_claims / 400).max(3);
    let mut claims = Vec::with_capacity(n_claims);
    for i in 0..n_claims {
        let inst = rng.gen_range(0..institutions);
        let d = rng.gen_range(0..DISTRICTS.len());
        let mut accepted: Vec<Id> = Vec::new();
        if scattered {
            // Stress: up to three accepted districts anywhere in the city.
            for _ in 0..rng.gen_range(0..=3) {
                let other = &districts[rng.gen_range(0..DISTRICTS.len())];
                if *other != districts[d] && !accepted.contains(other) {
                    accepted.push(other.clone());
                }
            }
        } else {
            for step in [1, DISTRICTS.len() - 1] {
                if rng.gen_bool(0.4) {
                    accepted.push(districts[(d + step) % DISTRICTS.len()].clone());
                }
            }
        }
        let lessons: u64 = rng.gen_range(1..=60);
        let price: u64 = rng.gen_range(10..=60) * 1_000; // 100..600 yuan, in fen
        let consumed = if rng.gen_bool(0.2) {
            rng.gen_range(0..lessons)
        } else {
            0
        };
        claims.push(ClaimInput {
            claim: id(&format!("c-{i:07}")),
            student: id(&format!("stu-{:06x}", {
                if students > 0 && rng.gen_bool(0.12) {
                    rng.gen_range(0..students)
                } else {
                    students += 1;
                    students - 1
                }
            })),
            closed_at: 1_000 + (inst as u64) * 7,
            subject: subjects[subject(&mut rng)].clone(),
            grade: rng.gen_range(1..=12),
            district: districts[d].clone(),
            accepts_online: rng.gen_bool(0.6),
            accepted_districts: accepted,
            unreserved_fen: Fen((lessons - consumed) * price),
            preferences: None,
        });
    }
    let mut pledges = Vec::with_capacity(n_pledges);
    for j in 0..n_pledges {
        let online = rng.gen_bool(0.25);
        let gmin: u64 = rng.gen_range(1..=12);
        let gmax = (gmin + rng.gen_range(0..4)).min(12);
        let seats: u64 = rng.gen_range(10..=60);
        let per_seat: u64 = rng.gen_range(12..=48);
        let valid = !rng.gen_bool(0.05);
        pledges.push(PledgeInput {
            pledge: id(&format!("p-{j:05}")),
            institution: id(&format!("inst-{:04}", rng.gen_range(0..2_000))),
            subject: subjects[subject(&mut rng)].clone(),
            grade_min: gmin,
            grade_max: gmax,
            district: if online {
                None
            } else {
                Some(districts[rng.gen_range(0..DISTRICTS.len())].clone())
            },
            online,
            available_lessons: Lessons(seats * per_seat),
            lessons_per_seat: per_seat,
            value_per_lesson_fen: Fen(rng.gen_range(10..=60) * 1_000),
            valid_from_micros: NOW - 1_000,
            valid_until_micros: if valid { NOW + 1_000 } else { NOW - 1 },
            approved: !rng.gen_bool(0.03),
            banned: rng.gen_bool(0.01),
        });
    }
    (claims, pledges)
}

/// The same claims with families' choices (issue 18): three in five set preferences —
/// their own subject first, then arts, sports and technology courses (each accepted by
/// about half of them), in their own district and the neighbours they already accepted,
/// online as before; one in twenty asks for a specific course of an accepted subject and
/// its grade. A generator of its own (`seed + 1`), so the claims and pledges are the
/// very same data as without preferences.
fn with_preferences(claims: &[ClaimInput], pledges: &[PledgeInput], seed: u64) -> Vec<ClaimInput> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(1));
    let extra: Vec<Id> = ["art", "music", "sports", "coding"]
        .iter()
        .map(|s| id(s))
        .collect();
    let mut by_subject_grade: std::collections::HashMap<(&str, u64), Vec<&Id>> =
        std::collections::HashMap::new();
    for p in pledges {
        for g in p.grade_min..=p.grade_max {
            by_subject_grade
                .entry((p.subject.as_str(), g))
                .or_default()
                .push(&p.pledge);
        }
    }
    claims
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if !rng.gen_bool(0.6) {
                return c;
            }
            let mut subjects = vec![c.subject.clone()];
            for s in &extra {
                if *s != c.subject && rng.gen_bool(0.5) {
                    subjects.push(s.clone());
                }
            }
            let mut requests = Vec::new();
            if rng.gen_bool(0.05) {
                let s = &subjects[rng.gen_range(0..subjects.len())];
                if let Some(list) = by_subject_grade.get(&(s.as_str(), c.grade)) {
                    requests.push(list[rng.gen_range(0..list.len())].clone());
                }
            }
            c.preferences = Some(ClaimPreferences {
                subjects,
                accepts_online: c.accepts_online,
                accepted_districts: c.accepted_districts.clone(),
                requests,
                set_at: 0,
            });
            c
        })
        .collect()
}

fn yuan(f: Fen) -> String {
    format!("{:.0} yuan", f.0 as f64 / 100.0)
}

fn main() {
    let seed: u64 = std::env::var("MATCH_BENCH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_210_922);
    let sizes = std::env::var("MATCH_BENCH_SIZES")
        .unwrap_or_else(|_| "100000x1000,1000000x10000".to_owned());
    // `RUST_LOG=lesson_ledger::matching=debug` shows the time of each step.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let scattered = std::env::var("MATCH_BENCH_SCATTERED").is_ok();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("matching benchmark on {cores} cores, seed {seed}");
    for size in sizes.split(',') {
        let Some((c, p)) = size.split_once('x') else {
            eprintln!("bad size {size:?}: want CLAIMSxPLEDGES");
            continue;
        };
        let (Ok(c), Ok(p)) = (c.parse::<usize>(), p.parse::<usize>()) else {
            eprintln!("bad size {size:?}");
            continue;
        };
        let t0 = Instant::now();
        let (claims, pledges) = generate(c, p, seed, scattered);
        let gen = t0.elapsed();
        let owed: u64 = claims.iter().map(|c| c.unreserved_fen.0).sum();
        println!("--- {c} claims x {p} pledges (generated in {gen:.1?})");
        let plain = run(&claims, &pledges, owed);
        let prefs = with_preferences(&claims, &pledges, seed);
        drop(claims);
        println!("  with families' preferences (same claims and pledges):");
        let chosen = run(&prefs, &pledges, owed);
        println!(
            "  preferences: matched {} -> {} ({:+.2}%), students served {} -> {}",
            yuan(plain.matched_fen),
            yuan(chosen.matched_fen),
            (chosen.matched_fen.0 as f64 / plain.matched_fen.0.max(1) as f64 - 1.0) * 100.0,
            plain.students_served,
            chosen.students_served
        );
    }
}

/// One timed run, its figures printed.
fn run(claims: &[ClaimInput], pledges: &[PledgeInput], owed: u64) -> MatchReport {
    let t1 = Instant::now();
    let m = match match_claims(claims, pledges, &MatchParams::at(NOW)) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("match failed: {e} ({})", e.code());
            std::process::exit(1);
        }
    };
    let took = t1.elapsed();
    let r = m.report;
    println!(
        "time {:.2?} (target <= 30 s); peak RSS {} MiB (VmHWM, process so far; target <= 2048)",
        took,
        measure::peak_rss_kib() / 1024
    );
    println!(
        "owed {}; classes {}; components {}; class-pledge edges {}",
        yuan(Fen(owed)),
        r.classes,
        r.components,
        r.edges
    );
    println!(
        "matched {} / bound {} = {}.{:04}% (target >= 99%); method {:?}",
        yuan(r.matched_fen),
        yuan(r.bound_fen),
        r.ratio_ppm / 10_000,
        r.ratio_ppm % 10_000,
        r.method
    );
    println!(
        "flow after rounding {} -> after fill {}; greedy {}; first-pass flow {}; requested {}",
        yuan(r.rounded_fen),
        yuan(r.flow_fen),
        yuan(r.greedy_fen),
        yuan(r.first_pass_flow_fen),
        yuan(r.requested_fen)
    );
    println!(
        "allocations {}; claims served {} of {}; distinct students served {}; in-district {} online {}",
        r.allocations,
        r.claims_served,
        r.claims,
        r.students_served,
        yuan(r.in_district_fen),
        yuan(r.online_fen)
    );
    r
}
