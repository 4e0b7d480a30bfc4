//! The legacy reader on arbitrary bytes: any outcome but a panic, a hang or a huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stylecam::model::weights::legacy;

fuzz_target!(|data: &[u8]| {
    if let Ok(sd) = legacy::parse(data, "fuzz") {
        // Decoded tensors are consistent with their shapes.
        for t in sd.tensors.values() {
            assert_eq!(t.data.len(), t.numel() * t.dtype.size_in_bytes());
        }
    }
});
