//! The threshold grammar (k6's): a metric key on the first line, a condition on the second.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (key, condition) = text.split_once('\n').unwrap_or((text, "p(95) < 5m"));
    let streams = ["upscale".to_string(), "enhance".to_string()];
    if let Ok(metric) = imagen_load::plan::thresholds::parse_key(key, &streams) {
        let _ = imagen_load::plan::thresholds::parse_condition(condition, &metric);
    }
});
