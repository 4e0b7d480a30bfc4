//! A short soak of the live pipeline (`stylecam bench --live`, headless): a few hundred frames of
//! the test pattern at a small size through the built-in weights, the style switching every 50
//! frames and the brush moving on every frame. No errors, every thread joined and gone after
//! shutdown, and memory bounded. The long run (the command, and what it showed) is in docs/PERF.md.

mod common;

use common::stylecam;

#[test]
fn short_soak_has_no_errors_and_leaves_no_threads() {
    let o = stylecam()
        .args([
            "bench",
            "--live",
            "--device",
            "cpu",
            "--source",
            "test-pattern",
            "--source-size",
            "64x48",
            "--fps",
            "240",
            "--frames",
            "300",
            "--warmup",
            "1",
            "--switch-every",
            "50",
            "--move-brush",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let n = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    assert!(n("frames_delivered") >= 300.0, "{r}");
    assert_eq!(n("errors"), 0.0, "{r}");
    assert!(n("style_switches") >= 5.0, "{r}");
    assert!(n("brush_moves") >= 300.0, "{r}");
    assert_eq!(r["processing_size"], "64x48", "{r}");
    assert_eq!(r["shutdown_clean"], true, "{r}");
    assert_eq!(n("threads_after"), n("threads_before"), "{r}");
    // Capture, inference and style-target threads ran besides the pool.
    assert!(n("threads_running") >= n("threads_before") + 3.0, "{r}");
    // Bounded: the engine keeps at most 64 style targets (256 KB each here) and one workspace.
    assert!(
        n("rss_mb_end") < n("rss_mb_start") + 64.0,
        "RSS grew from {} to {} MB",
        n("rss_mb_start"),
        n("rss_mb_end")
    );
    assert!(n("latency_ms_p50") > 0.0 && n("delivered_fps") > 0.0, "{r}");
}
