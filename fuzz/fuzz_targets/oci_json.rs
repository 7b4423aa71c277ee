//! OCI index and manifest JSON (index.json, upstream manifests), and media type sniffing.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry::fuzzing::oci_json(data));
