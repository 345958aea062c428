//! The kubelet, cluster-autoscaler and KEDA message parsers, and a whole Event object through the translation.
#![no_main]
use imagen_load::observe::cluster::{import, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (reason, message) = text.split_once('\n').unwrap_or(("Pulled", text));
    let _ = parse::parse(reason, message);
    let _ = parse::go_duration_us(message);
    let _ = parse::event_name_unix_us(message);
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = import::event_events(&v);
        let _ = import::object_events(&v, false);
    }
});
