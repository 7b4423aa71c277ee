//! A chart: `Chart.yaml` (+ `requirements.yaml`), values, the images annotation, and the
//! chart archive itself (`.tgz`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry::fuzzing::chart(data));
