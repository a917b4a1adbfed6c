//! Arbitrary bytes as a query result, decoded through JSON (the old path) and straight from
//! the CBOR into JSON and into a row struct: the two must agree.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    surreal_pool::fuzzing::decoders_agree(data);
});
