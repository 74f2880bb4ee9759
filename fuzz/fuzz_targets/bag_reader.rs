//! Arbitrary bytes as a bag file: index/scan, decompression, record walking and decoding.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scenes::fuzz_entry::read_bag(data));
