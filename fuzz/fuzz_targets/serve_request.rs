//! `tw serve`'s request parser over any bytes: no panic (a scrape timeout of 1e300 once
//! panicked the connection's thread), every refusal a 4xx/5xx with a one-line body, and what
//! parses holds what the server relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tw::serve::http::{parse_request, route, Route};

fn check_reply(status: u16, body: &[u8]) {
    assert!((400..600).contains(&status), "status {status}");
    let text = String::from_utf8_lossy(body);
    assert!(text.starts_with("tw: "), "{text:?}");
    let line = text.trim_end_matches('\n');
    assert!(!line.contains('\n') && !line.contains('\r'), "{text:?}");
}

fuzz_target!(|data: &[u8]| {
    match parse_request(data) {
        Err(reply) => check_reply(reply.status, &reply.body),
        Ok(req) => {
            assert!(!req.method.is_empty() && req.method.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(req.path.starts_with('/') && !req.path.contains('?'));
            if let Some(t) = req.scrape_timeout {
                assert!(!t.is_zero(), "a zero scrape timeout");
            }
            match route(&req) {
                Route::Metrics | Route::Health => {
                    assert!(req.method == "GET" || req.method == "HEAD");
                    assert!(req.path == "/metrics" || req.path == "/healthz");
                }
                Route::Error(reply) => check_reply(reply.status, &reply.body),
            }
        }
    }
});
