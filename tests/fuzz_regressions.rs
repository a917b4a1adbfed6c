//! Replays the fuzz targets' kept inputs (fuzz/regressions/<target>/: crashes found by fuzzing,
//! plus hand-made edge cases) through the same entry points. Nothing may panic.

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no inputs in {}", dir.display());
    out
}

#[test]
fn decode_response_inputs_never_panic() {
    for (name, bytes) in inputs("decode_response") {
        let result = std::panic::catch_unwind(|| surreal_pool::fuzzing::decode_frame(&bytes));
        assert!(result.is_ok(), "decode_response panicked on {name}");
    }
}

#[test]
fn record_id_inputs_never_panic_and_round_trip() {
    for (name, bytes) in inputs("record_id") {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let result = std::panic::catch_unwind(|| surreal_pool::fuzzing::record_id(&text));
        assert!(result.is_ok(), "record_id failed on {name}: {text:?}");
    }
}

#[test]
fn readers_agree_on_every_kept_input() {
    for (name, bytes) in inputs("readers_agree") {
        let result = std::panic::catch_unwind(|| surreal_pool::fuzzing::readers_agree(&bytes));
        assert!(result.is_ok(), "the CBOR readers disagree on {name}");
    }
}

#[test]
fn decoders_agree_on_every_kept_input() {
    for (name, bytes) in inputs("decoders_agree") {
        let result = std::panic::catch_unwind(|| surreal_pool::fuzzing::decoders_agree(&bytes));
        assert!(result.is_ok(), "the decoders disagree on {name}");
    }
}
