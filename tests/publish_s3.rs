//! `lesson-ledger publish --to s3://bucket/prefix` (feature `s3`, issue 17) against a
//! real S3-compatible server: moto's `moto_server` on a loopback port, the bucket made
//! readable by anyone with a bucket policy (as one serves a log from a bucket or a CDN),
//! read back over plain HTTP with no code of ours in the read path. `verify --url` on
//! the bucket is the full audit; every object in the bucket is byte for byte what
//! `serve` answers at its path; a second round PUTs only the new objects and the
//! checkpoint last (moto's request recorder sees the order); a publisher SIGKILLed
//! mid-round is finished by the next run.
//!
//! moto is a test dependency outside cargo: `python3 -m pip install 'moto[server]'`
//! (`.ci/run` installs it). Without it these tests fail, saying so; they never skip.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;

use crate::cli::run;
use crate::publish::get;
use crate::support::{
    checkpoint_size, kill_publishers, new_ledger, objects_needed, output_text, post, Served,
    Watched, START_TIMEOUT,
};
use lesson_ledger::log::note::NoteSigner;
use lesson_ledger::publish::plan::{entry_bundles, hash_tiles};

const BUCKET: &str = "ledger-site";
/// The log's prefix in the bucket: one bucket may hold many logs.
const PREFIX: &str = "cities/test";

/// `moto_server` on a loopback port, its log and request recording under `dir`;
/// killed when dropped.
struct Moto {
    child: Child,
    url: String,
    recording: PathBuf,
}

/// `$MOTO_SERVER`, or `moto_server` on the `PATH`. Without it the tests say how to
/// install it and skip, as the nginx tests do, except under CI (`CI` set), where
/// `.ci/run` installs it and its absence is a failure.
fn moto_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("MOTO_SERVER") {
        return Some(PathBuf::from(bin));
    }
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("moto_server"))
        .find(|p| p.is_file());
    let advice = "the s3 publish tests need moto's S3 server and found no `moto_server` on \
                  the PATH: install it with `python3 -m pip install 'moto[server]'` (moto \
                  5.x; .ci/run installs it), or name it with MOTO_SERVER=/path/to/moto_server";
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "{advice}");
        println!("skipped: {advice}");
    }
    found
}

impl Moto {
    fn start(dir: &Path, bin: &Path) -> Moto {
        fs::create_dir_all(dir).expect("moto dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = dir.join("moto.log");
        let recording = dir.join("recording");
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir)
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdout(File::create(&log).expect("moto log"))
            .stderr(File::create(dir.join("moto.err")).expect("moto log"))
            .spawn()
            .expect("spawn moto_server");
        let mut moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
            recording,
        };
        let started = Instant::now();
        while Client::new().get(&moto.url).send().is_err() {
            let said = fs::read_to_string(dir.join("moto.err")).unwrap_or_default();
            if let Some(status) = moto.child.try_wait().expect("poll") {
                panic!("moto_server exited with {status}:\n{said}");
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "moto did not start:\n{said}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    /// Sends a request to moto (unsigned: moto takes them) and checks it succeeded.
    fn call(&self, method: reqwest::Method, path: &str, body: Vec<u8>) -> String {
        let response = Client::new()
            .request(method, format!("{}/{path}", self.url))
            .body(body)
            .send()
            .expect("a request to moto");
        let status = response.status();
        let text = response.text().expect("moto's answer");
        assert!(status.is_success(), "{path}: {status} {text}");
        text
    }

    /// Creates `bucket`, readable (objects and listing) by anyone, as a bucket one
    /// serves a log from is.
    fn create_public_bucket(&self, bucket: &str) {
        self.call(reqwest::Method::PUT, bucket, Vec::new());
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow", "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            }],
        });
        let policy = serde_json::to_vec(&policy).expect("JSON");
        self.call(reqwest::Method::PUT, &format!("{bucket}?policy"), policy);
    }

    /// `http://…/bucket/prefix`: the published log as a web client reads it.
    fn site(&self) -> String {
        format!("{}/{BUCKET}/{PREFIX}", self.url)
    }

    /// Every object under the log's prefix, as a path below it (ListObjectsV2, anonymous).
    fn keys(&self) -> Vec<String> {
        let path = format!("{BUCKET}?list-type=2&prefix={PREFIX}/");
        let xml = self.call(reqwest::Method::GET, &path, Vec::new());
        assert!(xml.contains("<IsTruncated>false</IsTruncated>"), "{xml}");
        let mut keys: Vec<String> = xml
            .split("<Key>")
            .skip(1)
            .map(|rest| rest.split("</Key>").next().expect("</Key>"))
            .map(|key| {
                key.strip_prefix(&format!("{PREFIX}/"))
                    .expect("below the prefix")
            })
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    /// Starts moto's request recorder afresh.
    fn record(&self) {
        self.call(
            reqwest::Method::POST,
            "moto-api/recorder/reset-recording",
            Vec::new(),
        );
        self.call(
            reqwest::Method::POST,
            "moto-api/recorder/start-recording",
            Vec::new(),
        );
    }

    /// Stops the recorder: the paths below the log's prefix PUT since [`Moto::record`],
    /// in the order moto received them.
    fn recorded_puts(&self) -> Vec<String> {
        self.call(
            reqwest::Method::POST,
            "moto-api/recorder/stop-recording",
            Vec::new(),
        );
        let below = format!("{}/{BUCKET}/{PREFIX}/", self.url);
        let recording = fs::read_to_string(&self.recording).expect("moto's recording");
        // A stream of JSON values, not lines: moto's threads append each request's
        // record and its newline in two writes, which may interleave.
        serde_json::Deserializer::from_str(&recording)
            .into_iter::<serde_json::Value>()
            .map(|request| request.expect("a recorded request"))
            .filter(|request| request["method"] == "PUT")
            .filter_map(|request| {
                let url = request["url"].as_str().expect("a URL");
                url.strip_prefix(&below).map(str::to_owned)
            })
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `publish --from FROM --to s3://BUCKET/PREFIX`, the client pointed at moto by the
/// `AWS_*` environment as a user would (synthetic credentials: moto checks none).
fn publish_cmd(from: &str, moto: &Moto) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lesson-ledger"));
    cmd.args(["publish", "--from", from])
        .args(["--to", &format!("s3://{BUCKET}/{PREFIX}")])
        .env("AWS_ENDPOINT", &moto.url)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test-publisher")
        .env("AWS_SECRET_ACCESS_KEY", "test-publisher-secret")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE");
    cmd
}

fn publish(from: &str, moto: &Moto) -> Output {
    let out = publish_cmd(from, moto).output().expect("run publish");
    assert!(out.status.success(), "publish: {}", output_text(&out));
    out
}

/// The size of the checkpoint in the bucket, read anonymously (none before the first).
fn published_size(moto: &Moto) -> Option<u64> {
    let (status, body) = get(&format!("{}/checkpoint", moto.site()));
    (status == 200).then(|| checkpoint_size(&body))
}

/// The bucket holds every object its checkpoint commits to.
fn assert_complete(moto: &Moto) {
    let Some(size) = published_size(moto) else {
        return;
    };
    let keys = moto.keys();
    for path in objects_needed(size) {
        assert!(keys.contains(&path), "checkpoint of {size} without {path}");
    }
}

/// Every object in the bucket is, read anonymously, byte for byte what `serve` answers.
fn assert_bucket_is_what_serve_serves(moto: &Moto, serve: &str) -> Vec<String> {
    let keys = moto.keys();
    for key in &keys {
        let (from_bucket, body) = get(&format!("{}/{key}", moto.site()));
        let (from_serve, served) = get(&format!("{serve}/{key}"));
        assert_eq!((from_bucket, from_serve), (200, 200), "{key}");
        assert!(body == served, "{key}: the bucket and serve differ");
    }
    keys
}

/// What publishing from `from` to `to` PUTs: the new tiles and bundles, the documents
/// of the new size, and the checkpoint.
fn objects_of_round(from: u64, to: u64) -> Vec<String> {
    let tiles = hash_tiles(from, to)
        .into_iter()
        .chain(entry_bundles(from, to));
    let mut paths: Vec<String> = tiles.map(|t| t.to_path()).collect();
    paths.extend([format!("v1/state-notes/{to}"), "v1/pool".into()]);
    paths.extend(["v1/log".into(), "checkpoint".into()]);
    paths.sort();
    paths
}

/// The objects count `publish` printed ("published N entries (+D, K objects) …").
fn objects_said(out: &Output) -> usize {
    let said = String::from_utf8_lossy(&out.stdout);
    let count = said
        .split(", ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok());
    count.unwrap_or_else(|| panic!("no object count in {said}"))
}

/// Round two after 700 more entries: only the new objects are PUT (as many as publish
/// says), the checkpoint last; of what the bucket held, only the documents replaced.
fn assert_second_round_incremental(moto: &Moto, served: &Served, operator: &NoteSigner) {
    let before = moto.keys();
    post(&served.url, operator, 300..1000);
    moto.record();
    let out = publish(&served.url, moto);
    let puts = moto.recorded_puts();
    assert_eq!(
        puts.last().map(String::as_str),
        Some("checkpoint"),
        "{puts:?}"
    );
    assert_eq!(puts.len(), objects_said(&out), "{puts:?}");
    let mut sorted = puts.clone();
    sorted.sort();
    assert_eq!(sorted, objects_of_round(301, 1001));
    let replaced: Vec<&String> = sorted.iter().filter(|p| before.contains(p)).collect();
    assert_eq!(replaced, ["checkpoint", "v1/log", "v1/pool"]);
}

#[test]
fn a_log_published_to_s3_verifies_from_the_bucket_and_is_byte_for_byte_what_serve_serves() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(bin) = moto_binary() else { return };
    let moto = Moto::start(&tmp.path().join("moto"), &bin);
    moto.create_public_bucket(BUCKET);
    let (data, operator) = new_ledger(tmp.path(), "ledger");
    let served = Served::start(&data);
    post(&served.url, &operator, 0..300);
    publish(&served.url, &moto);
    assert_eq!(published_size(&moto), Some(301));
    assert_second_round_incremental(&moto, &served, &operator);
    // Growing inside one level-1 node: the root still needs the level-1 partial tile.
    post(&served.url, &operator, 1000..1010);
    publish(&served.url, &moto);
    assert_eq!(published_size(&moto), Some(1011));
    assert_complete(&moto);

    let audit = run(&["verify", "--url", &moto.site()]);
    assert!(
        audit.status.success(),
        "verify --url: {}",
        output_text(&audit)
    );
    let said = String::from_utf8_lossy(&audit.stdout);
    assert!(
        said.contains("ok: 1011 entries") && said.contains("state note of size 1011"),
        "{said}"
    );
    let keys = assert_bucket_is_what_serve_serves(&moto, &served.url);
    assert!(
        keys.iter().any(|k| k.starts_with("tile/entries/003.p/")),
        "{keys:?}"
    );
    for published in ["v1/log", "v1/pool", "checkpoint", "v1/state-notes/1011"] {
        assert!(
            keys.contains(&published.to_owned()),
            "{published}: {keys:?}"
        );
    }
    assert_served_with_serve_headers(&moto);
}

/// The bucket answers the checkpoint and a full tile with the `Content-Type` and
/// `Cache-Control` they were PUT with: what `serve` answers (a CDN in front of the
/// bucket never holds back a new checkpoint, and keeps full tiles for good).
fn assert_served_with_serve_headers(moto: &Moto) {
    for (path, content_type, cache) in [
        ("checkpoint", "text/plain; charset=utf-8", "no-cache"),
        ("v1/log", "application/json", "no-cache"),
        (
            "tile/0/000",
            "application/octet-stream",
            "public, max-age=31536000, immutable",
        ),
    ] {
        let response = Client::new()
            .get(format!("{}/{path}", moto.site()))
            .send()
            .expect("GET");
        let header = |name: &str| {
            let value = response
                .headers()
                .get(name)
                .map(|v| v.to_str().expect("ascii"));
            value.map(str::to_owned)
        };
        assert_eq!(
            header("content-type").as_deref(),
            Some(content_type),
            "{path}"
        );
        assert_eq!(header("cache-control").as_deref(), Some(cache), "{path}");
    }
}

#[test]
fn a_publish_to_s3_killed_mid_round_is_finished_by_the_next_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(bin) = moto_binary() else { return };
    let moto = Moto::start(&tmp.path().join("moto"), &bin);
    moto.create_public_bucket(BUCKET);
    let (data, operator) = new_ledger(tmp.path(), "ledger");
    let served = Served::start(&data);
    post(&served.url, &operator, 0..6000);
    let dest = Watched {
        state: &|| (published_size(&moto), moto.keys().len()),
        assert_complete: &|| assert_complete(&moto),
    };
    let publish_once = || publish_cmd(&served.url, &moto);
    // Each round's PUTs are slower than file writes: larger steps.
    let next = kill_publishers(&publish_once, &dest, &served.url, &operator, 6000, 40);
    publish(&served.url, &moto);
    assert_eq!(published_size(&moto), Some(next + 1));
    assert_complete(&moto);
    let audit = run(&["verify", "--url", &moto.site()]);
    assert!(
        audit.status.success(),
        "verify --url: {}",
        output_text(&audit)
    );
    assert_bucket_is_what_serve_serves(&moto, &served.url);
}
