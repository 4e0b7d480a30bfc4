//! stylecam: live style transfer with MSG-Net on candle.
pub mod model;
