//! apt `InRelease` / `Release`: the cleartext frame, the fields, dates.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry::fuzzing::apt_release(data));
