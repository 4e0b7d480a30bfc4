//! `stylecam fetch` against a real HTTP server on 127.0.0.1 (a small threaded one below),
//! serving the tiny fixture model as `21styles.model` and the real style images from
//! `../shared/styles/21styles/` (tests that need those skip without `../shared`).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stylecam::fetch::{self, STYLE_IMAGES};
use stylecam::paths::DataDir;

const MODEL_PATH: &str = "/releases/download/v0.1/21styles.model";
const STYLES_PATH: &str = "/raw/75d2560/experiments/images/21styles/";

/// How the server answers the n-th request for a path (the last entry repeats).
#[derive(Debug, Clone, Copy)]
enum Reply {
    /// 200, or 206 when the request has `Range: bytes=N-`.
    Normal,
    /// 200 with the whole body whatever the request says.
    IgnoreRange,
    /// Like `Normal`, but closes the connection after this many body bytes.
    Cut(usize),
    /// Like `Normal`, but goes quiet after this many body bytes.
    Stall(usize),
    /// Goes quiet before sending anything.
    StallHead,
    /// This status, no body.
    Status(u16),
}

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    range: Option<String>,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, (Vec<u8>, Vec<Reply>)>,
    seen: Vec<Seen>,
}

struct Server {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let st = st.clone();
                std::thread::spawn(move || handle(stream, &st));
            }
        });
        Server { port, state }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn route(&self, path: &str, body: Vec<u8>, script: &[Reply]) {
        let mut s = self.state.lock().unwrap();
        s.routes.insert(path.to_string(), (body, script.to_vec()));
    }

    fn serve_model(&self, script: &[Reply]) {
        self.route(MODEL_PATH, model_bytes(), script);
    }

    fn serve_styles(&self, styles: &Path) {
        for (name, _) in STYLE_IMAGES {
            let body = std::fs::read(styles.join(name)).unwrap();
            self.route(&format!("{STYLES_PATH}{name}"), body, &[Reply::Normal]);
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    fn requests_for(&self, path: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.target.ends_with(path))
            .collect()
    }
}

fn handle(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    let Some((method, target, headers)) = read_head(&mut reader) else {
        return;
    };
    if method == "CONNECT" {
        // A proxy: note the CONNECT, open the "tunnel", and serve what comes through it.
        log(state, &method, &target, None);
        if out
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .is_err()
        {
            return;
        }
        let Some((method, target, headers)) = read_head(&mut reader) else {
            return;
        };
        respond(&mut out, state, &method, &target, &headers);
    } else {
        respond(&mut out, state, &method, &target, &headers);
    }
}

fn read_head(reader: &mut impl BufRead) -> Option<(String, String, HashMap<String, String>)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Some((method, target, headers))
}

fn log(state: &Mutex<State>, method: &str, target: &str, range: Option<String>) {
    state.lock().unwrap().seen.push(Seen {
        method: method.to_string(),
        target: target.to_string(),
        range,
    });
}

fn respond(
    out: &mut TcpStream,
    state: &Mutex<State>,
    method: &str,
    target: &str,
    headers: &HashMap<String, String>,
) {
    let range = headers.get("range").cloned();
    // Absolute-form targets (through a proxy) are matched by their path.
    let path = match target.find("://") {
        Some(i) => target[i + 3..]
            .find('/')
            .map_or("/", |j| &target[i + 3 + j..]),
        None => target,
    }
    .to_string();
    let (body, reply) = {
        let mut s = state.lock().unwrap();
        let n = s.seen.iter().filter(|x| x.target == target).count();
        s.seen.push(Seen {
            method: method.to_string(),
            target: target.to_string(),
            range: range.clone(),
        });
        match s.routes.get(&path) {
            Some((body, script)) => (body.clone(), script[n.min(script.len() - 1)]),
            None => (Vec::new(), Reply::Status(404)),
        }
    };
    let quiet = || std::thread::sleep(Duration::from_secs(30));
    let from = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let (status, range_head, from) = match (reply, from) {
        (Reply::Status(code), _) => {
            let head = format!(
                "HTTP/1.1 {code} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            out.write_all(head.as_bytes()).ok();
            return;
        }
        (Reply::StallHead, _) => {
            quiet();
            return;
        }
        (Reply::IgnoreRange, _) | (_, None) => ("200 OK", String::new(), 0),
        (_, Some(f)) if f < body.len() => (
            "206 Partial Content",
            format!(
                "Content-Range: bytes {f}-{}/{}\r\n",
                body.len() - 1,
                body.len()
            ),
            f,
        ),
        (_, Some(_)) => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                body.len()
            );
            out.write_all(head.as_bytes()).ok();
            return;
        }
    };
    let rest = &body[from..];
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{range_head}Accept-Ranges: bytes\r\nConnection: close\r\n\r\n",
        rest.len()
    );
    if out.write_all(head.as_bytes()).is_err() {
        return;
    }
    match reply {
        Reply::Cut(n) => {
            out.write_all(&rest[..n.min(rest.len())]).ok();
            out.flush().ok();
            // Dropping the stream closes the connection mid-body.
        }
        Reply::Stall(n) => {
            out.write_all(&rest[..n.min(rest.len())]).ok();
            out.flush().ok();
            quiet();
        }
        _ => {
            out.write_all(rest).ok();
        }
    }
}

fn model_bytes() -> Vec<u8> {
    std::fs::read(common::fixtures().join("parity/tiny_ngf8_b2_legacy_py3.model")).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    fetch::sha256_hex(bytes)
}

/// `stylecam fetch --mirror SERVER --data-dir DIR ARGS`, with no proxy from the environment
/// unless the test sets one.
fn fetch_cmd(mirror: &str, dir: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = common::stylecam();
    cmd.arg("fetch")
        .arg("--mirror")
        .arg(mirror)
        .arg("--data-dir")
        .arg(dir)
        .args(args);
    for var in [
        "ALL_PROXY",
        "all_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
        "STYLECAM_DATA_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn run(cmd: &mut std::process::Command) -> (Output, String, String) {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// Every file under `dir`, relative.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn no_leftovers(dir: &Path) {
    for f in files_under(dir) {
        let s = f.to_string_lossy();
        assert!(
            !s.ends_with(".part") && !s.contains(".stylecam-"),
            "left behind: {s}"
        );
    }
}

#[test]
fn fetch_downloads_checks_records_and_reruns_download_nothing() {
    let Some(shared) = common::shared_dir("fetch_downloads_checks_records_and_reruns") else {
        return;
    };
    let styles = shared.join("styles/21styles");
    let server = Server::start();
    server.serve_model(&[Reply::Normal]);
    server.serve_styles(&styles);
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::at(tmp.path());
    assert_eq!(fetch::missing(&data).len(), 22);
    assert!(!fetch::status(&data).is_complete());

    let (out, stdout, stderr) = run(&mut fetch_cmd(
        &server.url(),
        tmp.path(),
        &["--timeout", "5"],
    ));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(server.seen().len(), 22, "one request per file");
    let model = model_bytes();
    let model_sha = sha256(&model);
    assert_eq!(std::fs::read(data.original_model()).unwrap(), model);
    assert!(stdout.contains(&model_sha), "model sha printed: {stdout}");
    assert!(stdout.contains("ngf 8, 2 blocks"), "{stdout}");
    let record = std::fs::read_to_string(fetch::model_record(&data)).unwrap();
    assert_eq!(record, format!("{model_sha}  21styles.model\n"));
    for (name, _) in STYLE_IMAGES {
        assert_eq!(
            std::fs::read(data.styles().join(name)).unwrap(),
            std::fs::read(styles.join(name)).unwrap(),
            "{name}"
        );
        assert!(stdout.contains(name), "one line per file: {name}");
    }
    no_leftovers(tmp.path());
    assert!(fetch::missing(&data).is_empty());
    assert!(fetch::status(&data).is_complete());

    // Everything present and valid: nothing is downloaded, and it says so.
    let (out, stdout, stderr) = run(&mut fetch_cmd(&server.url(), tmp.path(), &[]));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(server.seen().len(), 22, "a re-run downloads nothing");
    assert!(stdout.contains("nothing to download"), "{stdout}");
    assert!(stdout.contains(&model_sha), "{stdout}");

    // `--check` agrees.
    let (out, stdout, stderr) = run(common::stylecam()
        .args(["fetch", "--check", "--data-dir"])
        .arg(tmp.path()));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("all 22 files are present and valid"),
        "{stdout}"
    );
    assert_eq!(server.seen().len(), 22, "--check downloads nothing");

    // A present image with the wrong hash, and a model that differs from its record, are
    // downloaded again; nothing else is.
    let wave = data.styles().join("wave.jpg");
    let mut bytes = std::fs::read(&wave).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&wave, &bytes).unwrap();
    let mut m = model.clone();
    let last = m.len() - 1;
    m[last] ^= 0x01; // the last float of the data: still loads, but not the recorded file
    std::fs::write(data.original_model(), &m).unwrap();
    assert!(!fetch::status(&data).is_complete());
    let (out, stdout, stderr) = run(&mut fetch_cmd(&server.url(), tmp.path(), &[]));
    assert!(out.status.success(), "{stderr}");
    let seen = server.seen();
    assert_eq!(seen.len(), 24, "{seen:?}");
    assert!(seen[22..].iter().any(|s| s.target.ends_with("wave.jpg")));
    assert!(seen[22..]
        .iter()
        .any(|s| s.target.ends_with("21styles.model")));
    assert!(stdout.contains("replaced an invalid copy"), "{stdout}");
    assert_eq!(
        std::fs::read(&wave).unwrap(),
        std::fs::read(styles.join("wave.jpg")).unwrap()
    );
    assert_eq!(std::fs::read(data.original_model()).unwrap(), model);

    // `--force` downloads everything again.
    let (out, _, stderr) = run(&mut fetch_cmd(&server.url(), tmp.path(), &["--force"]));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(server.seen().len(), 24 + 22);
    no_leftovers(tmp.path());
}

#[test]
fn a_404_is_named_no_retry_and_no_file_left_behind() {
    let server = Server::start(); // serves nothing: every path is a 404
    let tmp = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = run(&mut fetch_cmd(&server.url(), tmp.path(), &[]));
    assert!(!out.status.success(), "{stdout}");
    let model_url = format!("{}{MODEL_PATH}", server.url());
    assert!(
        stderr.contains(&format!(
            "{model_url}: the server answered HTTP 404 Not Found"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("22 of 22 files failed"), "{stderr}");
    assert!(
        stderr.contains(&format!("{STYLES_PATH}candy.jpg")),
        "{stderr}"
    );
    assert!(stderr.contains("check --mirror"), "what to do: {stderr}");
    assert_eq!(server.seen().len(), 22, "a 404 is not retried");
    assert!(
        files_under(tmp.path()).is_empty(),
        "{:?}",
        files_under(tmp.path())
    );
}

#[test]
fn a_cut_off_download_resumes_with_a_range_request() {
    let server = Server::start();
    server.serve_model(&[Reply::Cut(100_000), Reply::Normal]);
    let tmp = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = run(&mut fetch_cmd(
        &server.url(),
        tmp.path(),
        &["--only", "model", "--timeout", "5"],
    ));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let seen = server.requests_for(MODEL_PATH);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].range, None);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=100000-"));
    assert!(
        stderr.contains("retry 1 of 4"),
        "the cut is reported: {stderr}"
    );
    let data = DataDir::at(tmp.path());
    assert_eq!(std::fs::read(data.original_model()).unwrap(), model_bytes());
    assert!(stdout.contains(&sha256(&model_bytes())), "{stdout}");
    no_leftovers(tmp.path());
}

#[test]
fn a_server_that_ignores_range_is_restarted_cleanly() {
    let server = Server::start();
    server.serve_model(&[Reply::Cut(100_000), Reply::IgnoreRange]);
    let tmp = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = run(&mut fetch_cmd(
        &server.url(),
        tmp.path(),
        &["--only", "model", "--timeout", "5"],
    ));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let seen = server.requests_for(MODEL_PATH);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].range.as_deref(), Some("bytes=100000-"));
    let data = DataDir::at(tmp.path());
    assert_eq!(std::fs::read(data.original_model()).unwrap(), model_bytes());
    no_leftovers(tmp.path());
}

#[test]
fn a_cut_off_download_without_retries_fails_and_leaves_nothing() {
    let server = Server::start();
    server.serve_model(&[Reply::Cut(100_000)]);
    let tmp = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = run(&mut fetch_cmd(
        &server.url(),
        tmp.path(),
        &["--only", "model", "--retries", "0"],
    ));
    assert!(!out.status.success(), "{stdout}");
    let url = format!("{}{MODEL_PATH}", server.url());
    assert!(stderr.contains(&url), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{url}: the download stopped after 100000 of {} bytes",
            model_bytes().len()
        )),
        "{stderr}"
    );
    assert_eq!(server.requests_for(MODEL_PATH).len(), 1);
    assert!(
        files_under(tmp.path()).is_empty(),
        "{:?}",
        files_under(tmp.path())
    );
}

#[test]
fn a_server_error_is_retried() {
    let server = Server::start();
    server.serve_model(&[Reply::Status(503), Reply::Normal]);
    let tmp = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = run(&mut fetch_cmd(
        &server.url(),
        tmp.path(),
        &["--only", "model"],
    ));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("HTTP 503"), "{stderr}");
    assert_eq!(server.requests_for(MODEL_PATH).len(), 2);
}

#[test]
fn a_wrong_checksum_is_reported_and_not_kept() {
    let Some(shared) = common::shared_dir("a_wrong_checksum_is_reported_and_not_kept") else {
        return;
    };
    let styles = shared.join("styles/21styles");
    let server = Server::start();
    server.serve_styles(&styles);
    let mut candy = std::fs::read(styles.join("candy.jpg")).unwrap();
    candy[1000] ^= 0x55;
    let bad_sha = sha256(&candy);
    server.route(&format!("{STYLES_PATH}candy.jpg"), candy, &[Reply::Normal]);
    let tmp = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = run(&mut fetch_cmd(
        &server.url(),
        tmp.path(),
        &["--only", "styles"],
    ));
    assert!(!out.status.success(), "{stdout}");
    let url = format!("{}{STYLES_PATH}candy.jpg", server.url());
    assert!(
        stderr.contains(&format!("{url}: wrong SHA-256 (expected 1af09b2c")),
        "{stderr}"
    );
    assert!(stderr.contains(&bad_sha), "{stderr}");
    assert!(stderr.contains("1 of 21 files failed"), "{stderr}");
    assert_eq!(
        server.requests_for("candy.jpg").len(),
        1,
        "a wrong file is not retried"
    );
    let data = DataDir::at(tmp.path());
    assert!(!data.styles().join("candy.jpg").exists());
    assert!(data.styles().join("wave.jpg").exists());
    no_leftovers(tmp.path());
}

#[test]
fn a_file_that_is_not_a_model_is_not_kept() {
    let server = Server::start();
    let png = std::fs::read(common::fixtures().join("parity/img_style.png")).unwrap();
    server.route(MODEL_PATH, png, &[Reply::Normal]);
    let tmp = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = run(&mut fetch_cmd(
        &server.url(),
        tmp.path(),
        &["--only", "model"],
    ));
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("not a usable MSG-Net model"), "{stderr}");
    assert!(
        files_under(tmp.path()).is_empty(),
        "{:?}",
        files_under(tmp.path())
    );
}

#[test]
fn a_stalled_server_times_out_naming_the_url() {
    let server = Server::start();
    // Stalls mid-body, then (on the retry) before answering at all.
    server.serve_model(&[Reply::Stall(1000), Reply::StallHead]);
    let tmp = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let (out, stdout, stderr) = run(&mut fetch_cmd(
        &server.url(),
        tmp.path(),
        &["--only", "model", "--timeout", "1", "--retries", "1"],
    ));
    let took = start.elapsed();
    assert!(!out.status.success(), "{stdout}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let url = format!("{}{MODEL_PATH}", server.url());
    assert!(
        stderr.contains(&format!("{url}: timed out after 1 s waiting for more data")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{url}: timed out after 1 s waiting for the response"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--timeout"), "what to do: {stderr}");
    assert_eq!(server.requests_for(MODEL_PATH).len(), 2);
    assert!(
        files_under(tmp.path()).is_empty(),
        "{:?}",
        files_under(tmp.path())
    );
}

#[test]
fn an_unreachable_mirror_fails_fast_and_names_the_host() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mirror = format!("http://127.0.0.1:{port}");
    let tmp = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let (out, stdout, stderr) = run(&mut fetch_cmd(&mirror, tmp.path(), &["--retries", "1"]));
    assert!(!out.status.success(), "{stdout}");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(
        stderr.contains(&format!("{mirror}{MODEL_PATH}: cannot reach the server")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "Robert_Delaunay,_1906,_Portrait.jpg and 20 more: not tried, because 127.0.0.1:{port} could not be reached"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("HTTPS_PROXY"), "what to do: {stderr}");
    assert!(
        files_under(tmp.path()).is_empty(),
        "{:?}",
        files_under(tmp.path())
    );
}

#[test]
fn the_proxy_from_the_environment_is_used() {
    // The test server plays the proxy for a mirror whose host does not resolve. ureq tunnels
    // every request through a CONNECT, plain http included.
    let proxy = Server::start();
    proxy.serve_model(&[Reply::Normal]);
    let tmp = tempfile::tempdir().unwrap();
    let mirror = "http://stylecam-mirror.invalid";
    let (out, stdout, stderr) =
        run(fetch_cmd(mirror, tmp.path(), &["--only", "model"]).env("HTTP_PROXY", proxy.url()));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains(&format!("HTTP proxy 127.0.0.1:{}", proxy.port)),
        "{stdout}"
    );
    let seen = proxy.seen();
    assert_eq!(seen[0].method, "CONNECT", "{seen:?}");
    assert_eq!(seen[0].target, "stylecam-mirror.invalid:80");
    assert!(seen[1].target.ends_with(MODEL_PATH), "{seen:?}");
    let data = DataDir::at(tmp.path());
    assert_eq!(std::fs::read(data.original_model()).unwrap(), model_bytes());

    // NO_PROXY sends it straight to the (unresolvable) host instead.
    let tmp = tempfile::tempdir().unwrap();
    let (out, _, stderr) =
        run(
            fetch_cmd(mirror, tmp.path(), &["--only", "model", "--retries", "0"])
                .env("HTTP_PROXY", proxy.url())
                .env("NO_PROXY", "stylecam-mirror.invalid"),
        );
    assert!(!out.status.success());
    assert!(stderr.contains("cannot reach the server"), "{stderr}");
    assert_eq!(proxy.seen().len(), 2, "the proxy saw nothing more");
}

#[test]
fn status_and_a_hand_placed_model_without_a_record() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::at(tmp.path());
    let status = fetch::status(&data);
    assert_eq!(status.entries.len(), 22);
    assert!(status
        .entries
        .iter()
        .all(|(_, s)| *s == fetch::State::Missing));
    assert!(!status.model_ready());

    // A model put in place by hand that loads is adopted: its SHA-256 is recorded, nothing is
    // downloaded (the mirror is a port nobody listens on).
    std::fs::create_dir_all(data.original_model().parent().unwrap()).unwrap();
    std::fs::write(data.original_model(), model_bytes()).unwrap();
    assert!(fetch::status(&data).model_ready());
    let options = fetch::Options {
        source: fetch::Source::mirror("http://127.0.0.1:9"),
        only: fetch::Only::Model,
        ..fetch::Options::default()
    };
    let mut events = Vec::new();
    let report = fetch::run(&data, &options, &mut |e| events.push(format!("{e:?}")));
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.downloaded(), 0);
    match &report.items[0].outcome {
        fetch::Outcome::Present { model: Some(m) } => {
            assert!(m.newly_recorded);
            assert_eq!((m.ngf, m.blocks), (8, 2));
            assert_eq!(m.sha256, sha256(&model_bytes()));
        }
        other => panic!("{other:?}"),
    }
    assert!(events[0].starts_with("Present"), "{events:?}");
    let record = std::fs::read_to_string(fetch::model_record(&data)).unwrap();
    assert!(record.starts_with(&sha256(&model_bytes())));
    no_leftovers(tmp.path());

    // A record that no longer matches makes the model invalid.
    std::fs::write(
        fetch::model_record(&data),
        format!("{}  21styles.model\n", "0".repeat(64)),
    )
    .unwrap();
    assert!(!fetch::status(&data).model_ready());
}
