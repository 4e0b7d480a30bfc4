//! The creative controls as one plain value: what the live panel edits, what the inference
//! thread applies, and what the settings file remembers. The CLI's flags map onto the same
//! fields.

use serde::{Deserialize, Serialize};

use crate::style::Split;

/// Brush sizes accepted everywhere (`--brush`, the panel's slider, the `[`/`]` keys).
pub const BRUSH_RANGE: std::ops::RangeInclusive<f32> = 0.25..=4.0;
/// The style size at brush 1, as in the reference demo.
pub const BASE_STYLE_SIZE: u32 = 512;

/// The size frames are stylised at, independent of the camera's resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Resolution {
    P240,
    P360,
    #[default]
    P480,
    P720,
    /// The source's own size.
    Native,
}

impl Resolution {
    pub const ALL: [Resolution; 5] = [
        Resolution::P240,
        Resolution::P360,
        Resolution::P480,
        Resolution::P720,
        Resolution::Native,
    ];

    /// The frame height to stylise at, or `None` for the source's own size.
    pub fn height(self) -> Option<u32> {
        match self {
            Resolution::P240 => Some(240),
            Resolution::P360 => Some(360),
            Resolution::P480 => Some(480),
            Resolution::P720 => Some(720),
            Resolution::Native => None,
        }
    }

    /// The size a `w`x`h` frame is stylised at: scaled (never up) to this height, keeping the
    /// aspect ratio, at least 16 px a side.
    pub fn fit(self, w: u32, h: u32) -> (u32, u32) {
        match self.height() {
            Some(th) if th < h => {
                let tw = (w as f64 * th as f64 / h as f64).round() as u32;
                (tw.max(16), th.max(16))
            }
            _ => (w, h),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Resolution::P240 => "240p",
            Resolution::P360 => "360p",
            Resolution::P480 => "480p",
            Resolution::P720 => "720p",
            Resolution::Native => "native",
        }
    }
}

impl std::str::FromStr for Resolution {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Resolution::ALL
            .into_iter()
            .find(|r| r.label() == s)
            .ok_or_else(|| {
                format!("unknown resolution `{s}`: use 240p, 360p, 480p, 720p or native")
            })
    }
}

/// Everything the user can turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Controls {
    /// The style's name in the bank (a file stem).
    pub style: String,
    /// Scales the style size: `BASE_STYLE_SIZE * brush`. Larger brush, larger strokes.
    pub brush: f32,
    /// Keep the camera's colours; only the luminance is stylised.
    pub preserve_color: bool,
    /// 0 = the network's rendering of the frame's own statistics, 1 = the full style.
    pub strength: f32,
    /// A second style, mixed in by `mix` or placed by `split`.
    pub second_style: Option<String>,
    /// 0 = only the first style, 1 = only the second. Ignored while `split` is set.
    pub mix: f32,
    /// Two styles side by side instead of mixed; the first fills the left, top or centre.
    pub split: Option<Split>,
    pub resolution: Resolution,
    /// 0 = off. Higher values ignore small input changes (deadband) and smooth the output over
    /// time (exponential moving average), trading a little lag for a steadier picture.
    pub anti_flicker: f32,
}

impl Default for Controls {
    fn default() -> Self {
        Self {
            style: String::new(),
            brush: 1.0,
            preserve_color: false,
            strength: 1.0,
            second_style: None,
            mix: 0.5,
            split: None,
            resolution: Resolution::default(),
            anti_flicker: 0.0,
        }
    }
}

impl Controls {
    /// The style size the brush asks for.
    pub fn style_size(&self) -> u32 {
        brushed_size(BASE_STYLE_SIZE, self.brush as f64)
    }

    /// The same controls with every number pulled into its range (a hand-edited settings file
    /// may hold anything).
    pub fn clamped(mut self) -> Self {
        let fix = |v: f32, lo: f32, hi: f32, default: f32| {
            if v.is_finite() {
                v.clamp(lo, hi)
            } else {
                default
            }
        };
        self.brush = fix(self.brush, *BRUSH_RANGE.start(), *BRUSH_RANGE.end(), 1.0);
        self.strength = fix(self.strength, 0.0, 1.0, 1.0);
        self.mix = fix(self.mix, 0.0, 1.0, 0.5);
        self.anti_flicker = fix(self.anti_flicker, 0.0, 1.0, 0.0);
        self
    }
}

/// The style size after the brush, kept within what the network accepts.
pub fn brushed_size(style_size: u32, brush: f64) -> u32 {
    ((style_size as f64 * brush).round() as u32).clamp(16, 8192)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_scales_down_only_and_keeps_aspect() {
        assert_eq!(Resolution::P240.fit(640, 480), (320, 240));
        assert_eq!(Resolution::P720.fit(640, 480), (640, 480));
        assert_eq!(Resolution::Native.fit(1920, 1080), (1920, 1080));
        assert_eq!(Resolution::P360.fit(1280, 720), (640, 360));
        assert_eq!("480p".parse::<Resolution>(), Ok(Resolution::P480));
        assert!("4k".parse::<Resolution>().is_err());
    }

    #[test]
    fn clamping_repairs_wild_values() {
        let c = Controls {
            brush: 99.0,
            strength: f32::NAN,
            mix: -1.0,
            ..Controls::default()
        }
        .clamped();
        assert_eq!((c.brush, c.strength, c.mix), (4.0, 1.0, 0.0));
        assert_eq!(Controls::default().style_size(), 512);
    }
}
