//! apt `Packages` and dpkg `status`: stanzas, versions, relations, provides.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry::fuzzing::apt_packages(data));
