//! The image <-> tensor boundary. MSG-Net works on BGR, 0..255, float; images are RGB u8.

use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use image::{imageops::FilterType, ImageFormat, RgbImage};
use tempfile::NamedTempFile;

mod jpeg;
mod output;

pub use output::{check_output, clean_stale, persist, save, OutputFormat, STALE_AFTER};

/// The largest picture stylecam decodes, in pixels (200 megapixels: the largest phone sensors).
/// Larger files are refused from their header, before any pixel is decoded.
pub const MAX_PIXELS: u64 = 200_000_000;
/// What a decoder may allocate for one picture: [`MAX_PIXELS`] at 16-bit RGBA.
pub const MAX_DECODE_BYTES: u64 = MAX_PIXELS * 8;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: cannot read the {what}: {error}")]
    Read {
        path: PathBuf,
        /// What the picture is for: "image", "style image", "mask", "photo".
        what: &'static str,
        error: image::ImageError,
    },
    #[error(
        "{path}: not a picture stylecam reads (PNG, JPEG, WebP, BMP or GIF): it starts with \
         {head}"
    )]
    UnknownFormat { path: PathBuf, head: String },
    #[error(
        "{path}: the {what} is cut short (its data ends before the picture is complete): copy \
         or export the file again"
    )]
    Truncated { path: PathBuf, what: &'static str },
    #[error(
        "{path}: the {what} is {width}x{height} ({mp:.1} megapixels), over the limit of {cap} \
         megapixels: scale it down first",
        mp = *width as f64 * *height as f64 / 1e6,
        cap = MAX_PIXELS / 1_000_000
    )]
    TooLarge {
        path: PathBuf,
        what: &'static str,
        width: u32,
        height: u32,
    },
    #[error(
        "{path}: decoding the {what} needs more memory than the limit of {limit} MB for one \
         picture: scale it down first",
        limit = MAX_DECODE_BYTES >> 20
    )]
    DecodeMemory { path: PathBuf, what: &'static str },
    #[error("{path}: cannot write the image: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} already exists (pass --force to overwrite it)")]
    Exists { path: PathBuf },
    #[error("{path}: {reason}")]
    BadOutput { path: PathBuf, reason: String },
    #[error("{0}")]
    Tensor(#[from] candle_core::Error),
}

/// Reads any supported image file as RGB, turned upright as its EXIF orientation says.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageError> {
    load_as(path, "image")
}

/// [`load_rgb`], with `what` the picture is for ("style image", "mask", ...) in messages.
///
/// The format comes from the first bytes; the size from the header, checked against
/// [`MAX_PIXELS`] before decoding; a JPEG must end with its end-of-image marker (decoders fill
/// a cut-off JPEG with grey without a word).
pub fn load_as(path: &Path, what: &'static str) -> Result<RgbImage, ImageError> {
    let read = |error| ImageError::Read {
        path: path.into(),
        what,
        error,
    };
    let io = |e| read(image::ImageError::IoError(e));
    let file = File::open(path).map_err(io)?;
    let mut reader = image::ImageReader::new(io::BufReader::new(file))
        .with_guessed_format()
        .map_err(io)?;
    let Some(format) = reader.format() else {
        return Err(ImageError::UnknownFormat {
            path: path.into(),
            head: first_bytes(path),
        });
    };
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let decoder = reader
        .into_decoder()
        .map_err(|e| decode_error(path, what, e))?;
    let (width, height) = image::ImageDecoder::dimensions(&decoder);
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageError::TooLarge {
            path: path.into(),
            what,
            width,
            height,
        });
    }
    let img = decode_upright(decoder).map_err(|e| decode_error(path, what, e))?;
    if format == ImageFormat::Jpeg && !jpeg::is_complete(path).map_err(io)? {
        return Err(ImageError::Truncated {
            path: path.into(),
            what,
        });
    }
    Ok(img.into_rgb8())
}

/// Decodes, then turns the picture upright as its EXIF orientation says (phone photos).
pub fn decode_upright(
    mut decoder: impl image::ImageDecoder,
) -> Result<image::DynamicImage, image::ImageError> {
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder)?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Whether JPEG data (a whole file in memory) reaches its end-of-image marker: decoders fill a
/// cut-off JPEG with grey without a word.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    jpeg::complete(bytes).unwrap_or(false)
}

fn decode_error(path: &Path, what: &'static str, error: image::ImageError) -> ImageError {
    match error {
        image::ImageError::Limits(_) => ImageError::DecodeMemory {
            path: path.into(),
            what,
        },
        error => ImageError::Read {
            path: path.into(),
            what,
            error,
        },
    }
}

/// The first 8 bytes of a file in hex, for messages.
fn first_bytes(path: &Path) -> String {
    let mut head = [0u8; 8];
    let n = File::open(path)
        .and_then(|mut f| io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    if n == 0 {
        return "nothing: the file is empty".into();
    }
    head[..n]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Squashes an image to `size x size` as the reference does for style images (Lanczos, like
/// PIL's ANTIALIAS); an image already that size is returned untouched.
pub fn resize_square(img: &RgbImage, size: u32) -> RgbImage {
    resize_to(img, size, size)
}

/// Resizes to `w x h` with Lanczos; an image already that size is returned untouched.
pub fn resize_to(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    if img.dimensions() == (w, h) {
        img.clone()
    } else {
        image::imageops::resize(img, w, h, FilterType::Lanczos3)
    }
}

/// Scales to `width`, the height following the aspect ratio (rounded down, as the reference's
/// `keep_asp` does), at least 8 px.
pub fn resize_to_width(img: &RgbImage, width: u32) -> RgbImage {
    let h = (width as u64 * img.height() as u64 / img.width().max(1) as u64) as u32;
    resize_to(img, width, h.max(8))
}

/// RGB u8 (H, W, 3) -> BGR float (1, 3, H, W) in 0..255 on `device`, in `dtype`.
pub fn to_tensor(img: &RgbImage, device: &Device, dtype: DType) -> candle_core::Result<Tensor> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut planes = vec![0f32; 3 * h * w];
    for (i, p) in img.pixels().enumerate() {
        // BGR: plane 0 is blue.
        planes[i] = p[2] as f32;
        planes[h * w + i] = p[1] as f32;
        planes[2 * h * w + i] = p[0] as f32;
    }
    Tensor::from_vec(planes, (1, 3, h, w), device)?.to_dtype(dtype)
}

/// BGR float (1, 3, H, W) -> RGB u8, clamped to 0..255 and rounded half to even, as
/// `torch.round` does (the reference truncates instead).
pub fn to_image(t: &Tensor) -> candle_core::Result<RgbImage> {
    let (_, c, h, w) = t.dims4()?;
    if c != 3 {
        candle_core::bail!("expected a 3-channel image tensor, got {c} channels")
    }
    let v: Vec<f32> = t.get(0)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let px = |x: f32| x.clamp(0.0, 255.0).round_ties_even() as u8;
    let mut img = RgbImage::new(w as u32, h as u32);
    for (i, p) in img.pixels_mut().enumerate() {
        *p = image::Rgb([px(v[2 * h * w + i]), px(v[h * w + i]), px(v[i])]);
    }
    Ok(img)
}

/// Writes a PNG atomically: a temporary file in the same folder, then a rename. An existing file
/// is kept unless `overwrite` (and only a regular file is ever replaced).
pub fn save_png(img: &RgbImage, path: &Path, overwrite: bool) -> Result<(), ImageError> {
    output::save_as(img, path, overwrite, OutputFormat::Png)
}

/// Encodes `img` as `format` into `w`, with the encoder's errors as I/O errors (an `RgbImage`
/// always fits PNG, so what remains is the disk's).
pub fn encode(img: &RgbImage, w: &mut (impl Write + Seek), format: ImageFormat) -> io::Result<()> {
    img.write_to(w, format).map_err(io_error)
}

/// An encoder's error as an I/O error: the I/O error itself if it is one.
pub fn io_error(e: image::ImageError) -> io::Error {
    match e {
        image::ImageError::IoError(e) => e,
        other => io::Error::other(other),
    }
}

/// How many numbered names [`persist_numbered`] tries before giving up.
pub const MAX_NUMBERED: u32 = 1000;

/// The name every temporary file of stylecam's starts with.
pub const TEMP_PREFIX: &str = ".stylecam-";

/// Writes a new file's bytes into a hidden temporary file (`.stylecam-*<suffix>`) in `dir` and
/// syncs it, ready to be moved into place in one step by [`persist_numbered`] or
/// `NamedTempFile::persist`. If `write` fails, or the result is dropped unpersisted, the
/// temporary file is removed: nothing half-written is ever left under a real name. Ctrl-C
/// removes it too ([`crate::interrupt`]), and stale ones of earlier runs in `dir` are removed
/// first ([`clean_stale`]). The file is created with mode 0666 less the umask, as any new file.
pub fn write_temp(
    dir: &Path,
    suffix: &str,
    write: impl FnOnce(&mut BufWriter<&File>) -> io::Result<()>,
) -> io::Result<NamedTempFile> {
    let tmp = temp_in(dir, suffix)?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        write(&mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// A new, empty hidden temporary file `.stylecam-*<suffix>` in `dir`, as [`write_temp`] makes
/// them (stale ones cleaned first, mode 0666 less the umask, removed on Ctrl-C), for a writer
/// that fills it itself (a video encoder).
pub fn temp_in(dir: &Path, suffix: &str) -> io::Result<NamedTempFile> {
    clean_stale(dir);
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX).suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // open(2) takes the umask off, as for any new file; tempfile's default is 0600.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let tmp = builder.tempfile_in(dir)?;
    crate::interrupt::track(tmp.path());
    Ok(tmp)
}

/// The `n`th candidate name (from 1): `stem.ext`, then `stem-2.ext`, `stem-3.ext`, ... An
/// empty `ext` adds no dot.
pub fn numbered_name(stem: &str, ext: &str, n: u32) -> String {
    let num = if n <= 1 {
        String::new()
    } else {
        format!("-{n}")
    };
    let dot = if ext.is_empty() { "" } else { "." };
    format!("{stem}{num}{dot}{ext}")
}

/// Moves a finished temporary file (from [`write_temp`], in the same `dir`) to the first free
/// [`numbered_name`] there and returns that path. It never replaces a file: each try is one
/// atomic no-clobber rename (`RENAME_NOREPLACE`, or link-then-unlink where that is missing),
/// not a check followed by a rename, so two writers racing for one name both keep their file.
pub fn persist_numbered(
    mut tmp: NamedTempFile,
    dir: &Path,
    stem: &str,
    ext: &str,
) -> io::Result<PathBuf> {
    for n in 1..=MAX_NUMBERED {
        let path = dir.join(numbered_name(stem, ext, n));
        match tmp.persist_noclobber(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => tmp = e.file,
            Err(e) => return Err(e.error),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{} up to {} are all taken; move some files away",
            numbered_name(stem, ext, 1),
            numbered_name(stem, ext, MAX_NUMBERED)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_round_trip_is_bgr_and_exact() {
        let mut img = RgbImage::new(3, 2);
        img.put_pixel(0, 0, image::Rgb([255, 10, 0]));
        img.put_pixel(2, 1, image::Rgb([1, 2, 3]));
        let t = to_tensor(&img, &Device::Cpu, DType::F32).unwrap();
        assert_eq!(t.dims(), &[1, 3, 2, 3]);
        // Channel 0 is blue, 2 is red.
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!((v[0], v[6], v[12]), (0.0, 10.0, 255.0));
        assert_eq!(to_image(&t).unwrap(), img);
    }

    #[test]
    fn output_is_clamped_and_rounded() {
        let t = Tensor::new(&[-20f32, 0.5, 254.5, 300.0, 127.49, 3.0], &Device::Cpu)
            .unwrap()
            .reshape((1, 3, 1, 2))
            .unwrap();
        let img = to_image(&t).unwrap();
        // B is plane 0 = [-20, 0.5], G plane 1 = [254.5, 300], R plane 2 = [127.49, 3.0];
        // halves round to even, like torch.round.
        assert_eq!(img.get_pixel(0, 0).0, [127, 254, 0]);
        assert_eq!(img.get_pixel(1, 0).0, [3, 255, 0]);
    }

    #[test]
    fn save_never_overwrites_without_permission() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        let img = RgbImage::new(2, 2);
        save_png(&img, &p, false).unwrap();
        let err = save_png(&img, &p, false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        save_png(&img, &p, true).unwrap();
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn unreadable_image_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.jpg");
        std::fs::write(&p, b"not an image").unwrap();
        let err = load_rgb(&p).unwrap_err().to_string();
        assert!(err.contains("bad.jpg"), "{err}");
    }

    #[test]
    fn numbered_names_count_from_two() {
        assert_eq!(numbered_name("a", "png", 1), "a.png");
        assert_eq!(numbered_name("a", "png", 2), "a-2.png");
        assert_eq!(numbered_name("s.json.bad", "", 3), "s.json.bad-3");
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_temp(dir.path(), ".part", |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("disk on fire"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn persist_numbered_skips_taken_names_and_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.txt"), b"old").unwrap();
        let write =
            |bytes: &'static [u8]| write_temp(dir.path(), ".part", |w| w.write_all(bytes)).unwrap();
        let p2 = persist_numbered(write(b"two"), dir.path(), "x", "txt").unwrap();
        let p3 = persist_numbered(write(b"three"), dir.path(), "x", "txt").unwrap();
        assert_eq!(p2, dir.path().join("x-2.txt"));
        assert_eq!(p3, dir.path().join("x-3.txt"));
        assert_eq!(std::fs::read(dir.path().join("x.txt")).unwrap(), b"old");
        assert_eq!(std::fs::read(&p2).unwrap(), b"two");
        assert_eq!(std::fs::read(&p3).unwrap(), b"three");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }
}
