//! Short strings from outside: image references, platforms, digests, registry targets, volume
//! sizes, file modes, URLs and sums, checksum files, apt `Filename`s, serve routes and ranges.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry::fuzzing::names(data));
