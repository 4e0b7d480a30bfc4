//! The window's first style must be readable: a saved style whose picture was damaged since,
//! or `--style BROKEN.png`, falls back to another style with a banner naming the file (and the
//! settings file it was saved in), so the window always opens.

use std::path::Path;

use anyhow::{bail, Result};

use crate::controls::Controls;
use crate::image_io;
use crate::style::{Style, StyleBank};

/// Checks the first and second styles of `c`, replacing unreadable ones; returns what to tell
/// the user. `from_flag`: the first style came from `--style` (else from the settings saved at
/// `settings`). Fails only when no style at all can be read.
pub fn check(
    bank: &StyleBank,
    c: &mut Controls,
    from_flag: bool,
    settings: Option<&Path>,
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    if let Err(e) = readable(bank, &c.style) {
        let Some(fallback) = bank
            .styles()
            .iter()
            .find(|s| s.name != c.style && readable_style(s).is_ok())
        else {
            bail!("{e}; and no other style can be read: pass --style with a readable image");
        };
        let whence = match (from_flag, settings) {
            (true, _) => "--style".to_owned(),
            (false, Some(p)) => format!(
                "the style saved in {} (run with --no-settings to start without it)",
                p.display()
            ),
            (false, None) => "the saved style".to_owned(),
        };
        warnings.push(format!(
            "{e}. Started with {} instead of {whence}.",
            fallback.name
        ));
        c.style = fallback.name.clone();
    }
    if let Some(second) = &c.second_style {
        if let Err(e) = readable(bank, second) {
            warnings.push(format!("{e}. The second style is left out."));
            c.second_style = None;
        }
    }
    Ok(warnings)
}

/// Whether the style `spec` names can be read: its picture decodes (styles from the built-in
/// pack always can).
fn readable(bank: &StyleBank, spec: &str) -> Result<(), String> {
    let style = bank.resolve(spec).map_err(|e| e.to_string())?;
    readable_style(&style)
}

fn readable_style(style: &Style) -> Result<(), String> {
    match style.image() {
        Some(p) => image_io::load_as(p, "style image")
            .map(drop)
            .map_err(|e| e.to_string()),
        None => Ok(()),
    }
}
