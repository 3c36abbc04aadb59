//! `lesson-ledger national` (issue 17, "Many cities"): three real city ledgers (the
//! tiny demo, each with its own operator key), each published from its data directory
//! with `publish --data` into one root that Debian's nginx serves; the national view
//! reads every city from nginx, verifies its checkpoint, state note and pool proof, and
//! its totals are the sums of what each city's own `serve` answers at `/v1/pool`. A
//! city whose published pool is altered by one fen, or whose checkpoint is signed by
//! another key, or that cannot be reached, is reported with its code and left out.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use lesson_ledger::demo::{self, DemoConfig, Scale};
use lesson_ledger::log::store::read_config;
use serde_json::Value;

use crate::publish::{get, nginx_binary, publish_data, Nginx};
use crate::support::{output_text, path_arg, Served};

const CITIES: [&str; 3] = ["city-a", "city-b", "city-c"];

/// Three tiny demo ledgers and their published trees under one root.
struct Cities {
    _tmp: tempfile::TempDir,
    /// `ledger` directories, by city.
    ledgers: Vec<PathBuf>,
    /// Files holding each city's operator verifier key.
    keys: Vec<PathBuf>,
    /// The root nginx serves: `root/<city>/` is each city's published tree.
    root: PathBuf,
}

/// Built once for the tests of this module (three demos take a while).
fn cities() -> &'static Cities {
    static CITIES_BUILT: OnceLock<Cities> = OnceLock::new();
    CITIES_BUILT.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("tmp");
        let runs: Vec<_> = CITIES
            .iter()
            .zip(11u64..)
            .map(|(city, seed)| {
                let data = tmp.path().join(city);
                std::thread::spawn(move || {
                    let config = DemoConfig {
                        data: data.clone(),
                        scale: Scale::Tiny,
                        seed,
                        keep_serving: false,
                    };
                    demo::run(&config).expect("the tiny demo runs");
                    data.join("ledger")
                })
            })
            .collect();
        let ledgers: Vec<PathBuf> = runs.into_iter().map(|r| r.join().expect("demo")).collect();
        let root = tmp.path().join("www");
        let mut keys = Vec::new();
        for (city, ledger) in CITIES.iter().zip(&ledgers) {
            let work = tmp.path().join(format!("{city}.work"));
            let out = publish_data(ledger, &work, &root.join(city));
            assert!(
                out.status.success(),
                "publish --data {city}: {}",
                output_text(&out)
            );
            let key = tmp.path().join(format!("{city}.pub"));
            let vkey = read_config(ledger).expect("log.json").operator_vkey;
            fs::write(&key, format!("{vkey}\n")).expect("key file");
            keys.push(key);
        }
        Cities {
            _tmp: tmp,
            ledgers,
            keys,
            root,
        }
    })
}

fn run_national(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lesson-ledger"))
        .arg("national")
        .args(args)
        .output()
        .expect("run national")
}

/// `--city NAME=URL/NAME=KEYFILE` for every city, served from `base`.
fn city_args(base: &str, keys: &[PathBuf]) -> Vec<String> {
    CITIES
        .iter()
        .zip(keys)
        .flat_map(|(city, key)| {
            [
                "--city".into(),
                format!("{city}={base}/{city}={}", path_arg(key)),
            ]
        })
        .collect()
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", output_text(out)))
}

fn city<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["cities"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in {report}"))
}

const POOL: [(&str, &str); 4] = [
    ("pledged", "pledged"),
    ("available", "available"),
    ("reserved", "reserved"),
    ("delivered", "delivered"),
];
const CLAIMS: [(&str, &str); 5] = [
    ("count", "claims"),
    ("value", "claims_value"),
    ("unreserved", "claims_unreserved"),
    ("reserved", "claims_reserved"),
    ("consumed", "claims_consumed"),
];

/// Copies a published tree (`cp -a`): a test alters its own copy only.
fn copy_tree(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .args(["-a", path_arg(from), path_arg(to)])
        .output()
        .expect("cp");
    assert!(out.status.success(), "cp: {}", output_text(&out));
}

#[test]
fn the_national_totals_are_the_sums_of_each_citys_pool_as_its_own_serve_answers_it() {
    let Some(bin) = nginx_binary() else {
        println!("skipped: no nginx binary (.ci/run installs Debian's nginx)");
        return;
    };
    let cities = cities();
    let tmp = tempfile::tempdir().expect("tmp");
    let nginx = Nginx::start(&bin, &cities.root, &tmp.path().join("nginx"));
    let mut args = city_args(&nginx.url, &cities.keys);
    args.push("--json".into());
    let out = run_national(&args);
    assert!(out.status.success(), "national: {}", output_text(&out));
    let report = report(&out);
    let mut sums = [0u64; 9];
    for (name, ledger) in CITIES.iter().zip(&cities.ledgers) {
        let line = city(&report, name);
        assert_eq!(line["verified"], true, "{line}");
        let served = Served::start(ledger);
        let (status, body) = get(&format!("{}/v1/pool", served.url));
        assert_eq!(status, 200);
        let pool: Value = serde_json::from_slice(&body).expect("pool JSON");
        let object = &pool["pool"]["object"];
        let figures = &line["figures"];
        let fields = POOL
            .iter()
            .map(|(ours, its)| (&figures["pool"][ours], &object[its]))
            .chain(
                CLAIMS
                    .iter()
                    .map(|(ours, its)| (&figures["claims"][ours], &object[its])),
            );
        for (i, (ours, its)) in fields.enumerate() {
            assert_eq!(ours, its, "{name}: {figures} vs {object}");
            sums[i] += its.as_u64().expect("a figure");
        }
        assert!(object["claims_value"].as_u64() > Some(0), "{object}");
    }
    let national = &report["national"]["figures"];
    let totals: Vec<u64> = POOL
        .iter()
        .map(|(ours, _)| &national["pool"][ours])
        .chain(CLAIMS.iter().map(|(ours, _)| &national["claims"][ours]))
        .map(|v| v.as_u64().expect("a total"))
        .collect();
    assert_eq!(totals, sums);
    assert_eq!(report["national"]["cities_verified"], 3);
    assert_eq!(report["national"]["cities_failed"], 0);
    // The table says the same.
    let table = run_national(&city_args(&nginx.url, &cities.keys));
    let said = String::from_utf8_lossy(&table.stdout);
    assert!(
        said.contains("NATIONAL") && said.contains("3 cities verified, 0 failed"),
        "{said}"
    );
}

#[test]
fn a_city_altered_by_one_fen_signed_by_another_key_or_unreachable_is_reported_and_left_out() {
    let Some(bin) = nginx_binary() else {
        println!("skipped: no nginx binary (.ci/run installs Debian's nginx)");
        return;
    };
    let cities = cities();
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("www");
    copy_tree(&cities.root, &root);
    // city-b's published pool: one fen moved into `available`, the JSON still well formed.
    let pool_path = root.join("city-b/v1/pool");
    let mut pool: Value =
        serde_json::from_slice(&fs::read(&pool_path).expect("pool")).expect("JSON");
    let available = pool["pool"]["object"]["available"]
        .as_u64()
        .expect("available");
    pool["pool"]["object"]["available"] = Value::from(available + 1);
    fs::write(&pool_path, serde_json::to_vec(&pool).expect("JSON")).expect("write");
    // city-c's tree replaced by city-a's: its checkpoint signed by another operator key.
    fs::remove_dir_all(root.join("city-c")).expect("rm");
    copy_tree(&root.join("city-a"), &root.join("city-c"));
    let nginx = Nginx::start(&bin, &root, &tmp.path().join("nginx"));
    let mut args = city_args(&nginx.url, &cities.keys);
    // A fourth city nobody answers for (a port just closed).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port");
    args.extend([
        "--city".into(),
        format!("city-d=http://{closed}={}", path_arg(&cities.keys[0])),
    ]);
    args.push("--json".into());
    let out = run_national(&args);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let report = report(&out);
    for (name, code) in [
        ("city-b", "proof_value_mismatch"),
        ("city-c", "checkpoint_unverified"),
        ("city-d", "city_unreachable"),
    ] {
        let line = city(&report, name);
        assert_eq!(line["verified"], false, "{line}");
        assert_eq!(line["error"]["code"], code, "{line}");
        assert!(line.get("figures").is_none(), "{line}");
    }
    // The totals are city-a's alone: nothing unproven was added.
    let a = &city(&report, "city-a")["figures"];
    assert_eq!(city(&report, "city-a")["verified"], true);
    let national = &report["national"];
    assert_eq!(national["cities_verified"], 1);
    assert_eq!(national["cities_failed"], 3);
    assert_eq!(national["figures"]["pool"], a["pool"]);
    assert_eq!(national["figures"]["claims"], a["claims"]);
}
