//! The `--proc-root` fact readers (sysctls, sockstat, netstat, snmp) over any text: no panic,
//! values that hold what their file means, errors as one printable line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tw::source::facts::{parse_file, Parsed, CAPTURE_FILES};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the file; the rest is its text.
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let facts: Vec<&str> = CAPTURE_FILES
        .iter()
        .copied()
        .filter(|r| !r.starts_with("net/tcp"))
        .collect();
    let rel = facts[usize::from(pick) % facts.len()];
    let text = String::from_utf8_lossy(text);
    let parsed = parse_file(rel, &text).expect("every capture file but the tables is a fact");
    match parsed {
        Ok(Parsed::Range(r)) => assert!(r.lo <= r.hi, "{rel}: {r:?}"),
        Ok(Parsed::Ports(list)) => {
            for r in list {
                assert!(r.lo <= r.hi, "{rel}: {r:?}");
            }
        }
        Ok(Parsed::Int(_) | Parsed::Table(_)) => {}
        Err(e) => {
            let msg = format!("{e:#}");
            assert!(!msg.is_empty());
            // Printed through printable() by main; the message itself must stay short.
            assert!(msg.len() < 512, "{} bytes: {msg:?}", msg.len());
        }
    }
});
