//! Arbitrary bytes as a server frame: the decoder and every reader after it must not panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    surreal_pool::fuzzing::decode_frame(data);
});
