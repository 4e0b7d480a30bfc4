//! A bounded load test on loopback: concurrent clients sending a mix of valid photos and invalid
//! requests (not pictures, unknown styles, numbers out of range), small pictures made in code.
//! Every answer must match its request (the right status for its kind, and for a photo the
//! picture that photo gives alone), the counts must add up (here and in /metrics), and the
//! server must stay up. It prints p50/p99 latency, the 503s and the server's RSS before and after.
//!
//! CI runs a short version (4 clients x 25 requests). The full one:
//! `STYLECAM_LOAD=8x200 cargo test --release --test serve_load -- --nocapture`.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::server::*;

const STYLES: [&str; 2] = ["candy", "mosaic"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Photo,
    NotAnImage,
    UnknownStyle,
    OutOfRange,
}

struct Outcome {
    kind: Kind,
    status: u16,
    latency: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[test]
fn mixed_load_is_answered_in_full_and_in_order() {
    let (clients, per_client) = std::env::var("STYLECAM_LOAD")
        .ok()
        .and_then(|v| {
            let (a, b) = v.split_once('x')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .unwrap_or((4usize, 25usize));
    let s = Server::start(&["--queue", "4"]);

    // Each client has its own photo (its own size, so that a mixed-up answer shows); what each
    // photo gives alone is fetched first, which also computes the style targets.
    let photos: Vec<_> = (0..clients as u32)
        .map(|c| photo(24 + 4 * c, 16 + 2 * c, c))
        .collect();
    let mut expected = HashMap::new();
    for (c, p) in photos.iter().enumerate() {
        for style in STYLES {
            let r = post(
                &s.url(&format!("/api/stylize?style={style}")),
                &[("Content-Type", "image/png")],
                &png(p),
            );
            assert_eq!(r.status, 200, "{}", r.text());
            expected.insert((c, style), r.image());
        }
    }
    let warmup = expected.len();
    let rss_before = s.rss_kib();

    let started = Instant::now();
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (s, photos, expected) = (&s, &photos, &expected);
                scope.spawn(move || {
                    let agent = agent();
                    let body = png(&photos[c]);
                    let mut out = Vec::new();
                    for i in 0..per_client {
                        let kind = match (i + c) % 5 {
                            0..=2 => Kind::Photo,
                            3 => [Kind::NotAnImage, Kind::UnknownStyle, Kind::OutOfRange][i % 3],
                            _ => Kind::NotAnImage,
                        };
                        let style = STYLES[i % 2];
                        let (query, payload): (String, &[u8]) = match kind {
                            Kind::Photo => (format!("style={style}"), &body),
                            Kind::NotAnImage => (format!("style={style}"), b"not a picture at all"),
                            Kind::UnknownStyle => ("style=no-such-style".into(), &body),
                            Kind::OutOfRange => (format!("style={style}&strength=7"), &body),
                        };
                        let t = Instant::now();
                        let r = post_with(
                            &agent,
                            &s.url(&format!("/api/stylize?{query}")),
                            &[("Content-Type", "image/png")],
                            payload,
                        );
                        let latency = t.elapsed();
                        match (kind, r.status) {
                            (Kind::Photo, 200) => {
                                let img = r.image();
                                let want = &expected[&(c, style)];
                                assert_eq!(img.dimensions(), want.dimensions(), "client {c} #{i}");
                                let d = mean_abs_diff(&img, want);
                                assert!(d < 0.5, "client {c} #{i}: not its own picture ({d})");
                            }
                            (Kind::Photo, 503) => {
                                r.error(503, "busy");
                                assert!(r.header("retry-after").is_some());
                            }
                            (Kind::NotAnImage, _) => {
                                r.error(415, "not_an_image");
                            }
                            (Kind::UnknownStyle, _) => {
                                r.error(400, "unknown_style");
                            }
                            (Kind::OutOfRange, _) => {
                                r.error(400, "out_of_range");
                            }
                            (k, st) => panic!("client {c} #{i}: {k:?} answered {st}: {}", r.text()),
                        }
                        out.push(Outcome {
                            kind,
                            status: r.status,
                            latency,
                        });
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let wall = started.elapsed();
    let rss_after = s.rss_kib();

    let total = clients * per_client;
    assert_eq!(outcomes.len(), total, "every request was answered");
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let ok = count(&|o| o.status == 200);
    let busy = count(&|o| o.status == 503);
    let refused = count(&|o| o.kind != Kind::Photo);
    let photos_sent = count(&|o| o.kind == Kind::Photo);
    assert_eq!(ok + busy, photos_sent);
    assert_eq!(ok + busy + refused, total);
    assert!(ok > 0, "some photos got through");

    // The server counted the same.
    let metric = |labels: &str| s.metric("stylecam_http_requests_total", labels) as usize;
    let stylize = "route=\"/api/stylize\",method=\"POST\"";
    assert_eq!(metric(&format!("{stylize},status=\"200\"")), ok + warmup);
    assert_eq!(metric(&format!("{stylize},status=\"503\"")), busy);
    assert_eq!(
        metric(&format!("{stylize},status=\"415\"")),
        count(&|o| o.kind == Kind::NotAnImage)
    );
    assert_eq!(
        s.metric("stylecam_errors_total", "kind=\"busy\"") as usize,
        busy
    );
    assert_eq!(s.metric("stylecam_queue_depth", "") as i64, 0);
    assert_eq!(get(&s.url("/healthz")).status, 200);

    let mut all: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    all.sort();
    let mut served: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.status == 200)
        .map(|o| o.latency)
        .collect();
    served.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "LOAD {clients} clients x {per_client} requests = {total} in {:.1} s ({:.0} req/s): \
         {ok} stylised, {busy} answered 503, {refused} refused as invalid",
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64()
    );
    println!(
        "LOAD latency all: p50 {:.1} ms, p99 {:.1} ms; stylised: p50 {:.1} ms, p99 {:.1} ms",
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        ms(percentile(&served, 0.5)),
        ms(percentile(&served, 0.99)),
    );
    println!(
        "LOAD server RSS: {:.1} MiB before, {:.1} MiB after",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    assert!(
        rss_after < rss_before + 200 * 1024,
        "memory stays bounded: {rss_before} -> {rss_after} KiB"
    );
}
