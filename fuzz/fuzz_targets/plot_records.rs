//! `tw plot`'s record reader and the chart over any bytes: no panic, no spin (a record with
//! `interval_s: 0` once drew an axis up to infinity for ever; libFuzzer's -timeout catches a
//! hang), and what is read is drawable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((records, warning)) = tw::plot::read(data) else {
        return;
    };
    assert!(!records.is_empty());
    if let Some(w) = &warning {
        assert!(!w.contains('\n'), "{w:?}");
    }
    for r in &records {
        assert!(r.time.is_finite() && r.elapsed_s.is_finite());
        assert!(r.interval_s.is_none_or(|s| s.is_finite() && s >= 0.0));
    }
    let svg = tw::plot::render(&records).expect("a chart of what was read");
    assert!(svg.starts_with("<svg"));
});
