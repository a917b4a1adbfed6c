//! Arbitrary bytes through both CBOR readers (ours and ciborium's): they must agree on what is
//! valid, on the decoded value, and on its JSON mapping.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    surreal_pool::fuzzing::readers_agree(data);
});
