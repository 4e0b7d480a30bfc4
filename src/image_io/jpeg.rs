//! Is a JPEG file whole? Decoders fill the missing part of a cut-off JPEG with grey and say
//! nothing, so stylecam walks the file's markers itself: a whole JPEG reaches its end-of-image
//! marker (EOI) after its last scan.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;

/// Whether the JPEG at `path` reaches its end-of-image marker.
pub fn is_complete(path: &Path) -> io::Result<bool> {
    complete(BufReader::new(File::open(path)?))
}

/// Walks the segments (skipping each by its length, so an EXIF thumbnail's markers are never
/// seen) and the entropy-coded data after each start-of-scan (where 0xFF is always followed by
/// 0x00 or a restart marker) until EOI (`true`) or the end of the data (`false`).
pub(super) fn complete(mut r: impl BufRead) -> io::Result<bool> {
    loop {
        // Find the next marker: 0xFF, any fill 0xFFs, then its code. Stray bytes between
        // segments are skipped, as lenient decoders do.
        let Some(mut code) = skip_to_marker(&mut r)? else {
            return Ok(false);
        };
        loop {
            match code {
                EOI => return Ok(true),
                // SOI, TEM and restart markers have no length.
                0xD8 | 0x01 | 0xD0..=0xD7 => break,
                _ => {
                    if !skip_segment(&mut r)? {
                        return Ok(false);
                    }
                    if code != SOS {
                        break;
                    }
                    // Entropy-coded data up to the next marker that is not a restart.
                    match scan_entropy(&mut r)? {
                        Some(next) => code = next,
                        None => return Ok(false),
                    }
                }
            }
        }
    }
}

/// The code of the next marker, or `None` at the end of the data.
fn skip_to_marker(r: &mut impl BufRead) -> io::Result<Option<u8>> {
    loop {
        let Some(b) = byte(r)? else { return Ok(None) };
        if b != 0xFF {
            continue;
        }
        loop {
            match byte(r)? {
                None => return Ok(None),
                Some(0xFF) => continue,
                Some(0x00) => break,
                Some(code) => return Ok(Some(code)),
            }
        }
    }
}

/// Skips a segment by its 2-byte length; `false` if the data ends first.
fn skip_segment(r: &mut impl BufRead) -> io::Result<bool> {
    let (Some(hi), Some(lo)) = (byte(r)?, byte(r)?) else {
        return Ok(false);
    };
    let len = u64::from(u16::from_be_bytes([hi, lo]));
    let want = len.saturating_sub(2);
    Ok(io::copy(&mut r.by_ref().take(want), &mut io::sink())? == want)
}

/// Skips scan data; returns the code of the marker that ends it, or `None` at the end.
fn scan_entropy(r: &mut impl BufRead) -> io::Result<Option<u8>> {
    loop {
        // Jump to the next 0xFF within the buffer.
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        match buf.iter().position(|&b| b == 0xFF) {
            None => {
                let n = buf.len();
                r.consume(n);
                continue;
            }
            Some(i) => r.consume(i + 1),
        }
        let mut code = byte(r)?;
        while code == Some(0xFF) {
            code = byte(r)?;
        }
        match code {
            None => return Ok(None),
            Some(0x00 | 0xD0..=0xD7) => continue,
            Some(c) => return Ok(Some(c)),
        }
    }
}

fn byte(r: &mut impl BufRead) -> io::Result<Option<u8>> {
    let buf = r.fill_buf()?;
    let Some(&b) = buf.first() else {
        return Ok(None);
    };
    r.consume(1);
    Ok(Some(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32, progressive_thumbnail: bool) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        if progressive_thumbnail {
            // An APP1 segment holding a whole small JPEG (as an EXIF thumbnail does) after SOI.
            let thumb = jpeg(8, 8, false);
            let mut seg = vec![0xFF, 0xE1];
            seg.extend(u16::try_from(thumb.len() + 2).unwrap().to_be_bytes());
            seg.extend(&thumb);
            out.splice(2..2, seg);
        }
        out
    }

    #[test]
    fn whole_files_are_complete_and_every_cut_is_not() {
        for thumb in [false, true] {
            let file = jpeg(40, 30, thumb);
            assert!(complete(&file[..]).unwrap());
            // Trailing bytes after EOI (camera trailers) are fine.
            let mut trailer = file.clone();
            trailer.extend(b"trailer\xff\xda");
            assert!(complete(&trailer[..]).unwrap());
            for n in 0..file.len() {
                assert!(
                    !complete(&file[..n]).unwrap(),
                    "cut at {n} of {}",
                    file.len()
                );
            }
        }
    }
}
