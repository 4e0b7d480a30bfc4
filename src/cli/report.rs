//! How the command line reports: each error once, colour only on a terminal.

/// Whether to colour output going to a stream that `is_terminal` (or not): never when
/// `NO_COLOR` is set to anything but the empty string (no-color.org).
pub fn colour(is_terminal: bool) -> bool {
    colour_with(is_terminal, std::env::var_os("NO_COLOR"))
}

fn colour_with(is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// An error and its causes on one line, `outer: inner: ...`, leaving out any cause whose text
/// the line already holds (many errors repeat their source in their own message).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        let s = s.trim();
        if s.is_empty() || text.contains(s) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(s);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("inner detail")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] Inner);

    #[test]
    fn causes_already_said_are_left_out() {
        let e = anyhow::Error::new(Repeats(Inner)).context("stylising a.png");
        assert_eq!(error_text(&e), "stylising a.png: outer: inner detail");
        let e = anyhow::Error::new(Inner).context("reading b.png");
        assert_eq!(error_text(&e), "reading b.png: inner detail");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_with(true, None));
        assert!(colour_with(true, Some("".into())));
        assert!(!colour_with(true, Some("1".into())));
        assert!(!colour_with(false, None));
    }
}
