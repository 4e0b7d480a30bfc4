//! The live window, for real: Xvfb as the display, Mesa's lavapipe as the Vulkan driver, the
//! test-pattern source, a tiny fixture model, keys from xdotool and screenshots from
//! ImageMagick's `import`.
//!
//! Needs `Xvfb`, `xdotool`, `import` and a Vulkan driver (`.ci/run` installs them). Without them
//! the test says it is skipped, unless STYLECAM_REQUIRE_DISPLAY=1 makes that a failure.
//! STYLECAM_SCREENSHOT_DIR=DIR keeps the screenshots for a person to look at.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{fixtures, stylecam};
use image::RgbImage;

fn tools_present() -> bool {
    let missing: Vec<&str> = ["Xvfb", "xdotool", "import"]
        .into_iter()
        .filter(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("STYLECAM_REQUIRE_DISPLAY").as_deref() == Ok("1") {
        panic!("missing {missing:?} and STYLECAM_REQUIRE_DISPLAY=1");
    }
    eprintln!("SKIPPED window test: {missing:?} not installed (apt-get install xvfb xdotool imagemagick mesa-vulkan-drivers)");
    false
}

/// An Xvfb server on a free display, killed on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    /// A 1280x800 screen.
    fn start() -> Xvfb {
        Xvfb::with_screen("1280x800")
    }

    fn with_screen(size: &str) -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{size}x24"),
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("Xvfb says its display");
        let display = format!(":{}", line.trim());
        assert!(line.trim().parse::<u32>().is_ok(), "Xvfb said {line:?}");
        Xvfb { child, display }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The app's stderr, collected line by line on a thread.
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn follow(stream: impl Read + Send + 'static) -> Log {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                eprintln!("  app: {line}");
                l.lock().unwrap().push(line);
            }
        });
        Log(lines)
    }

    fn wait_for(&self, needle: &str, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.0.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// Every helper program runs under `timeout`, so a tool waiting for a window that is gone
/// cannot hang the test.
fn xdotool(display: &str, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args(["20", "xdotool"])
        .args(args)
        .env("DISPLAY", display)
        .output()
        .expect("run xdotool");
    assert!(
        out.status.success(),
        "xdotool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn screenshot(display: &str, window: &str, path: &Path) -> RgbImage {
    let ok = Command::new("timeout")
        .args(["20", "import", "-window", window])
        .arg(format!("png:{}", path.display()))
        .env("DISPLAY", display)
        .status()
        .expect("run import")
        .success();
    assert!(ok, "import failed");
    let img = image::open(path).expect("read the screenshot").to_rgb8();
    if let Ok(dir) = std::env::var("STYLECAM_SCREENSHOT_DIR") {
        std::fs::create_dir_all(&dir).ok();
        std::fs::copy(path, Path::new(&dir).join(path.file_name().unwrap())).ok();
    }
    img
}

fn luma(p: &image::Rgb<u8>) -> f32 {
    0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32
}

/// The longest run of `true` in `v`, as a half-open range.
fn longest_run(v: &[bool]) -> (u32, u32) {
    let (mut best, mut start) = ((0, 0), None);
    for (i, &on) in v.iter().chain([false].iter()).enumerate() {
        match (on, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s > best.1 - best.0 {
                    best = (s, i);
                }
                start = None;
            }
            _ => {}
        }
    }
    (best.0 as u32, best.1 as u32)
}

/// The video's rectangle (x0, y0, x1, y1) right of `x_from`: the longest run of rows, then of
/// columns, that are mostly not black. Banners and the overlay's text sit in the black bars or
/// are separated from the picture by them, so they do not count.
fn video_box(img: &RgbImage, x_from: u32) -> (u32, u32, u32, u32) {
    let lit = |x: u32, y: u32| img.get_pixel(x, y).0.iter().any(|&c| c > 12);
    let (w, h) = img.dimensions();
    let rows: Vec<bool> = (0..h)
        .map(|y| (x_from..w).filter(|&x| lit(x, y)).count() * 10 > (w - x_from) as usize * 3)
        .collect();
    let (y0, y1) = longest_run(&rows);
    let cols: Vec<bool> = (0..w)
        .map(|x| {
            x >= x_from && (y0..y1).filter(|&y| lit(x, y)).count() * 10 > (y1 - y0) as usize * 3
        })
        .collect();
    let (x0, x1) = longest_run(&cols);
    assert!(
        x1 > x0 + 50 && y1 > y0 + 50,
        "no picture right of x = {x_from}"
    );
    (x0, y0, x1, y1)
}

fn std_dev(img: &RgbImage, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> f32 {
    let v: Vec<f32> = (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .map(|(x, y)| luma(img.get_pixel(x, y)))
        .collect();
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    (v.iter().map(|l| (l - mean).powi(2)).sum::<f32>() / v.len() as f32).sqrt()
}

/// Two styles, `alpha` and `beta`, then `extra` more (`s03`, `s04`, ...), as many as a real
/// style folder has.
fn style_dir(tmp: &Path, extra: usize) -> PathBuf {
    let dir = tmp.join("styles");
    std::fs::create_dir_all(&dir).unwrap();
    let parity = fixtures().join("parity");
    std::fs::copy(parity.join("img_style.png"), dir.join("alpha.png")).unwrap();
    std::fs::copy(parity.join("img_content.png"), dir.join("beta.png")).unwrap();
    for i in 0..extra {
        let from = if i % 2 == 0 {
            "img_style.png"
        } else {
            "img_content.png"
        };
        std::fs::copy(parity.join(from), dir.join(format!("s{:02}.png", i + 3))).unwrap();
    }
    dir
}

/// Starts the app on the test pattern with the fixture model and two styles.
fn launch(x: &Xvfb, tmp: &Path, exit_after: &str) -> (Child, Log) {
    launch_with_styles(x, tmp, exit_after, 0)
}

/// As [`launch`], with `extra` more styles.
fn launch_with_styles(x: &Xvfb, tmp: &Path, exit_after: &str, extra: usize) -> (Child, Log) {
    let styles = style_dir(tmp, extra);
    let mut app = stylecam()
        .args(["--source", "test-pattern", "--model"])
        .arg(fixtures().join("parity/tiny_ngf16_b1.safetensors"))
        .arg("--style")
        .arg(styles.join("alpha.png"))
        .args(["--exit-after", exit_after])
        .arg("--styles")
        .arg(&styles)
        .arg("--data-dir")
        .arg(tmp.join("data"))
        .arg("--snapshot-dir")
        .arg(tmp.join("shots"))
        .args(["--device", "cpu", "--resolution", "240p"])
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_RUNTIME_DIR", tmp)
        .env("STYLECAM_CONFIG_DIR", tmp.join("config"))
        .env("STYLECAM_LOG", "stylecam=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stylecam");
    let log = Log::follow(app.stderr.take().unwrap());
    let shown = log.wait_for("first frame shown", Duration::from_secs(60));
    assert!(shown, "no frame was shown; the app said:\n{}", log.text());
    (app, log)
}

/// The app's window, focused (XTEST keys go to the focused window; there is no window manager
/// to focus it).
fn focus(x: &Xvfb) -> String {
    let found = xdotool(&x.display, &["search", "--name", "^stylecam$"]);
    let window = found.lines().next().expect("a stylecam window").to_owned();
    xdotool(&x.display, &["windowfocus", "--sync", &window]);
    window
}

fn wait_exit(app: &mut Child, log: &Log, within: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + within;
    loop {
        if let Some(s) = app.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > end {
            app.kill().ok();
            panic!("the app did not exit:\n{}", log.text());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Mean |Δ| between the window's video (scaled to 320x240) and the raw test pattern as the
/// window would show it unstylised (mirrored, at 240p). The bars cover two thirds of the frame
/// and do not move, so an unstylised picture scores well under 20 whatever the frame number.
fn distance_from_raw_pattern(shot: &RgbImage, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> f64 {
    let video = image::imageops::crop_imm(shot, x0, y0, x1 - x0, y1 - y0).to_image();
    let video = image::imageops::resize(&video, 320, 240, image::imageops::FilterType::Triangle);
    let raw = stylecam::capture::TestPattern::new(640, 480, 30).render(0);
    let raw = image::imageops::resize(&raw, 320, 240, image::imageops::FilterType::Triangle);
    let raw = image::imageops::flip_horizontal(&raw);
    let mut sum = 0f64;
    // The top two thirds: the bars.
    for y in 0..150 {
        for x in 0..320 {
            let (a, b) = (video.get_pixel(x, y), raw.get_pixel(x, y));
            sum += (0..3)
                .map(|c| (a[c] as f64 - b[c] as f64).abs())
                .sum::<f64>()
                / 3.0;
        }
    }
    sum / (150.0 * 320.0)
}

/// The issue's exact run: `--source test-pattern --model <fixture> --style <image>
/// --exit-after 5`.
#[test]
fn live_window_shows_panel_and_stylised_video_and_takes_keys() {
    if !tools_present() {
        return;
    }
    let x = Xvfb::start();
    let tmp = tempfile::tempdir().unwrap();
    let (mut app, log) = launch(&x, tmp.path(), "5");
    let window = focus(&x);

    // A key changes the style.
    xdotool(&x.display, &["key", "Right"]);
    assert!(
        log.wait_for("style: beta", Duration::from_secs(3)),
        "Right did not change the style:\n{}",
        log.text()
    );

    // The panel has text; the video shows a picture that is not the raw pattern.
    let shot = screenshot(&x.display, &window, &tmp.path().join("window.png"));
    let (w, h) = shot.dimensions();
    assert!(w >= 600 && h >= 400, "window {w}x{h}");
    let panel = (0, 40, 200, h - 40);
    let bright = (panel.1..panel.3)
        .flat_map(|y| (panel.0..panel.2).map(move |x| (x, y)))
        .filter(|&(x, y)| luma(shot.get_pixel(x, y)) > 150.0)
        .count();
    assert!(
        bright > 500,
        "the panel region has no text ({bright} bright pixels)"
    );
    let video = video_box(&shot, 300);
    assert!(
        std_dev(&shot, video) > 8.0,
        "the video region is flat: {video:?}"
    );
    let d = distance_from_raw_pattern(&shot, video);
    assert!(
        d > 30.0,
        "the video looks like the raw pattern: mean |Δ| = {d:.1}"
    );

    // --exit-after closes the window cleanly.
    let status = wait_exit(&mut app, &log, Duration::from_secs(30));
    assert!(status.success(), "exit status {status}:\n{}", log.text());
    assert!(log.wait_for("--exit-after reached", Duration::from_secs(1)));
}

#[test]
fn snapshots_side_by_side_and_escape() {
    if !tools_present() {
        return;
    }
    let x = Xvfb::start();
    let tmp = tempfile::tempdir().unwrap();
    let (mut app, log) = launch(&x, tmp.path(), "60");
    let window = focus(&x);

    // A snapshot lands in --snapshot-dir as a PNG of the frame at processing resolution.
    xdotool(&x.display, &["key", "s"]);
    assert!(
        log.wait_for("saved ", Duration::from_secs(10)),
        "{}",
        log.text()
    );
    let shots: Vec<_> = std::fs::read_dir(tmp.path().join("shots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(shots.len(), 1, "{shots:?}");
    let snap = image::open(&shots[0]).unwrap().to_rgb8();
    assert_eq!(snap.dimensions(), (320, 240));

    // Side by side: the stylised half differs from the raw frame beside it.
    xdotool(&x.display, &["key", "o"]);
    std::thread::sleep(Duration::from_millis(1500));
    let shot = screenshot(&x.display, &window, &tmp.path().join("side-by-side.png"));
    let (x0, y0, x1, y1) = video_box(&shot, 300);
    let half = (x1 - x0) / 2;
    assert!(
        (half as f64 / (y1 - y0) as f64 - 4.0 / 3.0).abs() < 0.1,
        "two 4:3 pictures side by side: {:?}",
        (x0, y0, x1, y1)
    );
    let mut diff = 0f64;
    let mut n = 0usize;
    for y in y0..y1 {
        for dx in 2..half - 2 {
            let a = shot.get_pixel(x0 + dx, y);
            let b = shot.get_pixel(x0 + half + dx, y);
            diff += (0..3)
                .map(|c| (a[c] as f64 - b[c] as f64).abs())
                .sum::<f64>()
                / 3.0;
            n += 1;
        }
    }
    let diff = diff / n as f64;
    assert!(
        diff > 20.0,
        "stylised half too close to the original: mean |Δ| = {diff:.1}"
    );

    // Esc quits (not fullscreen), cleanly, long before --exit-after.
    xdotool(&x.display, &["key", "Escape"]);
    let status = wait_exit(&mut app, &log, Duration::from_secs(20));
    assert!(status.success(), "exit status {status}:\n{}", log.text());
    assert!(!log.text().contains("--exit-after reached"));
    // The settings were saved on the way out, with the view the keys left.
    let saved = std::fs::read_to_string(tmp.path().join("config/settings.json")).unwrap();
    assert!(saved.contains("\"side_by_side\": true"), "{saved}");
}

/// The bounding box of the rows, in the left `x_max` columns, that hold at least `min_run`
/// pixels within `tol` of `colour` (a filled button; stray pixels of that colour in pictures do
/// not count).
fn find_colour(
    img: &RgbImage,
    colour: [u8; 3],
    tol: u8,
    x_max: u32,
    min_run: usize,
) -> Option<(u32, u32, u32, u32)> {
    let mut found: Option<(u32, u32, u32, u32)> = None;
    for y in 0..img.height() {
        let xs: Vec<u32> = (0..x_max.min(img.width()))
            .filter(|&x| {
                let p = img.get_pixel(x, y);
                (0..3).all(|c| p[c].abs_diff(colour[c]) <= tol)
            })
            .collect();
        if xs.len() < min_run {
            continue;
        }
        let (a, b) = (xs[0], xs[xs.len() - 1]);
        found = Some(match found {
            None => (a, y, b, y),
            Some((x0, y0, x1, _)) => (x0.min(a), y0, x1.max(b), y),
        });
    }
    found
}

/// The Quit button's fill (`QUIT_FILL` in src/app/panel.rs).
const QUIT: [u8; 3] = [150, 40, 40];

/// On an 800x600 screen the first window fits, and in an 800x600 window with 21 styles every
/// control can be reached: the panel scrolls down to its last control, Quit, which works.
#[test]
fn every_control_is_reachable_at_800x600() {
    if !tools_present() {
        return;
    }
    let x = Xvfb::with_screen("800x600");
    let tmp = tempfile::tempdir().unwrap();
    let (mut app, log) = launch_with_styles(&x, tmp.path(), "60", 19);
    let window = focus(&x);
    let shot = screenshot(&x.display, &window, &tmp.path().join("first-800x600.png"));
    let (w, h) = shot.dimensions();
    assert!(
        w <= 800 && h <= 600,
        "the first window ({w}x{h}) does not fit the screen"
    );

    xdotool(&x.display, &["windowsize", &window, "800", "600"]);
    std::thread::sleep(Duration::from_millis(1500));
    let shot = screenshot(
        &x.display,
        &window,
        &tmp.path().join("panel-top-800x600.png"),
    );
    assert_eq!(shot.dimensions(), (800, 600));
    assert!(
        find_colour(&shot, QUIT, 4, 400, 12).is_none(),
        "Quit is visible before scrolling: the test would prove nothing"
    );

    // The wheel over the lower part of the panel scrolls it to the end. Redraws are slow on a
    // busy machine with a software GPU: scroll a little at a time and look again.
    xdotool(
        &x.display,
        &["mousemove", "--window", &window, "--sync", "120", "560"],
    );
    let end = Instant::now() + Duration::from_secs(40);
    let (x0, y0, x1, y1) = loop {
        xdotool(
            &x.display,
            &["click", "--repeat", "5", "--delay", "50", "5"],
        );
        std::thread::sleep(Duration::from_millis(700));
        let shot = screenshot(
            &x.display,
            &window,
            &tmp.path().join("panel-end-800x600.png"),
        );
        if let Some(found) = find_colour(&shot, QUIT, 4, 400, 12) {
            break found;
        }
        assert!(
            Instant::now() < end,
            "no Quit button after scrolling:\n{}",
            log.text()
        );
    };
    let (cx, cy) = ((x0 + x1) / 2, (y0 + y1) / 2);
    xdotool(
        &x.display,
        &[
            "mousemove",
            "--window",
            &window,
            "--sync",
            &cx.to_string(),
            &cy.to_string(),
        ],
    );
    std::thread::sleep(Duration::from_millis(200));
    xdotool(&x.display, &["click", "1"]);
    let status = wait_exit(&mut app, &log, Duration::from_secs(20));
    assert!(status.success(), "exit status {status}:\n{}", log.text());
    assert!(log.text().contains("quit from the panel"), "{}", log.text());
}

/// The pixels within `tol` of `colour` in the rectangle (x0, y0)-(x1, y1).
#[cfg(feature = "video")]
fn count_colour(
    img: &RgbImage,
    colour: [u8; 3],
    tol: u8,
    (x0, y0, x1, y1): (u32, u32, u32, u32),
) -> usize {
    (y0..y1.min(img.height()))
        .flat_map(|y| (x0..x1.min(img.width())).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let p = img.get_pixel(x, y);
            (0..3).all(|c| p[c].abs_diff(colour[c]) <= tol)
        })
        .count()
}

/// The MP4 files in `dir`, sorted; fails on any other file (a temporary one left behind).
#[cfg(feature = "video")]
fn mp4s(dir: &Path) -> Vec<PathBuf> {
    let names = common::file_names(dir);
    assert!(
        names.iter().all(|n| n.ends_with(".mp4")),
        "unexpected files: {names:?}"
    );
    names.iter().map(|n| dir.join(n)).collect()
}

/// R records what the window shows to an MP4 (a red dot and the time in the overlay while it
/// runs); closing the window mid-recording still leaves a playable file.
#[cfg(feature = "video")]
#[test]
fn r_records_an_mp4_and_closing_the_window_saves_one_too() {
    if !tools_present() {
        return;
    }
    let x = Xvfb::start();
    let tmp = tempfile::tempdir().unwrap();
    let (mut app, log) = launch(&x, tmp.path(), "90");
    let window = focus(&x);
    let shots = tmp.path().join("shots");

    let pressed = Instant::now();
    xdotool(&x.display, &["key", "r"]);
    assert!(
        log.wait_for("recording MP4", Duration::from_secs(5)),
        "{}",
        log.text()
    );
    std::thread::sleep(Duration::from_millis(3000));
    let shot = screenshot(&x.display, &window, &tmp.path().join("recording.png"));
    let (w, _) = shot.dimensions();
    let red = count_colour(&shot, [230, 30, 30], 6, (w.saturating_sub(260), 0, w, 90));
    assert!(
        red > 40,
        "no red recording dot top right ({red} red pixels)"
    );
    xdotool(&x.display, &["key", "r"]);
    // The recording spans at most the time between the two presses (longer than 3 s when a
    // busy machine slows the screenshot down).
    let held = pressed.elapsed().as_secs_f64();
    assert!(
        log.wait_for("recording saved", Duration::from_secs(30)),
        "{}",
        log.text()
    );
    let files = mp4s(&shots);
    assert_eq!(files.len(), 1, "{files:?}");
    let info = stylecam::video::probe(&files[0]).unwrap();
    assert_eq!((info.width, info.height), (320, 240), "{info:?}");
    assert_eq!(info.codec, "h264");
    let frames: Vec<_> = stylecam::video::Reader::open(&files[0])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let length = frames.last().unwrap().time - frames[0].time;
    assert!(frames.len() >= 4, "{} frames", frames.len());
    assert!(
        (1.5..held + 0.5).contains(&length),
        "{length:.2} s recorded while R was held for {held:.2} s"
    );
    // The file lasts until R stopped it: past its last frame's start, within the time held.
    let duration = info.duration.unwrap();
    assert!(
        duration > length && duration < held + 0.5,
        "{duration:.2} s long, last frame at {length:.2} s, R held {held:.2} s"
    );
    // The recording is the stylised picture, not the raw pattern.
    let raw = stylecam::capture::TestPattern::new(640, 480, 30).render(0);
    let raw = image::imageops::resize(&raw, 320, 240, image::imageops::FilterType::Triangle);
    let raw = image::imageops::flip_horizontal(&raw);
    let f = &frames[frames.len() / 2].image;
    let diff: f64 = f
        .as_raw()
        .iter()
        .zip(raw.as_raw())
        .map(|(a, b)| f64::from(a.abs_diff(*b)))
        .sum::<f64>()
        / f.as_raw().len() as f64;
    assert!(
        diff > 20.0,
        "the recording looks like the raw pattern: {diff:.1}"
    );

    // Again, and Esc closes the window while recording: the file is saved on the way out.
    xdotool(&x.display, &["key", "r"]);
    std::thread::sleep(Duration::from_millis(2000));
    xdotool(&x.display, &["key", "Escape"]);
    let status = wait_exit(&mut app, &log, Duration::from_secs(40));
    assert!(status.success(), "exit status {status}:\n{}", log.text());
    let files = mp4s(&shots);
    assert_eq!(files.len(), 2, "{files:?}");
    let n = stylecam::video::Reader::open(&files[1]).unwrap().count();
    assert!(n >= 1, "the second recording has {n} frames");
}
