//! The canonical binary leaf (`Leaf::decode`) and its header peek, as the auditor and
//! the store read `log.dat`. Never panics; a decoded leaf encodes back to exactly the
//! input ("refuses anything that encode would not produce byte for byte"), and the peek
//! agrees with the full decode.
#![no_main]

use lesson_ledger::log::leaf::{peek_index_time, Leaf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let peeked = peek_index_time(data);
    let Ok(leaf) = Leaf::decode(data) else {
        return;
    };
    assert_eq!(
        leaf.encode().expect("a decoded leaf encodes"),
        data,
        "decode accepts only canonical bytes"
    );
    assert_eq!(
        peeked,
        Ok((leaf.index, leaf.time_micros)),
        "peek agrees with decode"
    );
});
