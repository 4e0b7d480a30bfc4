//! `stylecam serve` with real HTTP clients on 127.0.0.1: every route, every rejection, the token,
//! timeouts, and the MJPEG stream parsed frame by frame. Photos are made in code.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::server::*;

const PNG: (&str, &str) = ("Content-Type", "image/png");

/// `stylecam stylize` on the same photo: the server must give the same picture (one engine).
fn cli_stylize(photo: &image::RgbImage, args: &[&str]) -> image::RgbImage {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.png");
    let output = dir.path().join("out.png");
    photo.save(&input).unwrap();
    let out = common::stylecam()
        .args(["stylize", "--device", "cpu"])
        .args(args)
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    image::open(&output).unwrap().to_rgb8()
}

#[test]
fn every_route_answers_as_documented() {
    let s = Server::start(&[]);

    // Health, with no token needed, and the metrics.
    let h = get(&s.url("/healthz"));
    assert_eq!(h.status, 200);
    let j = h.json();
    assert_eq!(j["status"], "ok");
    assert_eq!(j["styles"], 21);
    assert_eq!(j["live"]["running"], false, "nobody watches: no pipeline");
    let m = get(&s.url("/metrics"));
    assert_eq!(m.status, 200);
    assert!(
        m.text().contains("# TYPE stylecam_queue_depth gauge"),
        "{}",
        m.text()
    );

    // The page and its two files, from the binary.
    let page = get(&s.url("/"));
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = page.text();
    assert!(html.contains("<script src=\"app.js\"") && html.contains("style.css"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN"
    );
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'self'"));
    let js = get(&s.url("/app.js"));
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.text().contains("/api/stylize"));
    assert!(get(&s.url("/style.css")).text().contains("@media"));

    // Styles, with swatches; a name with commas is escaped in its URL.
    let styles = get(&s.url("/api/styles")).json();
    let list = styles["styles"].as_array().unwrap();
    assert_eq!(list.len(), 21);
    assert!(list.iter().all(|s| s["builtin"] == true));
    let delaunay = list
        .iter()
        .find(|s| s["name"] == "Robert_Delaunay,_1906,_Portrait")
        .unwrap();
    let url = delaunay["swatch"].as_str().unwrap();
    assert!(url.contains("%2C"), "{url}");
    let sw = get(&s.url(url));
    assert_eq!(sw.header("content-type"), Some("image/png"));
    let sw = sw.image();
    assert!(
        sw.width().max(sw.height()) <= 128 && sw.width() > 8,
        "{:?}",
        sw.dimensions()
    );
    get(&s.url("/api/styles/nope/swatch.png")).error(404, "not_found");

    // A photo as the raw body: PNG back, the same as `stylecam stylize` gives.
    let photo = photo(96, 64, 1);
    let r = post(&s.url("/api/stylize?style=candy"), &[PNG], &png(&photo));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.header("x-image-size"), Some("96x64"));
    let ms: u64 = r.header("x-inference-ms").unwrap().parse().unwrap();
    let total: u64 = r.header("x-elapsed-ms").unwrap().parse().unwrap();
    assert!(ms <= total, "{ms} <= {total}");
    let out = r.image();
    assert_eq!(out.dimensions(), (96, 64));
    let d = mean_abs_diff(&out, &photo);
    assert!(d > 10.0, "the result differs from the photo (mean |Δ| {d})");
    let cli = cli_stylize(&photo, &["--style", "candy"]);
    let d = mean_abs_diff(&out, &cli);
    assert!(
        d < 0.5,
        "server and CLI give the same picture (mean |Δ| {d})"
    );

    // Every control, as multipart form fields, JPEG by Accept; again checked against the CLI.
    let (ct, body) = multipart(
        &[
            ("style", "mosaic"),
            ("style2", "udnie"),
            ("mix", "0.3"),
            ("brush", "0.5"),
            ("strength", "0.8"),
            ("preserve_color", "true"),
        ],
        Some(("image", "photo.jpg", &jpeg(&photo))),
    );
    let r = post(
        &s.url("/api/stylize"),
        &[("Content-Type", ct.as_str()), ("Accept", "image/jpeg")],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    let out = r.image();
    let decoded_input = image::load_from_memory(&jpeg(&photo)).unwrap().to_rgb8();
    let cli = cli_stylize(
        &decoded_input,
        &[
            "--style",
            "mosaic",
            "--style",
            "udnie",
            "--mix",
            "0.3",
            "--brush",
            "0.5",
            "--strength",
            "0.8",
            "--preserve-color",
        ],
    );
    let d = mean_abs_diff(&out, &cli);
    assert!(
        d < 3.0,
        "mixed styles match the CLI up to JPEG loss (mean |Δ| {d})"
    );

    // A split, and `size` (the longer side).
    let r = post(
        &s.url("/api/stylize?style=candy&style2=wave&split=vertical&size=48"),
        &[PNG],
        &png(&photo),
    );
    assert_eq!(r.image().dimensions(), (48, 32), "{}", r.text());

    // A style uploaded as a raw body, then used; it is listed as not built in.
    let style_pic = common::server::photo(64, 64, 9);
    let r = post(
        &s.url("/api/styles?name=my-style"),
        &[PNG],
        &png(&style_pic),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["name"], "my-style");
    let listed = get(&s.url("/api/styles")).json();
    let mine = listed["styles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "my-style")
        .cloned()
        .unwrap();
    assert_eq!(mine["builtin"], false);
    assert_eq!(
        get(&s.url(mine["swatch"].as_str().unwrap()))
            .image()
            .dimensions(),
        (64, 64)
    );
    let r = post(&s.url("/api/stylize?style=my-style"), &[PNG], &png(&photo));
    assert_eq!(r.status, 200, "{}", r.text());
    let mine_out = r.image();
    assert!(mean_abs_diff(&mine_out, &out_of(&s, &photo, "candy")) > 3.0);
    // The same picture through the CLI as a style file gives the same result.
    let dir = tempfile::tempdir().unwrap();
    let style_file = dir.path().join("my-style.png");
    style_pic.save(&style_file).unwrap();
    let cli = cli_stylize(&photo, &["--style", style_file.to_str().unwrap()]);
    let d = mean_abs_diff(&mine_out, &cli);
    assert!(
        d < 0.5,
        "an uploaded style works like a style file (mean |Δ| {d})"
    );

    // A style uploaded as multipart, larger than axum's own 2 MB default limit (noise does not
    // compress), and kept at 1024 px.
    let mut seed = 12345u32;
    let noise = image::RgbImage::from_fn(1200, 800, |_, _| {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        image::Rgb([(seed >> 16) as u8, (seed >> 8) as u8, (seed >> 24) as u8])
    });
    let noise_png = png(&noise);
    assert!(noise_png.len() > 2_500_000, "{}", noise_png.len());
    let (ct, body) = multipart(&[("name", "second")], Some(("image", "s.png", &noise_png)));
    let r = post(
        &s.url("/api/styles"),
        &[("Content-Type", ct.as_str())],
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let sw = get(&s.url("/api/styles/second/swatch.png")).image();
    assert_eq!(sw.dimensions(), (128, 85));

    // Live controls: read, change, read back.
    let c = get(&s.url("/api/controls")).json();
    assert_eq!(
        c["style"], "Robert_Delaunay,_1906,_Portrait",
        "the first style"
    );
    assert_eq!(c["resolution"], "240p", "the CPU default");
    let r = post(
        &s.url("/api/controls"),
        &[("Content-Type", "application/json")],
        br#"{"style": "wave", "style2": "my-style", "split": "radial", "strength": 0.5}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let c = get(&s.url("/api/controls")).json();
    assert_eq!(
        (&c["style"], &c["style2"], &c["split"], &c["strength"]),
        (
            &"wave".into(),
            &"my-style".into(),
            &"radial".into(),
            &0.5.into()
        )
    );

    // Unknown routes and methods are JSON too.
    get(&s.url("/api/nothing")).error(404, "not_found");
    post(&s.url("/api/styles/candy/swatch.png"), &[], b"").error(405, "method_not_allowed");
    get(&s.url("/api/stylize")).error(405, "method_not_allowed");

    // The counters saw it all.
    assert!(
        s.metric(
            "stylecam_http_requests_total",
            "route=\"/api/stylize\",method=\"POST\",status=\"200\""
        ) >= 5.0
    );
    assert!(s.metric("stylecam_inference_seconds_count", "") >= 5.0);
    assert!(s.metric("stylecam_errors_total", "kind=\"not_found\"") >= 2.0);
}

fn out_of(s: &Server, photo: &image::RgbImage, style: &str) -> image::RgbImage {
    let r = post(
        &s.url(&format!("/api/stylize?style={style}")),
        &[PNG],
        &png(photo),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.image()
}

/// CRC-32 as PNG chunks use it (ISO 3309, reflected, polynomial 0xEDB88320).
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A PNG whose header claims `w` x `h` but which holds no pixel data (an empty zlib stream):
/// it can only be refused from the header.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        let mut c = kind.to_vec();
        c.extend_from_slice(data);
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(&c);
        png.extend_from_slice(&crc32(&c).to_be_bytes());
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", b"\x78\x9c\x03\x00\x00\x00\x00\x01");
    chunk(b"IEND", b"");
    png
}

/// A real decompression bomb: a PNG of `side` x `side` black pixels, small in bytes.
fn png_bomb(side: u32) -> Vec<u8> {
    let img = image::GrayImage::new(side, side);
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn every_rejection_is_json_and_the_server_keeps_serving() {
    let s = Server::start(&[
        "--max-body",
        "300K",
        "--max-megapixels",
        "1",
        "--max-size",
        "512",
        "--max-styles",
        "1",
    ]);
    let photo = png(&photo(64, 48, 2));
    let stylize = |q: &str, body: &[u8]| post(&s.url(&format!("/api/stylize{q}")), &[PNG], body);

    // Not a picture, a broken picture, an empty body.
    let m = stylize("?style=candy", b"GIF? no, just text").error(415, "not_an_image");
    assert!(m.contains("PNG, JPEG"), "{m}");
    let mut cut = photo.clone();
    cut.truncate(cut.len() / 2);
    stylize("?style=candy", &cut).error(400, "bad_image");
    stylize("?style=candy", b"").error(400, "missing_image");

    // Too many pixels: from the header alone, and a real bomb (25 megapixels in ~130 KB).
    let rss_before = s.rss_kib();
    let m = stylize("?style=candy", &png_header_only(40_000, 40_000)).error(413, "too_many_pixels");
    assert!(
        m.contains("40000x40000") && m.contains("--max-megapixels"),
        "{m}"
    );
    let bomb = png_bomb(5000);
    assert!(bomb.len() < 200_000, "{} bytes", bomb.len());
    stylize("?style=candy", &bomb).error(413, "too_many_pixels");
    let post_bomb = post(&s.url("/api/styles?name=bomb"), &[PNG], &bomb);
    post_bomb.error(413, "too_many_pixels");
    let grown = s.rss_kib().saturating_sub(rss_before);
    assert!(
        grown < 40_000,
        "the bomb was not decoded: RSS grew {grown} KiB"
    );

    // A body over --max-body, declared and not.
    let big = vec![7u8; 400 * 1024];
    stylize("?style=candy", &big).error(413, "too_large");

    // Unknown styles, numbers out of range, fields that do not parse, unknown fields.
    let m = stylize("?style=nope", &photo).error(400, "unknown_style");
    assert!(m.contains("candy") && m.contains("GET /api/styles"), "{m}");
    stylize("?style=candy&brush=9", &photo).error(400, "out_of_range");
    stylize("?style=candy&strength=-1", &photo).error(400, "out_of_range");
    stylize("?style=candy&size=4096", &photo).error(400, "out_of_range");
    stylize("?style=candy&mix=half", &photo).error(400, "bad_parameter");
    stylize("?style=candy&split=diagonal", &photo).error(400, "bad_parameter");
    stylize("?style=candy&mix=0.5", &photo).error(400, "bad_parameter");
    stylize("?style=candy&path=/etc/passwd", &photo).error(400, "unknown_parameter");
    stylize("", &photo).error(400, "missing_parameter");
    // A style named by a path on the server is not a style.
    stylize("?style=/etc/passwd", &photo).error(400, "unknown_style");
    let (ct, body) = multipart(&[("style", "candy")], None);
    post(
        &s.url("/api/stylize"),
        &[("Content-Type", ct.as_str())],
        &body,
    )
    .error(400, "missing_image");

    // Live controls.
    let controls = |body: &[u8]| {
        post(
            &s.url("/api/controls"),
            &[("Content-Type", "application/json")],
            body,
        )
    };
    controls(b"{not json").error(400, "bad_json");
    controls(br#"{"colour": true}"#).error(400, "bad_json");
    controls(br#"{"brush": 100}"#).error(400, "out_of_range");
    controls(br#"{"style": "../../etc/passwd"}"#).error(400, "unknown_style");
    controls(br#"{"resolution": "8k"}"#).error(400, "bad_parameter");

    // Style uploads: bad names, taken names, the limit (one, here).
    post(&s.url("/api/styles?name=../x"), &[PNG], &photo).error(400, "bad_name");
    post(&s.url("/api/styles"), &[PNG], &photo).error(400, "missing_parameter");
    post(&s.url("/api/styles?name=CANDY"), &[PNG], &photo).error(409, "name_taken");
    post(&s.url("/api/styles?name=text"), &[PNG], b"hello").error(415, "not_an_image");
    assert_eq!(
        post(&s.url("/api/styles?name=mine"), &[PNG], &photo).status,
        201
    );
    post(&s.url("/api/styles?name=more"), &[PNG], &photo).error(409, "too_many_styles");

    // Stream parameters.
    get(&s.url("/stream.mjpeg?fps=0")).error(400, "out_of_range");
    get(&s.url("/stream.mjpeg?width=99999")).error(400, "out_of_range");
    get(&s.url("/stream.mjpeg?fps=ten")).error(400, "bad_parameter");
    get(&s.url("/stream.mjpeg?quality=9")).error(400, "unknown_parameter");

    // And it still works.
    let r = stylize("?style=candy", &photo);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&s.url("/healthz")).status, 200);
    assert!(s.metric("stylecam_errors_total", "kind=\"too_many_pixels\"") >= 3.0);
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let s = Server::start(&["--queue", "1"]);
    // Photos big enough to keep the worker busy for a while each.
    let big = png(&photo(640, 480, 3));
    let n = 6;
    let results: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (url, body) = (s.url("/api/stylize?style=candy&size=640"), big.clone());
                scope.spawn(move || post(&url, &[PNG], &body))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r.status == 200).count();
    let busy: Vec<_> = results.iter().filter(|r| r.status == 503).collect();
    assert_eq!(
        ok + busy.len(),
        n,
        "only 200 or 503: {:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(ok >= 1 && !busy.is_empty(), "{ok} ok, {} busy", busy.len());
    for b in &busy {
        b.error(503, "busy");
        let secs: u64 = b.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=120).contains(&secs));
    }
    // Nothing is left queued; the server serves again.
    let depth = wait_for(Duration::from_secs(30), || {
        let d = get(&s.url("/healthz")).json()["queue"].as_i64().unwrap();
        (d == 0).then_some(d)
    });
    assert_eq!(depth, Some(0));
    let r = post(&s.url("/api/stylize?style=candy&size=64"), &[PNG], &big);
    assert_eq!(r.status, 200);
    assert_eq!(
        s.metric("stylecam_errors_total", "kind=\"busy\"") as usize,
        busy.len()
    );
}

#[test]
fn the_token_guards_every_route_but_health() {
    let s = Server::start(&["--token", "s3cret"]);
    assert_eq!(get(&s.url("/healthz")).status, 200);
    for path in [
        "/",
        "/api/styles",
        "/metrics",
        "/api/controls",
        "/stream.mjpeg",
        "/nothing",
    ] {
        let r = get(&s.url(path));
        let m = r.error(401, "unauthorized");
        assert!(m.contains("Authorization: Bearer"), "{m}");
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    }
    let photo = png(&photo(32, 32, 4));
    post(&s.url("/api/stylize?style=candy"), &[PNG], &photo).error(401, "unauthorized");
    let wrong = get_with(&s.url("/api/styles"), &[("Authorization", "Bearer nope")]);
    wrong.error(401, "unauthorized");
    let right = get_with(&s.url("/api/styles"), &[("Authorization", "Bearer s3cret")]);
    assert_eq!(right.status, 200);
    assert_eq!(get(&s.url("/api/styles?token=s3cret")).status, 200);
    let r = post(
        &s.url("/api/stylize?style=candy"),
        &[PNG, ("Authorization", "Bearer s3cret")],
        &photo,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // A token in the query is not a photo field.
    let r = post(
        &s.url("/api/stylize?style=candy&token=s3cret"),
        &[PNG],
        &photo,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // A browser at the page with no token gets the same 401, as a form to type it in.
    let html = ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8");
    let r = get_with(&s.url("/"), &[html]);
    assert_eq!(r.status, 401);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    assert!(r.text().contains("name=\"token\""), "{}", r.text());
    assert_eq!(get_with(&s.url("/?token=nope"), &[html]).status, 401);
    // Opened as /?token=T, the page asks for its own files with the token (a browser sends no
    // header for them), and they load.
    let page = get_with(&s.url("/?token=s3cret"), &[html]);
    assert_eq!(page.status, 200);
    for file in ["app.js?token=s3cret", "style.css?token=s3cret"] {
        assert!(
            page.text().contains(&format!("\"{file}\"")),
            "{}",
            page.text()
        );
        assert_eq!(get(&s.url(&format!("/{file}"))).status, 200, "{file}");
        get(&s.url(&format!("/{}", file.split('?').next().unwrap()))).error(401, "unauthorized");
    }
    // With the header instead, the page is the plain one.
    let page = get_with(&s.url("/"), &[("Authorization", "Bearer s3cret")]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("\"app.js\""));
}

/// Reads one multipart part: its headers and its body.
fn read_part(r: &mut impl Read, boundary: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let line = |r: &mut dyn Read| -> String {
        let mut l = Vec::new();
        let mut b = [0u8; 1];
        loop {
            r.read_exact(&mut b).expect("the stream ended");
            if b[0] == b'\n' {
                break;
            }
            l.push(b[0]);
        }
        String::from_utf8(l)
            .unwrap()
            .trim_end_matches('\r')
            .to_owned()
    };
    let mut first = line(r);
    while first.is_empty() {
        first = line(r);
    }
    assert_eq!(first, format!("--{boundary}"));
    let mut headers = Vec::new();
    loop {
        let l = line(r);
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap();
    let mut crlf = [0u8; 2];
    r.read_exact(&mut crlf).unwrap();
    assert_eq!(&crlf, b"\r\n");
    (headers, body)
}

#[test]
fn the_stream_is_multipart_jpeg_frame_by_frame() {
    let s = Server::start(&["--fps", "15"]);
    let mut resp = agent()
        .get(&s.url("/stream.mjpeg?fps=8&width=200"))
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let boundary = ct
        .strip_prefix("multipart/x-mixed-replace; boundary=")
        .unwrap_or_else(|| panic!("{ct}"))
        .to_owned();
    let mut body = resp.body_mut().as_reader();
    let started = Instant::now();
    let mut frames = Vec::new();
    for _ in 0..6 {
        let (headers, jpeg) = read_part(&mut body, &boundary);
        assert!(headers.contains(&("content-type".into(), "image/jpeg".into())));
        let img = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
            .unwrap()
            .to_rgb8();
        assert_eq!(img.dimensions(), (200, 150), "the width asked for");
        frames.push(img);
    }
    let elapsed = started.elapsed();
    // At most 8 a second were asked for (the first comes at once).
    assert!(
        elapsed >= Duration::from_millis(5 * 1000 / 8 - 50),
        "{elapsed:?}"
    );
    // The test pattern moves, so frames differ.
    let moved = frames
        .windows(2)
        .filter(|w| mean_abs_diff(&w[0], &w[1]) > 0.5)
        .count();
    assert!(moved >= 2, "{moved} of 5 frame pairs differ");
    let health = get(&s.url("/healthz")).json();
    assert_eq!(health["live"]["running"], true);
    assert_eq!(health["live"]["viewers"], 1);
    assert!(health["live"]["source"]
        .as_str()
        .unwrap()
        .contains("test pattern"));

    // Changing the controls changes the picture: a strength of 0 against the full style.
    let set = |body: &[u8]| {
        let r = post(
            &s.url("/api/controls"),
            &[("Content-Type", "application/json")],
            body,
        );
        assert_eq!(r.status, 200, "{}", r.text());
    };
    let mean_colour = |img: &image::RgbImage| {
        let n = img.pixels().len() as f64;
        let mut m = [0f64; 3];
        for p in img.pixels() {
            for c in 0..3 {
                m[c] += p[c] as f64 / n;
            }
        }
        m
    };
    set(br#"{"style": "candy", "strength": 1.0}"#);
    // Frames already on their way may still have the old controls; take a later one.
    for _ in 0..6 {
        read_part(&mut body, &boundary);
    }
    let (_, a) = read_part(&mut body, &boundary);
    set(br#"{"style": "the_scream", "preserve_color": true}"#);
    for _ in 0..6 {
        read_part(&mut body, &boundary);
    }
    let (_, b) = read_part(&mut body, &boundary);
    let (a, b) = (
        mean_colour(&image::load_from_memory(&a).unwrap().to_rgb8()),
        mean_colour(&image::load_from_memory(&b).unwrap().to_rgb8()),
    );
    let shift: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum();
    assert!(
        shift > 5.0,
        "the controls reached the stream: {a:?} vs {b:?}"
    );

    // The client goes: the server notices, and stops the pipeline after its linger.
    drop(body);
    drop(resp);
    let stopped = wait_for(Duration::from_secs(15), || {
        let live = get(&s.url("/healthz")).json()["live"].clone();
        (live["viewers"] == 0 && live["running"] == false).then_some(())
    });
    assert!(stopped.is_some(), "{}", get(&s.url("/healthz")).text());
    assert!(s.metric("stylecam_frames_streamed_total", "") >= 19.0);
}

#[test]
fn slow_and_vanished_clients_are_timed_out() {
    let mut s = Server::start(&["--client-timeout", "1"]);
    let addr = format!("127.0.0.1:{}", s.port);

    // Headers that never finish: the connection is closed.
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"POST /api/stylize?style=candy HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // A kept-alive connection left idle after an answer is closed too.
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 15];
    c.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200 OK");
    let t = Instant::now();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // A body that never finishes: 408, as JSON.
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(
        b"POST /api/stylize?style=candy HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n\
          Content-Length: 5000\r\n\r\n\x89PNG",
    )
    .unwrap();
    let mut buf = String::new();
    let _ = c.read_to_string(&mut buf);
    assert!(buf.starts_with("HTTP/1.1 408"), "{buf}");
    assert!(buf.contains("\"kind\":\"timeout\""), "{buf}");

    // A client that asks for a photo and goes before its turn costs no inference: two big
    // photos keep the worker busy, the third client queues, then vanishes.
    let big = png(&photo(800, 600, 5));
    let queue = || get(&s.url("/healthz")).json()["queue"].as_i64().unwrap();
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let (url, body) = (s.url("/api/stylize?style=candy&size=640"), big.clone());
            std::thread::spawn(move || post(&url, &[PNG], &body))
        })
        .collect();
    assert!(wait_for(Duration::from_secs(30), || (queue() == 2).then_some(())).is_some());
    let mut c = TcpStream::connect(&addr).unwrap();
    let head = format!(
        "POST /api/stylize?style=candy&size=640 HTTP/1.1\r\nHost: x\r\n\
         Content-Type: image/png\r\nContent-Length: {}\r\n\r\n",
        big.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&big).unwrap();
    let queued = wait_for(Duration::from_secs(30), || (queue() == 3).then_some(()));
    drop(c);
    assert!(queued.is_some(), "the third photo was queued");
    for b in busy {
        assert_eq!(b.join().unwrap().status, 200);
    }
    let abandoned = wait_for(Duration::from_secs(30), || {
        (s.metric("stylecam_jobs_abandoned_total", "") == 1.0).then_some(())
    });
    assert!(
        abandoned.is_some(),
        "the vanished client's photo was skipped"
    );
    assert_eq!(s.metric("stylecam_inference_seconds_count", ""), 2.0);

    // A stream client that stops reading is dropped once its writes stall (a small receive
    // buffer makes them stall sooner).
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let target: std::net::SocketAddr = addr.parse().unwrap();
    sock.connect(&target.into()).unwrap();
    let mut c: TcpStream = sock.into();
    c.write_all(b"GET /stream.mjpeg?fps=30&width=1920 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let watching = wait_for(Duration::from_secs(10), || {
        (get(&s.url("/healthz")).json()["live"]["viewers"] == 1).then_some(())
    });
    assert!(watching.is_some());
    let gone = wait_for(Duration::from_secs(60), || {
        (get(&s.url("/healthz")).json()["live"]["viewers"] == 0).then_some(())
    });
    assert!(gone.is_some(), "a stalled stream client is dropped");
    drop(c);
    assert!(s.alive());
    assert_eq!(get(&s.url("/healthz")).status, 200);
}

#[test]
fn loopback_by_default_and_a_warning_elsewhere() {
    let help = common::stylecam()
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[default: 127.0.0.1:8080]"), "{help}");

    let s = Server::start(&["--listen", "0.0.0.0:0"]);
    let warned = wait_for(Duration::from_secs(5), || {
        let e = s.stderr();
        e.contains("warning: listening on 0.0.0.0").then_some(e)
    })
    .unwrap_or_else(|| s.stderr());
    assert!(warned.contains("--token"), "{warned}");
    drop(s);

    // A port in use is a clear error.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = common::stylecam()
        .args([
            "serve",
            "--device",
            "cpu",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot listen on") && err.contains("--listen"),
        "{err}"
    );
}
