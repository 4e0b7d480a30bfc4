//! Pictures from requests: format and size checked from the header before anything is decoded,
//! then decoded under the image crate's own limits; and pictures for responses.

use std::io::Cursor;

use axum::http::StatusCode;
use image::codecs::jpeg::JpegEncoder;
use image::{ImageFormat, ImageReader, RgbImage};

use super::error::ApiError;
use crate::image_io;

/// The formats a request may carry (those this build decodes).
pub const FORMATS: &str = "PNG, JPEG, WebP, BMP or GIF";

/// Encodings a response can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFormat {
    Png,
    Jpeg,
}

impl OutFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            OutFormat::Png => "image/png",
            OutFormat::Jpeg => "image/jpeg",
        }
    }

    /// PNG unless the `Accept` header prefers JPEG (by its q-values).
    pub fn from_accept(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return OutFormat::Png;
        };
        let (mut png, mut jpeg) = (0.0f32, 0.0f32);
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            // Exact types count over wildcards.
            match media.as_str() {
                "image/png" => png = png.max(q + 0.002),
                "image/jpeg" | "image/jpg" => jpeg = jpeg.max(q + 0.002),
                "image/*" | "*/*" => {
                    png = png.max(q + 0.001);
                    jpeg = jpeg.max(q);
                }
                _ => {}
            }
        }
        if jpeg > png {
            OutFormat::Jpeg
        } else {
            OutFormat::Png
        }
    }
}

/// What a picture's header says, read without decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, ApiError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ApiError::bad("bad_image", format!("cannot read the picture: {e}")))?;
    if reader.format().is_none() {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_an_image",
            format!(
                "the body is not a picture this server reads ({} bytes); send {FORMATS}",
                bytes.len()
            ),
        ));
    }
    Ok(reader)
}

/// Reads the format and size from the header alone and refuses pictures over `max_pixels`: a
/// decompression bomb (a few kilobytes that decode to gigabytes) is stopped here.
pub fn inspect(bytes: &[u8], max_pixels: u64) -> Result<Header, ApiError> {
    let r = reader(bytes)?;
    let format = r.format().unwrap_or(ImageFormat::Png);
    let (width, height) = r.into_dimensions().map_err(|e| {
        ApiError::bad(
            "bad_image",
            format!("cannot read the {format:?} header: {e}"),
        )
    })?;
    let pixels = width as u64 * height as u64;
    if pixels == 0 {
        return Err(ApiError::bad(
            "bad_image",
            format!("the picture is {width}x{height}: it has no pixels"),
        ));
    }
    if pixels > max_pixels {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_pixels",
            format!(
                "the picture is {width}x{height} ({:.1} megapixels); this server takes at most \
                 {:.1} megapixels (--max-megapixels): scale it down first",
                pixels as f64 / 1e6,
                max_pixels as f64 / 1e6
            ),
        ));
    }
    Ok(Header {
        format,
        width,
        height,
    })
}

/// Checks the header ([`inspect`]), then decodes under limits that also bound what the decoder
/// may allocate.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, ApiError> {
    let header = inspect(bytes, max_pixels)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(header.width);
    limits.max_image_height = Some(header.height);
    // Room for 16-bit RGBA plus the decoder's own buffers.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    let mut r = reader(bytes)?;
    r.limits(limits);
    let img = r.decode().map_err(|e| {
        ApiError::bad(
            "bad_image",
            format!(
                "cannot decode the {:?} picture ({}x{}): {e}",
                header.format, header.width, header.height
            ),
        )
    })?;
    Ok(img.to_rgb8())
}

/// Scales so that the longer side is `size` (up or down), keeping the aspect ratio, at least
/// 16 px a side.
pub fn fit_longest(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let long = w.max(h).max(1) as f64;
    let scale = size as f64 / long;
    let nw = ((w as f64 * scale).round() as u32).max(16);
    let nh = ((h as f64 * scale).round() as u32).max(16);
    image_io::resize_to(img, nw, nh)
}

/// Scales to `width`, the height following (at least 16 px), with a bilinear filter (the stream
/// does this for every frame).
pub fn fit_width(img: &RgbImage, width: u32) -> RgbImage {
    if img.width() == width {
        return img.clone();
    }
    let h =
        ((width as f64 * img.height() as f64 / img.width().max(1) as f64).round() as u32).max(16);
    image::imageops::resize(img, width, h, image::imageops::FilterType::Triangle)
}

/// Encodes a response picture (JPEG at quality `jpeg_quality`).
pub fn encode(img: &RgbImage, format: OutFormat, jpeg_quality: u8) -> std::io::Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    match format {
        OutFormat::Png => image_io::encode(img, &mut out, ImageFormat::Png)?,
        OutFormat::Jpeg => JpegEncoder::new_with_quality(&mut out, jpeg_quality)
            .encode_image(img)
            .map_err(image_io::io_error)?,
    }
    Ok(out.into_inner())
}

/// A PNG thumbnail whose longer side is at most `max`.
pub fn thumbnail(img: &RgbImage, max: u32) -> std::io::Result<Vec<u8>> {
    let small = if img.width().max(img.height()) > max {
        fit_longest(img, max)
    } else {
        img.clone()
    };
    encode(&small, OutFormat::Png, 90)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        encode(&RgbImage::new(w, h), OutFormat::Png, 90).unwrap()
    }

    #[test]
    fn accept_picks_jpeg_only_when_preferred() {
        use OutFormat::*;
        assert_eq!(OutFormat::from_accept(None), Png);
        assert_eq!(OutFormat::from_accept(Some("*/*")), Png);
        assert_eq!(OutFormat::from_accept(Some("image/jpeg")), Jpeg);
        assert_eq!(OutFormat::from_accept(Some("image/jpeg, */*;q=0.8")), Jpeg);
        assert_eq!(
            OutFormat::from_accept(Some("image/png;q=0.5, image/jpeg;q=0.9")),
            Jpeg
        );
        assert_eq!(
            OutFormat::from_accept(Some("image/jpeg;q=0.5, image/png")),
            Png
        );
        assert_eq!(OutFormat::from_accept(Some("text/html")), Png);
    }

    #[test]
    fn header_checks_refuse_before_decoding() {
        let h = inspect(&png(40, 30), 10_000).unwrap();
        assert_eq!((h.format, h.width, h.height), (ImageFormat::Png, 40, 30));
        let e = inspect(&png(200, 100), 10_000).unwrap_err();
        assert_eq!((e.status.as_u16(), e.kind), (413, "too_many_pixels"));
        assert!(e.message.contains("200x100"), "{}", e.message);
        let e = inspect(b"hello, world", 10_000).unwrap_err();
        assert_eq!((e.status.as_u16(), e.kind), (415, "not_an_image"));
        let mut cut = png(40, 30);
        cut.truncate(30);
        let e = decode(&cut, 10_000).unwrap_err();
        assert_eq!((e.status.as_u16(), e.kind), (400, "bad_image"));
        assert_eq!(decode(&png(40, 30), 10_000).unwrap().dimensions(), (40, 30));
    }

    #[test]
    fn fitting_keeps_the_aspect_ratio() {
        let img = RgbImage::new(400, 300);
        assert_eq!(fit_longest(&img, 200).dimensions(), (200, 150));
        assert_eq!(fit_longest(&img, 800).dimensions(), (800, 600));
        assert_eq!(fit_width(&img, 100).dimensions(), (100, 75));
    }
}
