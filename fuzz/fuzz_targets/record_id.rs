//! Arbitrary text as a record id: parsing must not panic, and what parses round-trips.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        surreal_pool::fuzzing::record_id(text);
    }
});
