//! The web page in a real browser: Debian's headless Chromium, driven over the DevTools
//! protocol. It loads the page, uploads a photo made in code, picks a style, waits for the
//! result and checks that the result differs from the photo; then the same at phone width, and a
//! readable error. Screenshots go to the system's temp dir (`stylecam-serve-browser/`).
//!
//! Skips (printing SKIPPED) without `chromium`, unless STYLECAM_REQUIRE_DISPLAY=1 (CI installs
//! it in `.ci/run`).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::server::*;
use headless_chrome::protocol::cdp::Emulation;
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};

fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .filter_map(|n| which(n))
        .next();
    if found.is_none() {
        if std::env::var("STYLECAM_REQUIRE_DISPLAY").as_deref() == Ok("1") {
            panic!(
                "chromium is not installed and STYLECAM_REQUIRE_DISPLAY=1 (.ci/run installs it)"
            );
        }
        eprintln!("SKIPPED serve_browser: no chromium (apt-get install chromium)");
    }
    found
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}

/// Chromium as this sandbox (and CI) allows it: headless, no sandbox (root), no GPU, and none of
/// its background connections, with a fresh profile.
fn launch(path: PathBuf, profile: &std::path::Path) -> Browser {
    let args = [
        "--disable-quic",
        "--disable-component-update",
        "--disable-background-networking",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
    ];
    let options = LaunchOptions::default_builder()
        .path(Some(path))
        .headless(true)
        .sandbox(false)
        .enable_gpu(false)
        .user_data_dir(Some(profile.to_path_buf()))
        .window_size(Some((1280, 900)))
        .idle_browser_timeout(Duration::from_secs(300))
        .args(args.iter().map(std::ffi::OsStr::new).collect())
        .build()
        .unwrap();
    Browser::new(options).expect("cannot start chromium")
}

fn eval(tab: &Tab, js: &str) -> serde_json::Value {
    tab.evaluate(js, true)
        .unwrap_or_else(|e| panic!("{js}: {e}"))
        .value
        .unwrap_or(serde_json::Value::Null)
}

/// Polls a JavaScript condition until it is true.
fn wait_js(tab: &Tab, js: &str, timeout: Duration) {
    let ok = wait_for(timeout, || {
        (eval(tab, js) == serde_json::Value::Bool(true)).then_some(())
    });
    if ok.is_none() {
        let error = eval(tab, "document.getElementById('error-text').textContent");
        panic!("timed out waiting for `{js}`; the page's error: {error}");
    }
}

/// Waits until the 21 built-in styles' swatch pictures have loaded.
fn swatches_loaded(tab: &Tab) {
    wait_js(
        tab,
        "document.querySelectorAll('.swatch img').length === 21 && \
         [...document.querySelectorAll('.swatch img')].every(i => i.complete && i.naturalWidth > 0)",
        Duration::from_secs(30),
    );
}

/// Saves a screenshot: the viewport, or with `full = Some((width, mobile))` the whole page at
/// that width (the viewport is stretched to the page's height, then put back to `restore`).
fn screenshot(tab: &Tab, name: &str, full: Option<(u32, bool, u32)>) -> PathBuf {
    if let Some((width, mobile, _)) = full {
        let h = eval(tab, "document.documentElement.scrollHeight")
            .as_f64()
            .unwrap() as u32;
        phone(tab, width, h, mobile);
        std::thread::sleep(Duration::from_millis(300));
    }
    let dir = std::env::temp_dir().join("stylecam-serve-browser");
    std::fs::create_dir_all(&dir).unwrap();
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    if let Some((width, mobile, height)) = full {
        phone(tab, width, height, mobile);
    }
    path
}

fn phone(tab: &Tab, width: u32, height: u32, mobile: bool) {
    tab.call_method(Emulation::SetDeviceMetricsOverride {
        width,
        height,
        device_scale_factor: if mobile { 2.0 } else { 1.0 },
        mobile,
        scale: None,
        screen_width: None,
        screen_height: None,
        position_x: None,
        position_y: None,
        dont_set_visible_size: None,
        screen_orientation: None,
        viewport: None,
        display_feature: None,
        device_posture: None,
    })
    .unwrap();
}

/// The result picture's pixels as the page shows them (drawn on a canvas and read back).
fn result_image(tab: &Tab) -> image::RgbImage {
    let json = eval(
        tab,
        "(() => { const img = document.getElementById('result-img'); \
         const c = document.createElement('canvas'); \
         c.width = img.naturalWidth; c.height = img.naturalHeight; \
         const g = c.getContext('2d'); g.drawImage(img, 0, 0); \
         const d = g.getImageData(0, 0, c.width, c.height).data; \
         const rgb = []; for (let i = 0; i < d.length; i += 4) rgb.push(d[i], d[i + 1], d[i + 2]); \
         return JSON.stringify([c.width, c.height, rgb]); })()",
    );
    let (w, h, rgb): (u32, u32, Vec<u8>) =
        serde_json::from_str(json.as_str().expect("the page's result")).unwrap();
    image::RgbImage::from_raw(w, h, rgb).unwrap()
}

#[test]
fn the_page_stylises_a_photo_in_a_real_browser() {
    let Some(chrome) = chromium() else { return };
    let s = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let photo = photo(240, 160, 6);
    let photo_path = dir.path().join("photo.png");
    photo.save(&photo_path).unwrap();
    let browser = launch(chrome, &dir.path().join("profile"));
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(60));

    tab.navigate_to(&s.url("/"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    tab.wait_for_element(".swatch[data-name='candy']").unwrap();
    let swatches = eval(&tab, "document.querySelectorAll('.swatch').length");
    assert_eq!(swatches, 21);
    swatches_loaded(&tab);

    // Upload the photo, pick a style, set the size, go.
    tab.find_element("#photo-input")
        .unwrap()
        .set_input_files(&[photo_path.to_str().unwrap()])
        .unwrap();
    wait_js(
        &tab,
        "document.getElementById('original-img').naturalWidth === 240",
        Duration::from_secs(10),
    );
    tab.find_element(".swatch[data-name='mosaic']")
        .unwrap()
        .click()
        .unwrap();
    assert_eq!(
        eval(
            &tab,
            "document.querySelector(\".swatch[data-name='mosaic']\").getAttribute('aria-checked')"
        ),
        "true"
    );
    eval(&tab, "document.getElementById('size').value = '256'");
    tab.find_element("#go").unwrap().click().unwrap();
    wait_js(
        &tab,
        "document.getElementById('result-img').dataset.state === 'done'",
        Duration::from_secs(120),
    );
    assert_eq!(
        eval(&tab, "document.getElementById('download').hidden"),
        false
    );
    assert!(eval(&tab, "document.getElementById('status').textContent")
        .as_str()
        .unwrap()
        .starts_with("Done"));
    let result = result_image(&tab);
    assert_eq!(result.dimensions(), (256, 171));
    let resized = image::imageops::resize(&photo, 256, 171, image::imageops::FilterType::Triangle);
    let d = mean_abs_diff(&result, &resized);
    assert!(d > 10.0, "the result differs from the photo (mean |Δ| {d})");
    // It is what the API gives for the page's settings.
    let api = post(
        &s.url("/api/stylize?style=mosaic&size=256&brush=1&strength=1&preserve_color=false"),
        &[("Content-Type", "image/png")],
        &png(&photo),
    );
    let d = mean_abs_diff(&result, &api.image());
    assert!(d < 1.0, "the page shows the API's picture (mean |Δ| {d})");
    screenshot(&tab, "desktop.png", Some((1280, false, 900)));

    // Phone width: one column, nothing wider than the screen.
    phone(&tab, 390, 844, true);
    std::thread::sleep(Duration::from_millis(300));
    let overflow = eval(
        &tab,
        "document.documentElement.scrollWidth - window.innerWidth",
    );
    assert_eq!(overflow, 0, "no sideways scrolling at phone width");
    let columns = eval(
        &tab,
        "getComputedStyle(document.querySelector('.results')).gridTemplateColumns.split(' ').length",
    );
    assert_eq!(columns, 1);
    screenshot(&tab, "phone.png", Some((390, true, 844)));

    // An error reads as a message, not a blank page: a server-side refusal (a bad style name).
    eval(
        &tab,
        "document.getElementById('style-name').value = '../nope'",
    );
    tab.find_element("#add-style summary")
        .unwrap()
        .click()
        .unwrap();
    tab.find_element("#style-file")
        .unwrap()
        .set_input_files(&[photo_path.to_str().unwrap()])
        .unwrap();
    tab.find_element("#style-add").unwrap().click().unwrap();
    wait_js(
        &tab,
        "!document.getElementById('error').hidden",
        Duration::from_secs(10),
    );
    let msg = eval(&tab, "document.getElementById('error-text').textContent");
    assert!(
        msg.as_str().unwrap().contains("cannot name a style"),
        "{msg}"
    );
    // It shows where the user is, not at the top of the page.
    let seen = eval(
        &tab,
        "(() => { const r = document.getElementById('error').getBoundingClientRect(); \
         return r.top >= 0 && r.bottom <= window.innerHeight && r.width > 300; })()",
    );
    assert_eq!(seen, true, "the error is on screen");
    screenshot(&tab, "phone-error.png", None);

    // A file that claims to be a picture but is not: the page says so before sending it.
    let fake = dir.path().join("fake.png");
    std::fs::write(&fake, "not a picture at all").unwrap();
    eval(&tab, "document.getElementById('error-close').click()");
    tab.find_element("#photo-input")
        .unwrap()
        .set_input_files(&[fake.to_str().unwrap()])
        .unwrap();
    wait_js(
        &tab,
        "!document.getElementById('error').hidden",
        Duration::from_secs(10),
    );
    let msg = eval(&tab, "document.getElementById('error-text').textContent");
    assert!(
        msg.as_str()
            .unwrap()
            .contains("fake.png cannot be read as a picture"),
        "{msg}"
    );
    assert_eq!(eval(&tab, "document.getElementById('go').disabled"), true);

    // The live tab shows the stream.
    phone(&tab, 1280, 900, false);
    tab.find_element("#tab-live").unwrap().click().unwrap();
    wait_js(
        &tab,
        "document.getElementById('live-img').naturalWidth === 640",
        Duration::from_secs(60),
    );
    wait_js(
        &tab,
        "document.getElementById('live-status').textContent.includes('test pattern')",
        Duration::from_secs(10),
    );
    assert_eq!(
        eval(&tab, "document.getElementById('error').hidden"),
        true,
        "switching tabs clears an old error"
    );
    screenshot(&tab, "live.png", None);
    // Its controls drive the stream's.
    eval(
        &tab,
        "(() => { const s = document.getElementById('live-style'); s.value = 'candy'; \
         s.dispatchEvent(new Event('input')); })()",
    );
    let set = wait_for(Duration::from_secs(10), || {
        (get(&s.url("/api/controls")).json()["style"] == "candy").then_some(())
    });
    assert!(set.is_some(), "the live tab set the style");

    // With --token: a browser with no token gets a page that says what to do; opened as
    // /?token=T, the page loads its script, its styles and the swatches.
    let t = Server::start(&["--token", "s3cret"]);
    tab.navigate_to(&t.url("/"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    let text = eval(&tab, "document.body.innerText");
    assert!(
        text.as_str().unwrap().contains("needs its access token"),
        "{text}"
    );
    tab.navigate_to(&t.url("/?token=s3cret"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    swatches_loaded(&tab);
    assert_eq!(
        eval(
            &tab,
            "getComputedStyle(document.querySelector('header')).position"
        ),
        "sticky",
        "the stylesheet loaded"
    );
}
