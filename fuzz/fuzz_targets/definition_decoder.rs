//! Arbitrary bytes as `<message definition>\0<message bytes>`: parser, md5, decode plan, decoder.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scenes::fuzz_entry::decode_with_definition(data));
