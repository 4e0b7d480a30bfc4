//! stylecam: live style transfer with MSG-Net on candle.
pub mod cli;
pub mod color;
pub mod controls;
pub mod device;
pub mod fetch;
pub mod image_io;
pub mod model;
pub mod ops;
pub mod paths;
pub mod style;
