//! The workload language: any text is either a plan or a list of problems, never a panic or a hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        // A path in a directory with no trace or profile files: file references fail cleanly.
        let _ = imagen_load::plan::workload::parse(std::path::Path::new("/nonexistent/fuzz.toml"), text);
    }
});
