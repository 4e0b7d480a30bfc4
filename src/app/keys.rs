//! The keyboard: one table, used by the window and printed in the panel's help and the README.

use winit::keyboard::{Key, NamedKey};

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    PreviousStyle,
    NextStyle,
    /// 1–9: the style at that position (0-based here).
    Style(usize),
    BrushSmaller,
    BrushLarger,
    ToggleColor,
    ToggleMirror,
    ToggleSideBySide,
    ToggleFullscreen,
    TogglePanel,
    TogglePause,
    Snapshot,
    /// Start or stop an MP4 recording.
    ToggleRecord,
    /// Leave fullscreen, else quit.
    Escape,
}

/// The help table: keys and what they do.
pub const HELP: [(&str, &str); 13] = [
    ("← / →", "previous / next style"),
    ("1 – 9", "style 1 to 9"),
    ("[ / ]", "smaller / larger brush"),
    ("C", "keep the camera's colours"),
    ("M", "mirror"),
    ("O", "original | stylised side by side"),
    ("F or F11", "fullscreen"),
    ("H", "hide or show the panel"),
    ("Space", "pause"),
    ("S", "snapshot"),
    ("R", "record MP4 / stop"),
    ("Esc", "leave fullscreen, then quit"),
    ("drop an image", "use it as a new style"),
];

/// The action for a pressed key, if any.
pub fn action(key: &Key) -> Option<Action> {
    match key {
        Key::Named(named) => match named {
            NamedKey::ArrowLeft => Some(Action::PreviousStyle),
            NamedKey::ArrowRight => Some(Action::NextStyle),
            NamedKey::F11 => Some(Action::ToggleFullscreen),
            NamedKey::Space => Some(Action::TogglePause),
            NamedKey::Escape => Some(Action::Escape),
            _ => None,
        },
        Key::Character(s) => {
            let mut chars = s.chars();
            let c = chars.next()?;
            if chars.next().is_some() {
                return None;
            }
            match c.to_ascii_lowercase() {
                d @ '1'..='9' => Some(Action::Style(d as usize - '1' as usize)),
                '[' => Some(Action::BrushSmaller),
                ']' => Some(Action::BrushLarger),
                'c' => Some(Action::ToggleColor),
                'm' => Some(Action::ToggleMirror),
                'o' => Some(Action::ToggleSideBySide),
                'f' => Some(Action::ToggleFullscreen),
                'h' => Some(Action::TogglePanel),
                's' => Some(Action::Snapshot),
                'r' => Some(Action::ToggleRecord),
                ' ' => Some(Action::TogglePause),
                _ => None,
            }
        }
        _ => None,
    }
}

/// One brush step: a quarter octave, so eight presses double or halve the brush.
pub fn brush_step(brush: f32, larger: bool) -> f32 {
    let f = 2f32.powf(0.25);
    let b = if larger { brush * f } else { brush / f };
    b.clamp(
        *crate::controls::BRUSH_RANGE.start(),
        *crate::controls::BRUSH_RANGE.end(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(s: &str) -> Key {
        Key::Character(s.into())
    }

    #[test]
    fn the_documented_keys_do_what_the_help_says() {
        assert_eq!(
            action(&Key::Named(NamedKey::ArrowRight)),
            Some(Action::NextStyle)
        );
        assert_eq!(action(&ch("1")), Some(Action::Style(0)));
        assert_eq!(action(&ch("9")), Some(Action::Style(8)));
        assert_eq!(action(&ch("0")), None);
        assert_eq!(action(&ch("C")), Some(Action::ToggleColor));
        assert_eq!(action(&ch("c")), Some(Action::ToggleColor));
        assert_eq!(action(&ch("[")), Some(Action::BrushSmaller));
        assert_eq!(
            action(&Key::Named(NamedKey::F11)),
            Some(Action::ToggleFullscreen)
        );
        assert_eq!(action(&ch("f")), Some(Action::ToggleFullscreen));
        assert_eq!(action(&ch("ss")), None);
        assert_eq!(action(&ch("R")), Some(Action::ToggleRecord));
    }

    #[test]
    fn brush_steps_stay_in_range() {
        assert!((brush_step(1.0, true) - 1.189).abs() < 1e-3);
        assert_eq!(brush_step(4.0, true), 4.0);
        assert_eq!(brush_step(0.25, false), 0.25);
    }
}
