//! Format detection plus every reader (legacy, zip, safetensors) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stylecam::model::weights::load_bytes;

fuzz_target!(|data: &[u8]| {
    if let Ok(sd) = load_bytes(data, "fuzz") {
        for t in sd.tensors.values() {
            assert_eq!(t.data.len(), t.numel() * t.dtype.size_in_bytes());
        }
    }
});
