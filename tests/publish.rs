//! `lesson-ledger publish` (issue 17): the log's read side written as static tlog tiles
//! that a stock web server serves. A real `serve` on loopback, a real `publish` process,
//! Debian's nginx serving the published directory with a config of its own; `verify
//! --url` against nginx is the same audit as against `serve` (every entry, signature,
//! root, the rules replayed and the state note's root compared), and every published
//! object nginx serves is byte for byte what `serve` answers at that path. A publisher
//! killed mid-run is finished by the next run, a source that rewrote what was published
//! is refused, and a full tile already published is never replaced.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::json;

use crate::cli::run;
use crate::support::{
    checkpoint_size, kill_publishers, new_ledger, objects_needed, operator_of, output_text,
    path_arg, post, Served, Watched, TEST_ORIGIN,
};

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Debian's nginx serving `root` on a loopback port, as this user, with its config,
/// pid file, logs and temporary paths under `dir`; stopped when dropped.
pub(crate) struct Nginx {
    child: Child,
    pub(crate) url: String,
}

/// The nginx binary, if installed (`.ci/run` installs Debian's `nginx`).
pub(crate) fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl Nginx {
    pub(crate) fn start(bin: &Path, root: &Path, dir: &Path) -> Nginx {
        fs::create_dir_all(dir).expect("nginx dir");
        // Run as root (CI), nginx's workers are `nobody`: they must reach the tree.
        for d in [root, dir, dir.parent().expect("a parent")] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let d = path_arg(dir);
        let conf = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               default_type application/octet-stream;\n\
               server {{\n    listen 127.0.0.1:{port};\n    root {root};\n\
                 location = /checkpoint {{ default_type \"text/plain; charset=utf-8\"; add_header Cache-Control no-cache; }}\n\
                 location /v1/state-notes/ {{ default_type \"text/plain; charset=utf-8\"; }}\n\
                 location = /v1/log {{ default_type application/json; add_header Cache-Control no-cache; }}\n\
                 location = /v1/pool {{ default_type application/json; add_header Cache-Control no-cache; }}\n\
               }}\n}}\n",
            root = path_arg(root)
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).expect("nginx.conf");
        let child = Command::new(bin)
            .args([
                "-e",
                &format!("{d}/error.log"),
                "-p",
                d,
                "-c",
                path_arg(&conf_path),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let nginx = Nginx {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while Client::new()
            .get(format!("{}/v1/log", nginx.url))
            .send()
            .is_err()
        {
            let log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            assert!(
                started.elapsed() < START_TIMEOUT,
                "nginx did not start:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn publish_cmd(from: &str, to: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lesson-ledger"));
    cmd.args([
        "publish",
        "--from",
        from,
        "--to",
        &format!("file://{}", path_arg(to)),
    ]);
    cmd
}

/// `publish --data DATA --work WORK --to file://TO`.
pub(crate) fn publish_data(data: &Path, work: &Path, to: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lesson-ledger"))
        .args([
            "publish",
            "--data",
            path_arg(data),
            "--work",
            path_arg(work),
        ])
        .args(["--to", &format!("file://{}", path_arg(to))])
        .output()
        .expect("run publish --data")
}

fn publish(from: &str, to: &Path) -> Output {
    publish_cmd(from, to).output().expect("run publish")
}

/// The size the published checkpoint names (none if there is no checkpoint yet).
fn published_size(root: &Path) -> Option<u64> {
    let bytes = fs::read(root.join("checkpoint")).ok()?;
    Some(checkpoint_size(&bytes))
}

/// Every file of the published tree, as a path below its root.
fn published_files(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.file_name().is_some_and(|n| n == ".publish-tmp") {
                continue;
            }
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                let rel = path.strip_prefix(root).expect("below root");
                out.push(path_arg(rel).to_owned());
            }
        }
    }
    let mut out = Vec::new();
    if root.is_dir() {
        walk(root, root, &mut out);
    }
    out.sort();
    out
}

pub(crate) fn get(url: &str) -> (u16, Vec<u8>) {
    let response = Client::new().get(url).send().expect("GET");
    let status = response.status().as_u16();
    (status, response.bytes().expect("body").to_vec())
}

/// `verify --url` (the remote audit, rules replayed, state note root compared).
fn verify_url(url: &str) -> Output {
    run(&["verify", "--url", url])
}

/// The published tree holds every tile and bundle its checkpoint needs.
fn assert_complete(root: &Path) {
    let Some(size) = published_size(root) else {
        return;
    };
    for path in objects_needed(size) {
        assert!(
            root.join(&path).is_file(),
            "checkpoint of {size} without {path}"
        );
    }
}

#[test]
fn a_log_published_and_served_by_nginx_verifies_and_is_byte_for_byte_what_serve_serves() {
    let Some(bin) = nginx_binary() else {
        println!("skipped: no nginx binary (.ci/run installs Debian's nginx)");
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let (data, operator) = new_ledger(tmp.path(), "ledger");
    let served = Served::start(&data);
    let site = tmp.path().join("site");
    post(&served.url, &operator, 0..300);
    let out = publish(&served.url, &site);
    assert!(out.status.success(), "publish: {}", output_text(&out));
    // Incremental: the second run writes from 301 on, the tile that was partial full.
    post(&served.url, &operator, 300..700);
    post(&served.url, &operator, 700..1000);
    let out = publish(&served.url, &site);
    assert!(out.status.success(), "publish: {}", output_text(&out));
    assert_eq!(published_size(&site), Some(1001));
    // Growing inside one level-1 node: the root still needs the level-1 partial tile.
    post(&served.url, &operator, 1000..1010);
    let out = publish(&served.url, &site);
    assert!(out.status.success(), "publish: {}", output_text(&out));
    assert_eq!(published_size(&site), Some(1011));
    assert_complete(&site);

    let nginx = Nginx::start(&bin, &site, &tmp.path().join("nginx"));
    let audit = verify_url(&nginx.url);
    assert!(
        audit.status.success(),
        "verify --url nginx: {}",
        output_text(&audit)
    );
    let said = String::from_utf8_lossy(&audit.stdout);
    assert!(
        said.contains("ok: 1011 entries") && said.contains("state note of size 1011"),
        "{said}"
    );
    let files = published_files(&site);
    assert!(
        files.iter().any(|f| f.starts_with("tile/entries/003.p/")),
        "{files:?}"
    );
    for published in ["v1/log", "v1/pool", "checkpoint", "v1/state-notes/1011"] {
        assert!(
            files.contains(&published.to_owned()),
            "{published}: {files:?}"
        );
    }
    let pool: serde_json::Value =
        serde_json::from_slice(&fs::read(site.join("v1/pool")).expect("v1/pool")).expect("JSON");
    assert_eq!(
        pool["checkpoint"].as_str().map(str::as_bytes),
        Some(&fs::read(site.join("checkpoint")).expect("checkpoint")[..]),
        "the pool is proven against the checkpoint published"
    );
    for file in &files {
        let (from_nginx, body) = get(&format!("{}/{file}", nginx.url));
        let (from_serve, served_body) = get(&format!("{}/{file}", served.url));
        assert_eq!((from_nginx, from_serve), (200, 200), "{file}");
        assert!(body == served_body, "{file}: nginx and serve differ");
        assert_eq!(body, fs::read(site.join(file)).expect("file"), "{file}");
    }
}

#[test]
fn a_publish_killed_mid_run_is_finished_by_the_next_run_and_the_tree_verifies() {
    let Some(bin) = nginx_binary() else {
        println!("skipped: no nginx binary (.ci/run installs Debian's nginx)");
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let (data, operator) = new_ledger(tmp.path(), "ledger");
    let served = Served::start(&data);
    let site = tmp.path().join("site");
    post(&served.url, &operator, 0..6000);
    let dest = Watched {
        state: &|| (published_size(&site), published_files(&site).len()),
        assert_complete: &|| assert_complete(&site),
    };
    let publish_once = || publish_cmd(&served.url, &site);
    let next = kill_publishers(&publish_once, &dest, &served.url, &operator, 6000, 10);
    let out = publish(&served.url, &site);
    assert!(out.status.success(), "the rerun: {}", output_text(&out));
    assert_eq!(published_size(&site), Some(next + 1));
    assert_complete(&site);
    let nginx = Nginx::start(&bin, &site, &tmp.path().join("nginx"));
    let audit = verify_url(&nginx.url);
    assert!(
        audit.status.success(),
        "verify --url nginx: {}",
        output_text(&audit)
    );
}

#[test]
fn a_source_whose_log_does_not_extend_what_was_published_is_never_published_over_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let site = tmp.path().join("site");
    let (data, operator) = new_ledger(tmp.path(), "first");
    {
        let served = Served::start(&data);
        post(&served.url, &operator, 0..100);
        let out = publish(&served.url, &site);
        assert!(out.status.success(), "publish: {}", output_text(&out));
    }
    let published = fs::read(site.join("checkpoint")).expect("checkpoint");
    // Another history under the same origin, longer than the one published.
    let (other, other_operator) = new_ledger(tmp.path(), "fork");
    let served = Served::start(&other);
    post(&served.url, &other_operator, 1000..1300);
    let out = publish(&served.url, &site);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("history_rewritten"),
        "{}",
        output_text(&out)
    );
    assert_eq!(
        fs::read(site.join("checkpoint")).expect("checkpoint"),
        published
    );
}

#[test]
fn a_full_bundle_already_published_with_other_bytes_is_never_replaced() {
    let tmp = tempfile::tempdir().expect("tmp");
    let site = tmp.path().join("site");
    let (data, operator) = new_ledger(tmp.path(), "ledger");
    let served = Served::start(&data);
    post(&served.url, &operator, 0..100);
    let out = publish(&served.url, &site);
    assert!(out.status.success(), "publish: {}", output_text(&out));
    // As a run of another history killed before its checkpoint would have left it.
    let planted = site.join("tile/entries/001");
    fs::create_dir_all(planted.parent().expect("dir")).expect("dir");
    fs::write(&planted, [0u8, 1, 7]).expect("plant");
    post(&served.url, &operator, 100..600);
    let out = publish(&served.url, &site);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("immutable_object_differs"),
        "{}",
        output_text(&out)
    );
    assert_eq!(published_size(&site), Some(101));
    assert_eq!(fs::read(&planted).expect("planted"), [0u8, 1, 7]);
}

/// Every published file, fetched from `url`, is byte for byte the file.
fn assert_served_as_published(site: &Path, url: &str) {
    for file in &published_files(site) {
        let (status, body) = get(&format!("{url}/{file}"));
        assert_eq!(status, 200, "{file}");
        assert!(
            body == fs::read(site.join(file)).expect("file"),
            "{file}: serve answers other bytes"
        );
    }
}

#[test]
fn a_ledger_published_from_its_data_directory_while_serve_writes_is_what_serve_serves() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (data, operator) = new_ledger(tmp.path(), "ledger");
    let served = Served::start(&data);
    let (site, work) = (tmp.path().join("site"), tmp.path().join("work"));
    post(&served.url, &operator, 0..200);
    // A writer keeps appending (each POST acknowledged) while publications run on its
    // directory: they never block it, and each publishes a prefix it acknowledged.
    let writer = {
        let (url, operator) = (served.url.clone(), operator_of(&data));
        std::thread::spawn(move || {
            for n in (200..2200).step_by(100) {
                post(&url, &operator, n..n + 100);
            }
        })
    };
    let mut sizes = Vec::new();
    while !writer.is_finished() && sizes.len() < 50 {
        let out = publish_data(&data, &work, &site);
        assert!(
            out.status.success(),
            "publish --data: {}",
            output_text(&out)
        );
        assert_complete(&site);
        sizes.push(published_size(&site).expect("a checkpoint"));
    }
    writer.join().expect("the writer");
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
    let out = publish_data(&data, &work, &site);
    assert!(
        out.status.success(),
        "publish --data: {}",
        output_text(&out)
    );
    assert_eq!(published_size(&site), Some(2201), "{sizes:?}");
    // The writer is unharmed: it still appends, and what was published is what it serves.
    assert_served_as_published(&site, &served.url);
    post(&served.url, &operator, 2200..2210);
    let out = publish_data(&data, &work, &site);
    assert!(
        out.status.success(),
        "publish --data: {}",
        output_text(&out)
    );
    assert_eq!(published_size(&site), Some(2211));
    assert_served_as_published(&site, &served.url);
}

/// Issue 17 (mirror2): a later `verify --url --state` against a static tree asked the
/// server for a consistency proof that a web server cannot give; the consistency is now
/// computed from the entries served, so the audit goes on run after run.
#[test]
fn verify_url_with_a_state_file_follows_a_published_tree_served_by_nginx_as_it_grows() {
    let Some(bin) = nginx_binary() else {
        println!("skipped: no nginx binary (.ci/run installs Debian's nginx)");
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let (data, operator) = new_ledger(tmp.path(), "ledger");
    let served = Served::start(&data);
    let site = tmp.path().join("site");
    let state = tmp.path().join("audit-state.json");
    post(&served.url, &operator, 0..300);
    let out = publish(&served.url, &site);
    assert!(out.status.success(), "publish: {}", output_text(&out));
    let nginx = Nginx::start(&bin, &site, &tmp.path().join("nginx"));
    let verify = || run(&["verify", "--url", &nginx.url, "--state", path_arg(&state)]);
    let first = verify();
    assert!(
        first.status.success(),
        "first audit: {}",
        output_text(&first)
    );

    post(&served.url, &operator, 300..420);
    let out = publish(&served.url, &site);
    assert!(out.status.success(), "publish: {}", output_text(&out));
    assert_eq!(published_size(&site), Some(421));
    let second = verify();
    assert!(
        second.status.success(),
        "second audit: {}",
        output_text(&second)
    );
    let said = String::from_utf8_lossy(&second.stdout);
    assert!(
        said.contains("ok: 421 entries")
            && said.contains("consistent with the checkpoint of size 301 verified before"),
        "the second audit is consistent with the first (size 301): {said}"
    );
}

/// A source whose checkpoint names another log than its own `/v1/log` does is refused
/// with a code of its own (it was once reported as `origin_changed`, naming a
/// destination that held nothing), and nothing is published.
#[test]
fn a_source_whose_checkpoint_and_log_disagree_on_the_origin_is_never_published() {
    let Some(bin) = nginx_binary() else {
        println!("skipped: no nginx binary (.ci/run installs Debian's nginx)");
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let (data, operator) = new_ledger(tmp.path(), "ledger");
    let served = Served::start(&data);
    post(&served.url, &operator, 0..20);
    let first = tmp.path().join("first");
    let out = publish(&served.url, &first);
    assert!(out.status.success(), "publish: {}", output_text(&out));
    // The published tree, its /v1/log naming another log.
    let log_path = first.join("v1/log");
    let mut log: serde_json::Value =
        serde_json::from_slice(&fs::read(&log_path).expect("v1/log")).expect("json");
    assert_eq!(log["origin"], TEST_ORIGIN);
    log["origin"] = json!("another.example/log");
    fs::write(&log_path, serde_json::to_vec(&log).expect("json")).expect("edit");
    let nginx = Nginx::start(&bin, &first, &tmp.path().join("nginx"));
    let second = tmp.path().join("second");
    let out = publish(&nginx.url, &second);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("source_origin_mismatch"),
        "{}",
        output_text(&out)
    );
    assert_eq!(published_size(&second), None);
}
