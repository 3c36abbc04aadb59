//! What one anonymous client can cost an association's witness (issue 14): it is
//! served by the ledger's own hardened connection loop (`lesson_ledger::net`), so a
//! slowloris client is cut off and more connections than the cap never starve a log's
//! `add-checkpoint`. Real sockets, a real ledger, real signatures.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::note::{NoteSigner, Origin};
use lesson_ledger::net::ConnectionLimits;
use lesson_ledger::witness::protocol::AddCheckpoint;
use lesson_ledger::witness::{TrustedLog, Witness, WitnessServer};

use crate::http::{ledger_with_genesis, ORIGIN};
use crate::support::{closed_by_server, half_sent, test_association};

/// A witness of the test association for the test log, under `limits`.
fn witness_with(limits: ConnectionLimits) -> (tempfile::TempDir, Ledger, WitnessServer) {
    let tmp = tempfile::tempdir().unwrap();
    let (ledger, operator): (Ledger, NoteSigner) = ledger_with_genesis(&tmp.path().join("data"));
    let log = TrustedLog::new(Origin::new(ORIGIN).unwrap(), vec![operator.verifier()]);
    let witness = Witness::open(&tmp.path().join("witness"), test_association(), vec![log])
        .expect("open witness");
    let server = WitnessServer::start_with(witness, "127.0.0.1:0".parse().unwrap(), limits)
        .expect("start witness");
    (tmp, ledger, server)
}

fn limits(header_timeout: Duration, connections_max: usize) -> ConnectionLimits {
    ConnectionLimits {
        header_timeout,
        connections_max,
        ..ConnectionLimits::default()
    }
}

/// The raw HTTP/1.1 `add-checkpoint` request for the ledger's checkpoint, from size 0.
fn add_checkpoint_request(ledger: &Ledger) -> Vec<u8> {
    let body = AddCheckpoint {
        old_size: 0,
        proof: Vec::new(),
        checkpoint: ledger.log().checkpoint().text().into_bytes(),
    }
    .to_body();
    let mut request = format!(
        "POST /add-checkpoint HTTP/1.1\r\nhost: witness\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend(body);
    request
}

/// The start of a request, never finished.
const HALF_SENT_REQUEST: &[u8] = b"POST /add-checkpoint HTTP/1.1\r\nhost: x\r\nx-slow:";

#[test]
fn a_client_sending_its_headers_one_byte_a_second_is_cut_off() {
    let (_tmp, _ledger, witness) = witness_with(limits(Duration::from_secs(2), 8));
    let mut stream = TcpStream::connect(witness.addr()).expect("connect");
    let started = Instant::now();
    let request = b"POST /add-checkpoint HTTP/1.1\r\nhost: witness\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    // Each byte on its own, a second apart: every write is progress, none completes
    // the headers in time. Bounded: the server must have hung up long before the end.
    let mut cut_off = false;
    for byte in request {
        if stream.write_all(std::slice::from_ref(byte)).is_err() {
            cut_off = true;
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
        if started.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    let elapsed = started.elapsed();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(
        cut_off || closed_by_server(stream),
        "a client trickling its headers is still connected after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn connections_beyond_the_cap_wait_and_a_well_behaved_add_checkpoint_still_succeeds() {
    let header_timeout = Duration::from_secs(3);
    let (_tmp, ledger, witness) = witness_with(limits(header_timeout, 4));
    let slow: Vec<TcpStream> = (0..12)
        .map(|_| half_sent(witness.addr(), HALF_SENT_REQUEST))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Every slot is held by a slow client: the log's request is not served yet...
    let started = Instant::now();
    let mut log = TcpStream::connect(witness.addr()).expect("connect");
    log.write_all(&add_checkpoint_request(&ledger)).unwrap();
    log.set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    let mut first = [0u8; 1];
    assert!(
        log.read(&mut first).is_err(),
        "a fifth connection was served while the cap of 4 was taken"
    );
    // ...and is once the slow ones are cut off at the header timeout.
    log.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = Vec::new();
    log.read_to_end(&mut answer).expect("the witness answers");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("\n— assoc-01 "),
        "no cosignature line: {answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    for stream in slow {
        assert!(closed_by_server(stream), "a slow client still holds a slot");
    }
}
