//! Decoding of the text forms used by protocol-0 opcodes and Python 2 byte strings.

/// Python 2 `str` bytes as text: UTF-8 when valid, else latin-1.
pub fn bytes_to_string(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// An integer line of INT/LONG/PUT/GET (`123`, `-4`, `5L`).
pub fn parse_int(line: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(line).ok()?.trim();
    let s = s.strip_suffix('L').unwrap_or(s);
    s.parse().ok()
}

pub fn parse_float(line: &[u8]) -> Option<f64> {
    std::str::from_utf8(line).ok()?.trim().parse().ok()
}

/// The body of a STRING opcode: a Python `repr` of a byte string, quotes included.
pub fn unquote_repr(line: &[u8]) -> Option<Vec<u8>> {
    let (&q, rest) = line.split_first()?;
    if q != b'\'' && q != b'"' {
        return None;
    }
    let (&last, body) = rest.split_last()?;
    if last != q {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let &e = body.get(i)?;
        i += 1;
        match e {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'\\' | b'\'' | b'"' => out.push(e),
            b'x' => {
                let hex = body.get(i..i + 2)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut n = 1;
                while n < 3 {
                    match body.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                            n += 1;
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(v).ok()?);
            }
            _ => {
                out.push(b'\\');
                out.push(e);
            }
        }
    }
    Some(out)
}

/// The body of a UNICODE opcode: raw-unicode-escape (`\uXXXX`, `\UXXXXXXXX`, else latin-1).
pub fn raw_unicode_escape(line: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        let width = match (b, line.get(i + 1)) {
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            _ => 0,
        };
        if width == 0 {
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let hex = line.get(i + 2..i + 2 + width)?;
        let code = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
        out.push(char::from_u32(code)?);
        i += 2 + width;
    }
    Some(out)
}

/// Printable form of a name read from a file, for error messages (no control characters).
pub fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(200).flat_map(char::escape_debug).collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_escapes() {
        assert_eq!(unquote_repr(b"'a\\x41\\n\\\\\\101'").unwrap(), b"aA\n\\A");
        assert_eq!(unquote_repr(b"\"it's\"").unwrap(), b"it's");
        assert!(unquote_repr(b"'open").is_none());
        assert!(unquote_repr(b"'\\x4'").is_none());
    }

    #[test]
    fn raw_unicode() {
        assert_eq!(raw_unicode_escape(b"caf\\u00e9").unwrap(), "café");
        assert!(raw_unicode_escape(b"\\ud800").is_none());
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int(b"01"), Some(1));
        assert_eq!(parse_int(b"-7L"), Some(-7));
        assert_eq!(parse_int(b"x"), None);
    }
}
