//! `report.html` in a real browser (Debian's Chromium, headless, driven over the DevTools
//! protocol): a fake-engine sweep's report loads with no console error, fetches nothing,
//! sorts its comparison table when a column is clicked, draws its charts, and a screenshot is
//! saved (target/report-screenshot.png, or $FRONTIER_SCREENSHOT).

mod common;

use std::process::Command;

use common::browser::Browser;
use common::fake::fake_model;

#[test]
fn the_report_loads_sorts_and_draws_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let models: Vec<_> = [
        ("alpha", "900", "120", "1"),
        ("beta", "600", "80", "2"),
        ("gamma", "300", "150", "3"),
    ]
    .iter()
    .map(|(n, pp, tg, salt)| {
        fake_model(
            dir.path(),
            n,
            &[("pp_ts", pp), ("tg_ts", tg), ("salt", salt)],
        )
    })
    .collect();
    let list: Vec<String> = models.iter().map(|m| m.display().to_string()).collect();
    let out = dir.path().join("out");
    let o = Command::new(assert_cmd::cargo::cargo_bin("frontier"))
        .env(
            "FRONTIER_CACHE_DIR",
            std::env::temp_dir().join("frontier-test-cache"),
        )
        .args(["sweep", "--backend", "fake", "--models", &list.join(",")])
        .args([
            "--tasks",
            "mmlu,gsm8k,speed",
            "--subjects",
            "anatomy,astronomy",
        ])
        .args([
            "--limit",
            "mmlu=10,gsm8k=6",
            "-p",
            "64",
            "-n",
            "16",
            "-r",
            "2",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(out.join("decision.md").is_file());
    // Self-contained: no script, style or image from anywhere else.
    for needle in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "@import",
        "url(http",
    ] {
        assert!(!html.contains(needle), "the page refers out: {needle}");
    }

    let Some(mut b) = Browser::start() else {
        return;
    };
    b.open(&page);
    assert_eq!(
        b.eval("document.querySelectorAll('#comparison-table tbody tr').length"),
        3
    );
    // Sort by the MMLU column: its values come out ascending, then descending.
    let column = "Array.from(document.querySelectorAll('#comparison-table tbody tr')).map(r => parseFloat(r.cells[2].getAttribute('data-sort')))";
    b.eval("document.querySelectorAll('#comparison-table thead th')[2].click()");
    let up: Vec<f64> = serde_json::from_value(b.eval(column)).unwrap();
    assert!(up.windows(2).all(|w| w[0] <= w[1]), "{up:?}");
    b.eval("document.querySelectorAll('#comparison-table thead th')[2].click()");
    let down: Vec<f64> = serde_json::from_value(b.eval(column)).unwrap();
    assert!(down.windows(2).all(|w| w[0] >= w[1]), "{down:?}");
    assert_ne!(up, down, "the three fake models score differently");
    // Filtering hides the other rows.
    b.eval("let f = document.querySelector('input.filter'); f.value = 'beta'; f.dispatchEvent(new Event('input'))");
    assert_eq!(
        b.eval("Array.from(document.querySelectorAll('#comparison-table tbody tr')).filter(r => r.style.display !== 'none').length"),
        1
    );
    // Both charts are drawn, a point per cell, with the details on hover.
    assert_eq!(
        b.eval("document.querySelectorAll('#chart-memory g.point').length"),
        3
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#chart-speed g.point').length"),
        3
    );
    assert!(b
        .eval("document.querySelector('#chart-memory g.point title').textContent")
        .as_str()
        .unwrap()
        .contains("mean score"));
    let shot = b.screenshot();
    assert!(shot.starts_with(b"\x89PNG"));
    let path = std::env::var_os("FRONTIER_SCREENSHOT").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png"),
        std::path::PathBuf::from,
    );
    std::fs::write(&path, &shot).unwrap();
    eprintln!("screenshot: {} ({} bytes)", path.display(), shot.len());
    assert!(b.errors.is_empty(), "console errors: {:?}", b.errors);
}

/// The page for a full-size store: 4 cells × every MMLU question (14,042) and every GSM8K
/// and HumanEval problem, scored by the fake engine. It must stay one file a browser opens
/// at once: the per-cell item samples are capped, so its size does not grow with the items.
/// Minutes of scripted scoring: run with `--ignored`.
#[test]
#[ignore]
fn a_full_size_store_gives_a_page_of_bounded_size() {
    let dir = tempfile::tempdir().unwrap();
    let list: Vec<String> = ["w", "x", "y", "z"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            fake_model(dir.path(), n, &[("salt", &i.to_string())])
                .display()
                .to_string()
        })
        .collect();
    let out = dir.path().join("out");
    let o = Command::new(assert_cmd::cargo::cargo_bin("frontier"))
        .args([
            "-q",
            "sweep",
            "--backend",
            "fake",
            "--models",
            &list.join(","),
        ])
        .args([
            "--tasks",
            "mmlu,gsm8k,humaneval",
            "--format",
            "raw",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let size = std::fs::metadata(out.join("report.html")).unwrap().len();
    let stored = std::fs::metadata(out.join("results.sqlite")).unwrap().len();
    println!("report.html {size} bytes for a store of {stored} bytes");
    assert!(size < 4 << 20, "report.html is {size} bytes");
}
