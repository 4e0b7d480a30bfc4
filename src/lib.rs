//! stylecam: live style transfer with MSG-Net on candle.
pub mod app;
pub mod assets;
pub mod capture;
pub mod cli;
pub mod color;
pub mod controls;
pub mod device;
pub mod engine;
pub mod fetch;
pub mod image_io;
pub mod latest;
pub mod model;
pub mod ops;
pub mod paths;
pub mod pipeline;
pub mod serve;
pub mod settings;
pub mod snapshot;
pub mod style;
pub mod video;

/// Lowercase hex of a byte string (hashes in file names and messages).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
