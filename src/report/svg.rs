//! Charts for the HTML reports, drawn as inline SVG (no JavaScript, no external files).
//!
//! Every piece of text that reaches an SVG (commit summaries in tooltips, dates) goes through
//! [`esc`]; the callers insert the returned markup unescaped.

use std::fmt::Write as _;

use crate::git::{FileClass, HistoryReport};

/// Escapes text for XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Colour of a file class in every chart.
pub fn class_colour(c: FileClass) -> &'static str {
    match c {
        FileClass::Source => "#3b6fb6",
        FileClass::Tests => "#2e9e5b",
        FileClass::Docs => "#d08c1f",
        FileClass::Config => "#8a63b8",
        _ => "#8c8c8c",
    }
}

/// Background for a score scaled to 0–1: red through amber to green, light enough for black text.
pub fn heat(scaled: f64) -> String {
    let s = scaled.clamp(0.0, 1.0);
    format!("hsl({:.0}, 70%, 80%)", s * 120.0)
}

/// The commit timeline: one bar per commit at its author time, height by lines changed (square
/// root, so one dump does not flatten the rest), coloured by the class it changed most; work
/// sessions shaded behind. Each bar's tooltip names the commit.
pub fn timeline(h: &HistoryReport) -> String {
    const W: f64 = 760.0;
    const H: f64 = 140.0;
    const PAD: f64 = 30.0;
    let plot_h = H - PAD - 10.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="commit timeline">"#
    );
    if h.commits.is_empty() {
        out.push_str(r#"<text x="10" y="20">no commits</text></svg>"#);
        return out;
    }
    let times: Vec<i64> = h.commits.iter().map(|c| c.author_time.timestamp()).collect();
    let (t0, t1) = (
        *times.iter().min().expect("non-empty"),
        *times.iter().max().expect("non-empty"),
    );
    let span = (t1 - t0).max(1) as f64;
    let x = |t: i64| PAD + (t - t0) as f64 / span * (W - 2.0 * PAD);
    for s in &h.sessions {
        let (a, b) = (x(s.start.timestamp()), x(s.end.timestamp()));
        let _ = write!(
            out,
            r##"<rect x="{:.1}" y="10" width="{:.1}" height="{plot_h:.1}" fill="#eef2f7"/>"##,
            a - 3.0,
            (b - a) + 6.0
        );
    }
    let size = |c: &crate::git::history::CommitInfo| c.changes.values().map(|v| v.added + v.removed).sum::<u64>();
    let max = h.commits.iter().map(size).max().unwrap_or(1).max(1) as f64;
    for c in &h.commits {
        let n = size(c);
        let bar = ((n as f64).sqrt() / max.sqrt() * plot_h).max(2.0);
        let top = c
            .changes
            .iter()
            .max_by_key(|(_, v)| v.added + v.removed)
            .map(|(k, _)| *k);
        let colour = top.map_or("#8c8c8c", class_colour);
        let _ = write!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="3" height="{bar:.1}" fill="{colour}"><title>{} {} — {} (+/− {n})</title></rect>"#,
            x(c.author_time.timestamp()) - 1.5,
            10.0 + plot_h - bar,
            esc(&c.sha[..7.min(c.sha.len())]),
            c.author_time.format("%Y-%m-%d %H:%M"),
            esc(&c.summary),
        );
    }
    let first = h.commits.iter().min_by_key(|c| c.author_time).expect("non-empty");
    let last = h.commits.iter().max_by_key(|c| c.author_time).expect("non-empty");
    let _ = write!(
        out,
        r##"<line x1="{PAD}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke="#999"/><text x="{PAD}" y="{ty:.1}" font-size="11">{}</text><text x="{x2:.1}" y="{ty:.1}" font-size="11" text-anchor="end">{}</text></svg>"##,
        first.author_time.format("%Y-%m-%d %H:%M"),
        last.author_time.format("%Y-%m-%d %H:%M"),
        y = 10.0 + plot_h,
        x2 = W - PAD,
        ty = H - 8.0,
    );
    out
}

/// A 120×24 sparkline of the lines in the tree after each commit (in commit order).
pub fn sparkline(h: &HistoryReport) -> String {
    const W: f64 = 120.0;
    const H: f64 = 24.0;
    let mut level = 0i64;
    let mut ys: Vec<i64> = Vec::with_capacity(h.commits.len());
    let mut commits: Vec<&crate::git::history::CommitInfo> = h.commits.iter().collect();
    commits.sort_by_key(|c| c.author_time);
    for c in commits {
        for v in c.changes.values() {
            level += v.added as i64 - v.removed as i64;
        }
        ys.push(level);
    }
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="spark" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="lines over {} commits">"#,
        ys.len()
    );
    if ys.len() >= 2 {
        let (lo, hi) = (*ys.iter().min().expect("2+"), *ys.iter().max().expect("2+"));
        let range = (hi - lo).max(1) as f64;
        let points: Vec<String> = ys
            .iter()
            .enumerate()
            .map(|(i, y)| {
                format!(
                    "{:.1},{:.1}",
                    1.0 + i as f64 / (ys.len() - 1) as f64 * (W - 2.0),
                    H - 2.0 - (y - lo) as f64 / range * (H - 4.0)
                )
            })
            .collect();
        let _ = write!(
            out,
            r##"<polyline fill="none" stroke="#3b6fb6" stroke-width="1.5" points="{}"/>"##,
            points.join(" ")
        );
    } else {
        let _ = write!(
            out,
            r##"<line x1="1" y1="{m}" x2="{w}" y2="{m}" stroke="#bbb"/>"##,
            m = H / 2.0,
            w = W - 1.0
        );
    }
    out.push_str("</svg>");
    out
}

/// A histogram of totals (0–100) in ten bins, each bar labelled with its count.
pub fn histogram(totals: &[f64]) -> String {
    const W: f64 = 420.0;
    const H: f64 = 150.0;
    let mut bins = [0usize; 10];
    for t in totals {
        bins[((t / 10.0).floor() as usize).min(9)] += 1;
    }
    let max = *bins.iter().max().unwrap_or(&1).max(&1) as f64;
    let bw = (W - 20.0) / 10.0;
    let plot_h = H - 40.0;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="distribution of totals">"#
    );
    for (i, n) in bins.iter().enumerate() {
        let bh = *n as f64 / max * plot_h;
        let x = 10.0 + i as f64 * bw;
        let _ = write!(
            out,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#3b6fb6"><title>{}–{}: {n}</title></rect>"##,
            x + 2.0,
            15.0 + plot_h - bh,
            bw - 4.0,
            i * 10,
            i * 10 + 10,
        );
        if *n > 0 {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{n}</text>"#,
                x + bw / 2.0,
                12.0 + plot_h - bh
            );
        }
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
            x + bw / 2.0,
            H - 10.0,
            i * 10
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_in_charts_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("a\u{7}b"), "ab");
    }

    #[test]
    fn the_histogram_puts_each_total_in_its_bin() {
        let svg = histogram(&[0.0, 5.0, 55.0, 100.0, 99.9]);
        assert!(svg.contains("<title>0–10: 2</title>"), "{svg}");
        assert!(svg.contains("<title>50–60: 1</title>"), "{svg}");
        assert!(svg.contains("<title>90–100: 2</title>"), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 10);
    }
}
