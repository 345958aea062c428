//! The event-log reader and the analysis after it: any bytes give a report (with warnings), never a panic, and
//! memory stays bounded by the input (sequence numbers and line lengths are capped).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = imagen_load::event::log::Reader::from_reader(
        std::path::Path::new("fuzz.jsonl"),
        std::io::Cursor::new(data),
    );
    let mut events = Vec::new();
    while let Ok(Some(e)) = reader.next_event() {
        events.push(e);
        if events.len() > 10_000 {
            break;
        }
    }
    let report = imagen_load::analysis::analyze(events);
    let _ = imagen_load::outputs::report::render_terminal(&report, false);
});
