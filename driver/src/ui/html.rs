//! The frame every page shares (navigation, inline style sheet, the
//! self-refresh of a page while a job runs), HTML escaping, and how numbers
//! are written.

use std::fmt::Write;

pub use minispark_planner::explain::fmt_bytes;

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A duration in milliseconds as people read it: `850 ms`, `2.4 s`, `3.1 min`.
pub fn fmt_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{:.1} min", ms / 60_000.0)
    }
}

/// A Unix time in milliseconds as `YYYY-MM-DD HH:MM:SS` UTC (Arrow's
/// conversion, chrono underneath).
pub fn fmt_time(epoch_ms: u64) -> String {
    i64::try_from(epoch_ms / 1000)
        .ok()
        .and_then(arrow::temporal_conversions::timestamp_s_to_datetime)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Which navigation tab a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Jobs,
    Executors,
}

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
nav{background:#2b3a4a;padding:8px 16px}nav a{color:#dde;margin-right:18px;text-decoration:none;font-weight:600}
nav a.active{color:#fff;border-bottom:2px solid #f90}nav span.brand{color:#f90;font-weight:700;margin-right:24px}
main{padding:12px 20px}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:8px 0;font-size:.9em;background:#fff}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#eef}
td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#fff;border:1px solid #ccc;padding:8px;overflow-x:auto;font-size:.85em}
.failed{color:#b00}.succeeded,.complete,.success{color:#070}.running{color:#05a}
.note{background:#fff6d0;border:1px solid #e0c060;padding:6px 10px;margin:6px 0}
.error{background:#fde8e8;border:1px solid #d99;padding:6px 10px;margin:6px 0;white-space:pre-wrap}
.stage-boundary{color:#a40;font-weight:700}.join-line{color:#063}
svg text{font-family:system-ui,sans-serif}
tr.straggler td{background:#ffe2cc}
";

/// A whole page: `title`, the navigation with `tab` marked, `body`.
/// `refresh`: reload every two seconds (a job is running).
pub fn page(title: &str, tab: Tab, refresh: bool, history: bool, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    if refresh && !history {
        out.push_str("<meta http-equiv=\"refresh\" content=\"2\">");
    }
    let _ = write!(
        out,
        "<title>{} - minispark{}</title><style>{STYLE}</style></head><body><nav><span class=\"brand\">minispark{}</span>",
        esc(title),
        if history { " history" } else { "" },
        if history { " history" } else { "" },
    );
    for (t, href, name) in [
        (Tab::Jobs, "/jobs", "Jobs"),
        (Tab::Executors, "/executors", "Executors"),
    ] {
        let class = if t == tab { " class=\"active\"" } else { "" };
        let _ = write!(out, "<a href=\"{href}\"{class}>{name}</a>");
    }
    let _ = write!(out, "</nav><main><h1>{}</h1>", esc(title));
    out.push_str(body);
    out.push_str("</main></body></html>\n");
    out
}

/// A table: header cells, then rows of already-rendered cells.
pub fn table(class: &str, header: &[&str], rows: impl IntoIterator<Item = String>) -> String {
    let mut out = format!("<table class=\"{class}\"><thead><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str(&row);
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(fmt_time(0), "1970-01-01 00:00:00");
        assert_eq!(fmt_time(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(fmt_ms(850.0), "850 ms");
        assert_eq!(fmt_ms(2400.0), "2.4 s");
    }
}
