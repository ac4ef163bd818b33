//! `index.html` of `ocidiff conformance`: one self-contained page (inline CSS and a few lines of
//! inline JS, no external assets). Summary per target at the top, the targets x workflows matrix,
//! then a drill-down per cell and per check (`<details>` elements) with the exact requests and
//! (normalized) responses. Opening `index.html#<id>` opens the element with that id and its
//! ancestors (`id`s: `cell-<target>-<workflow>`, `check-<target>-<workflow>-<n>`).

use super::results::ConformanceResults;
use crate::scenario::checks::{CheckResult, Counts, Outcome};
use crate::vocab::exchange::Exchange;

/// HTML text / attribute escaping.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// An id-safe slug.
pub fn slug(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            o.push(c.to_ascii_lowercase());
        } else if !o.ends_with('-') {
            o.push('-');
        }
    }
    o.trim_matches('-').to_string()
}

pub fn cell_id(target: &str, workflow: &str) -> String {
    format!("cell-{}-{}", slug(target), slug(workflow))
}

pub fn check_id(target: &str, workflow: &str, index: usize) -> String {
    format!("check-{}-{}-{index}", slug(target), slug(workflow))
}

pub(crate) const STYLE: &str = r#"
:root{--pass:#1a7f37;--fail:#cf222e;--warn:#9a6700;--skip:#6e7781;--info:#0969da;--bg:#fff;--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--soft:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg);margin:0;padding:24px 32px;max-width:1400px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
.meta{color:var(--muted);margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 16px;min-width:240px;border-top:4px solid var(--pass)}
.card.failed{border-top-color:var(--fail)}
.card h3{margin:0 0 4px;font-size:16px}.card .url{color:var(--muted);font-family:ui-monospace,monospace;font-size:12px}
.verdict{font-weight:700;font-size:15px}.verdict.pass{color:var(--pass)}.verdict.fail{color:var(--fail)}
.n{display:inline-block;margin-right:10px;font-variant-numeric:tabular-nums}
.n.pass{color:var(--pass)}.n.fail{color:var(--fail)}.n.warn{color:var(--warn)}.n.skip{color:var(--skip)}.n.info{color:var(--info)}
table.matrix{border-collapse:collapse;margin-top:8px}
.matrix th,.matrix td{border:1px solid var(--line);padding:8px 12px;text-align:left}
.matrix thead th{background:var(--soft)}
.matrix td.cell a{text-decoration:none;color:inherit;display:block}
.matrix td.cell.fail{background:#ffebe9}.matrix td.cell.pass{background:#dafbe1}.matrix td.cell.warn{background:#fff8c5}
.badge{display:inline-block;min-width:44px;text-align:center;border-radius:10px;padding:0 6px;font-size:11px;font-weight:700;color:#fff;margin-right:6px}
.badge.pass{background:var(--pass)}.badge.fail{background:var(--fail)}.badge.warn{background:var(--warn)}.badge.skip{background:var(--skip)}.badge.info{background:var(--info)}
.lvl{font-size:11px;font-weight:700;color:var(--muted);margin-right:6px}
details.cellbox{border:1px solid var(--line);border-radius:6px;margin:8px 0;padding:0 10px}
details.cellbox>summary{font-weight:600;padding:8px 0;cursor:pointer}
details.check{border-top:1px solid var(--line);padding:4px 0 4px 8px}
details.check>summary{cursor:pointer}
details.check[open]{background:var(--soft)}
.ep{font-family:ui-monospace,monospace;font-size:12px;color:var(--muted)}
blockquote{margin:6px 0;padding:4px 10px;border-left:3px solid var(--line);color:#444}
.msg{white-space:pre-wrap;margin:6px 0}.msg.fail{color:var(--fail)}.msg.warn{color:var(--warn)}
pre{background:#fff;border:1px solid var(--line);border-radius:4px;padding:8px;overflow:auto;font-size:12px;margin:4px 0}
.ex{margin:6px 0 10px}
.toolbar{margin:8px 0}
body.hide-pass details.check.pass{display:none}
:target{outline:2px solid var(--info)}
"#;

pub(crate) const SCRIPT: &str = r#"
(function(){
  document.documentElement.className += ' js';
  function openHash(){
    var id = decodeURIComponent((location.hash || '').slice(1));
    if (!id) return;
    var el = document.getElementById(id);
    if (!el) return;
    for (var e = el; e; e = e.parentElement) { if (e.tagName === 'DETAILS') e.open = true; }
    el.setAttribute('data-opened', 'true');
    if (el.scrollIntoView) el.scrollIntoView();
  }
  window.addEventListener('hashchange', openHash);
  document.addEventListener('DOMContentLoaded', function(){
    openHash();
    var box = document.getElementById('hide-pass');
    if (box) box.addEventListener('change', function(){ document.body.classList.toggle('hide-pass', box.checked); });
    var btn = document.getElementById('open-failures');
    if (btn) btn.addEventListener('click', function(){
      var f = document.querySelectorAll('details.check.fail');
      for (var i = 0; i < f.length; i++) { for (var e = f[i]; e; e = e.parentElement) { if (e.tagName === 'DETAILS') e.open = true; } }
    });
  });
})();
"#;

fn counts_html(c: &Counts) -> String {
    format!(
        "<span class=\"n pass\" title=\"pass\">&#10004; {}</span><span class=\"n fail\" title=\"fail\">&#10008; {}</span><span class=\"n warn\" title=\"warn\">&#9888; {}</span><span class=\"n skip\" title=\"skip\">&#8631; {}</span>{}",
        c.pass,
        c.fail,
        c.warn,
        c.skip,
        if c.info > 0 {
            format!("<span class=\"n info\" title=\"info\">i {}</span>", c.info)
        } else {
            String::new()
        }
    )
}

fn cell_class(c: &Counts, error: bool) -> &'static str {
    if c.fail > 0 || error {
        "fail"
    } else if c.warn > 0 {
        "warn"
    } else {
        "pass"
    }
}

fn exchange_html(x: &Exchange) -> String {
    let mut req = format!("{} {}\n", x.request.method, x.request.url);
    for (k, v) in &x.request.headers {
        req.push_str(&format!("{k}: {v}\n"));
    }
    if x.request.body_len > 0 {
        req.push_str(&format!(
            "\n<{} bytes{}>",
            x.request.body_len,
            x.request
                .body_sha256
                .as_deref()
                .map(|s| format!(", sha256:{s}"))
                .unwrap_or_default()
        ));
    }
    let o = &x.observation;
    let mut resp = format!("HTTP {}", o.status);
    if let Some(e) = &o.transport_error {
        resp.push_str(&format!(" ({e})"));
    }
    resp.push('\n');
    for (k, v) in &o.headers {
        resp.push_str(&format!("{k}: {v}\n"));
    }
    resp.push_str(&format!(
        "\nbody: {}",
        serde_json::to_string_pretty(&o.body).unwrap_or_default()
    ));
    format!(
        "<div class=\"ex\"><div class=\"ep\">{} &middot; {}</div><pre class=\"req\">{}</pre><pre class=\"resp\">{}</pre></div>",
        esc(&x.label),
        esc(&x.endpoint),
        esc(&req),
        esc(&resp)
    )
}

fn check_html(id: &str, c: &CheckResult) -> String {
    let oc = c.outcome.to_string();
    let mut h = format!(
        "<details class=\"check {oc}\" id=\"{}\" data-outcome=\"{oc}\"><summary><span class=\"badge {oc}\">{}</span><span class=\"lvl\">{}</span>{} <span class=\"ep\">{}{}</span></summary>",
        esc(id),
        oc.to_uppercase(),
        if c.outcome == Outcome::Info {
            "VARIATION".to_string()
        } else {
            c.level.to_string().to_uppercase()
        },
        esc(&c.name),
        esc(&c.endpoint),
        c.rule
            .as_deref()
            .map(|r| format!(" &middot; {}", esc(r)))
            .unwrap_or_default()
    );
    if !c.message.is_empty() {
        h.push_str(&format!(
            "<div class=\"msg {oc}\">{}</div>",
            esc(&c.message)
        ));
    }
    if !c.spec.is_empty() {
        h.push_str(&format!("<blockquote>{}</blockquote>", esc(&c.spec)));
    }
    for n in &c.oracle {
        h.push_str(&format!("<div class=\"msg\">oracle: {}</div>", esc(n)));
    }
    h.push_str(&format!(
        "<div class=\"ep\">op #{}: {}</div>",
        c.op,
        esc(&c.op_text)
    ));
    for x in &c.exchanges {
        h.push_str(&exchange_html(x));
    }
    h.push_str("</details>\n");
    h
}

/// The whole page.
pub fn render(r: &ConformanceResults) -> String {
    let mut h = String::with_capacity(64 << 10);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    h.push_str("<title>OCI Distribution Spec conformance &mdash; ocidiff</title>");
    h.push_str(&format!("<style>{STYLE}</style></head>\n<body>\n"));
    h.push_str("<header><h1>OCI Distribution Spec conformance</h1>");
    h.push_str(&format!(
        "<p class=\"meta\">{} {} &middot; {} &middot; generated {} &middot; workflows: {}</p></header>\n",
        esc(&r.tool),
        esc(&r.version),
        esc(&r.spec),
        utc_time(r.generated_at),
        esc(&r
            .workflows
            .iter()
            .map(|w| w.title.clone())
            .collect::<Vec<_>>()
            .join(", "))
    ));

    // Summary.
    h.push_str("<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">\n");
    for t in &r.targets {
        let failed = r.target_failed(&t.name);
        let c = r.target_counts(&t.name);
        h.push_str(&format!(
            "<div class=\"card{}\" data-target=\"{}\"><h3>{}{}</h3><div class=\"url\">{} &middot; {}</div><div class=\"verdict {}\">{}</div><div>{}</div></div>\n",
            if failed { " failed" } else { "" },
            esc(&t.name),
            esc(&t.name),
            if t.oracle { " <span class=\"ep\">(oracle)</span>" } else { "" },
            esc(&t.kind),
            esc(&t.url),
            if failed { "fail" } else { "pass" },
            if failed {
                "FAILS a MUST requirement"
            } else {
                "passes every MUST check"
            },
            counts_html(&c)
        ));
    }
    h.push_str("</div></section>\n");

    // Matrix.
    h.push_str("<section><h2>Targets &times; workflows</h2><table class=\"matrix\" id=\"matrix\"><thead><tr><th>Target</th>");
    for w in &r.workflows {
        h.push_str(&format!(
            "<th data-workflow=\"{}\">{}</th>",
            esc(&w.id),
            esc(&w.title)
        ));
    }
    h.push_str("</tr></thead><tbody>\n");
    for t in &r.targets {
        h.push_str(&format!(
            "<tr data-target=\"{}\"><th>{}</th>",
            esc(&t.name),
            esc(&t.name)
        ));
        for w in &r.workflows {
            match r.cell(&t.name, &w.id) {
                Some(cell) => h.push_str(&format!(
                    "<td class=\"cell {}\" data-workflow=\"{}\"><a href=\"#{}\">{}{}</a></td>",
                    cell_class(&cell.counts, cell.error.is_some()),
                    esc(&w.id),
                    cell_id(&t.name, &w.id),
                    counts_html(&cell.counts),
                    if cell.error.is_some() { " error" } else { "" }
                )),
                None => h.push_str("<td class=\"cell\">&ndash;</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>");
    h.push_str("<p class=\"meta\">&#10004; pass &middot; &#10008; fail (a MUST check) &middot; &#9888; warn (a SHOULD / MAY check) &middot; &#8631; skip (optional API unsupported, or depends on a failed check) &middot; i: allowed variation found by the differential oracle.</p></section>\n");

    // Drill-down.
    h.push_str("<section id=\"checks\"><h2>Checks</h2><div class=\"toolbar\"><label><input type=\"checkbox\" id=\"hide-pass\"> hide passing checks</label> <button type=\"button\" id=\"open-failures\">open all failures</button></div>\n");
    for t in &r.targets {
        h.push_str(&format!("<h3>{}</h3>\n", esc(&t.name)));
        for w in &r.workflows {
            let Some(cell) = r.cell(&t.name, &w.id) else {
                continue;
            };
            h.push_str(&format!(
                "<details class=\"cellbox {}\" id=\"{}\"><summary>{} &times; {} &mdash; {}</summary>\n",
                cell_class(&cell.counts, cell.error.is_some()),
                cell_id(&t.name, &w.id),
                esc(&t.name),
                esc(&w.title),
                counts_html(&cell.counts)
            ));
            if let Some(e) = &cell.error {
                h.push_str(&format!("<div class=\"msg fail\">error: {}</div>", esc(e)));
            }
            if !w.description.is_empty() {
                h.push_str(&format!("<p class=\"meta\">{}</p>", esc(&w.description)));
            }
            // Failures first, then warnings, then the rest, each in scenario order.
            let rank = |o: Outcome| match o {
                Outcome::Fail => 0,
                Outcome::Warn => 1,
                Outcome::Skip => 2,
                Outcome::Info => 3,
                Outcome::Pass => 4,
            };
            let mut idx: Vec<usize> = (0..cell.checks.len()).collect();
            idx.sort_by_key(|i| (rank(cell.checks[*i].outcome), *i));
            let (infos, main): (Vec<usize>, Vec<usize>) = idx
                .into_iter()
                .partition(|i| cell.checks[*i].outcome == Outcome::Info);
            for i in main {
                h.push_str(&check_html(&check_id(&t.name, &w.id, i), &cell.checks[i]));
            }
            if !infos.is_empty() {
                h.push_str(&format!(
                    "<details class=\"check infos\"><summary><span class=\"badge info\">INFO</span>{} allowed differences from the reference (not failures)</summary>\n",
                    infos.len()
                ));
                for i in infos {
                    h.push_str(&check_html(&check_id(&t.name, &w.id, i), &cell.checks[i]));
                }
                h.push_str("</details>\n");
            }
            h.push_str("</details>\n");
        }
    }
    h.push_str("</section>\n");
    h.push_str(&format!("<script>{SCRIPT}</script>\n</body></html>\n"));
    h
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time (proleptic Gregorian calendar).
pub fn utc_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_and_escaping() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_time(1_795_841_213), "2026-11-28 04:46:53 UTC");
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(slug("Content Discovery!"), "content-discovery");
        assert_eq!(slug("my.reg:5000"), "my-reg-5000");
    }
}
