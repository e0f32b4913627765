//! The review UI (`assay serve`) driven in real headless Chromium through chromedriver (Debian's
//! `chromium` and `chromium-driver`, installed by scripts/setup.sh), against a cohort graded with
//! the real tiny model so the form is pre-filled from real drafts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assay::review::ReviewStatus;
use assay::store::{SqliteStore, Store};
use fantoccini::{Client, ClientBuilder, Locator};

use crate::helpers::*;
use crate::llm::model_path;

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// chromedriver on a free port.
fn chromedriver() -> (Killed, String) {
    let port = free_port();
    let mut child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian's chromium-driver; scripts/setup.sh installs it)");
    wait_for_port(port, "chromedriver", &mut child);
    (Killed(child), format!("http://127.0.0.1:{port}"))
}

/// A headless Chromium session of its own (own profile, so its own cookies).
async fn browser(driver: &str, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-quic", "--window-size=1200,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver)
        .await
        .expect("a Chromium session through chromedriver")
}

/// A request without a browser: status and body.
fn http(port: u16, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

fn post(port: u16, path: &str, cookie: Option<&str>, body: &str) -> (u16, String) {
    let cookie = cookie
        .map(|c| format!("Cookie: assay_session={c}\r\n"))
        .unwrap_or_default();
    http(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Types `text` into the element `at` finds.
async fn type_into(c: &Client, at: Locator<'_>, text: &str) {
    c.find(at).await.unwrap().send_keys(text).await.unwrap();
}

/// Clicks the element `at` finds, scrolled to the middle of the window first, as a person
/// would (chromedriver clicks where the element is, under the sticky action bar or not).
async fn click(c: &Client, at: Locator<'_>) {
    let el = c.find(at).await.unwrap();
    let arg = serde_json::to_value(&el).unwrap();
    c.execute("arguments[0].scrollIntoView({block: 'center'})", vec![arg])
        .await
        .unwrap();
    el.click().await.unwrap();
}

async fn sign_in(c: &Client, base: &str, name: &str, token: &str) {
    c.goto(&format!("{base}/c/demo")).await.unwrap();
    // Not signed in: the queue sends us to the sign-in page, which brings us back.
    assert_eq!(c.current_url().await.unwrap().path(), "/login");
    type_into(c, Locator::Id("name"), name).await;
    type_into(c, Locator::Id("token"), token).await;
    click(c, Locator::Css("button[type=submit]")).await;
    let queue = url::Url::parse(&format!("{base}/c/demo")).unwrap();
    if let Err(e) = c.wait().at_most(Duration::from_secs(20)).for_url(&queue).await {
        panic!(
            "sign-in as {name} did not reach the queue ({e}): {}",
            c.source().await.unwrap()
        );
    }
}

/// The page now shown, to tell when a click has replaced it.
async fn page(c: &Client) -> fantoccini::elements::Element {
    c.find(Locator::Css("html")).await.unwrap()
}

/// The banner's text on the page that replaced `before` (a form post's answer). Waiting only for
/// an element `#banner` would find the old page's banner when both pages have one.
async fn banner(c: &Client, before: fantoccini::elements::Element) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match before.tag_name().await {
            Err(e) if e.is_stale_element_reference() => break,
            // Chromium sometimes names a replaced page's node this way instead of "stale".
            Err(e) if e.to_string().contains("does not belong to the document") => break,
            Err(e) => panic!("waiting for the next page: {e}"),
            Ok(_) if Instant::now() > deadline => panic!("the page did not change after the click"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("banner"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// What a criterion's note textarea holds now.
async fn note_text(c: &Client, criterion: &str) -> String {
    field_text(c, &format!("comment-{criterion}")).await
}

/// What a textarea or input holds now.
async fn field_text(c: &Client, id: &str) -> String {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap()
}

/// Whether the checkbox `name` is ticked now.
async fn ticked(c: &Client, name: &str) -> bool {
    let sel = format!("input[name='{name}']");
    c.find(Locator::Css(&sel)).await.unwrap().is_selected().await.unwrap()
}

async fn checked(c: &Client, criterion: &str) -> Option<String> {
    let sel = format!("input[name='score:{criterion}']:checked");
    c.find(Locator::Css(&sel))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .filter(|v| !v.is_empty())
}

#[test]
#[ignore = "full lane: needs Chromium, chromedriver and the tiny model"]
fn graders_review_in_chromium_blind_with_drafts_prefilled_audited_and_conflicts_refused() {
    // Two candidates whose identities appear in what they wrote.
    let mut alice = iterative();
    alice.put(&[(
        "README.md",
        Some("# Churn\n\nBy Alice Smith <alice.smith@example.org> (alice-smith on the forum).\n\nPredict churn. Success metric: recall at 10% FPR.\n\n## Results\n\nRecall 0.71 vs baseline 0.0.\n"),
    )]);
    alice.commit("Notes from alice-smith", DAY1 + 40 * HOUR);
    let bob = single_dump();
    let work = tempfile::tempdir().unwrap();
    let cohort = cohort_of(
        work.path(),
        "top = 1\n",
        &[("alice-smith", alice.path()), ("bob-jones", bob.path())],
    );
    let assay = Assay::new();
    let models = model_path(assay::llm::TINY_MODEL).parent().unwrap().to_path_buf();
    let graded = assay
        .cmd()
        .env("ASSAY_MODEL_DIR", &models)
        .args(["grade", "--no-sandbox", "--model", assay::llm::TINY_MODEL, "--json"])
        .arg(&cohort)
        .output()
        .unwrap();
    let v = json_ok(&graded);
    let subs = v["submissions"].as_array().unwrap();
    let of = |who: &str| subs.iter().find(|s| s["candidate"] == who).unwrap().clone();
    let (a, b) = (of("alice-smith"), of("bob-jones"));
    assert_eq!(a["drafts"].as_array().unwrap().len(), 6, "{a:#}");

    // Graders in ./assay.toml (the data directory is the commands' working directory).
    let token = |name: &str| {
        let out = assay.run(&["grader", "add", name]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (ann, ben) = (token("ann"), token("ben"));
    assert_eq!(ann.len(), 64);
    let again = assay.run(&["grader", "add", "ann"]);
    assert_eq!(again.status.code(), Some(2), "a grader is added once");
    let settings = std::fs::read_to_string(assay.data.path().join("assay.toml")).unwrap();
    assert!(!settings.contains(&ann), "only the token's hash is stored");

    let port = free_port();
    let mut serve = assay
        .cmd()
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, "assay serve", &mut serve);
    let _serve = Killed(serve);
    let base = format!("http://127.0.0.1:{port}");

    // No anonymous reads or writes.
    let (status, _) = http(port, "GET /c/demo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 303, "pages redirect to the sign-in");
    let a_anon = a["anon_id"].as_str().unwrap().to_string();
    let b_anon = b["anon_id"].as_str().unwrap().to_string();
    let (status, _) = post(port, &format!("/c/demo/s/{a_anon}"), None, "action=finalize");
    assert_eq!(status, 401);
    let (status, _) = post(port, "/login", None, "name=ann&token=wrong");
    assert_eq!(status, 401);

    let (_driver, driver_url) = chromedriver();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let profiles = tempfile::tempdir().unwrap();
    let hidden = [
        "alice",
        "Alice",
        "Smith",
        "bob-jones",
        "alice.smith@example.org",
        &alice.path().display().to_string(),
        &bob.path().display().to_string(),
    ];
    let db = format!("sqlite://{}", assay.db().display());
    let signed = rt.block_on(async {
        let c = browser(&driver_url, &profiles.path().join("a")).await;
        sign_in(&c, &base, "ann", &ann).await;

        // The queue: the top 1 first, blind.
        let queue = c.source().await.unwrap();
        for h in hidden {
            assert!(!queue.contains(h), "queue shows {h}");
        }
        let top_anon = v["triage"]["submissions"][0]["anon_id"].as_str().unwrap();
        let first = c.find(Locator::Css("table a[href*='/s/']")).await.unwrap();
        assert_eq!(
            first.text().await.unwrap(),
            top_anon,
            "the top-ranked submission comes first"
        );

        // Alice's packet: the form is pre-filled from her drafts; identities are hidden.
        c.goto(&format!("{base}/c/demo/s/{a_anon}")).await.unwrap();
        let packet = c.source().await.unwrap();
        for h in hidden {
            assert!(!packet.contains(h), "packet shows {h}");
        }
        assert!(
            packet.contains("[e-mail hidden]"),
            "the e-mail in the README is replaced"
        );
        let store = SqliteStore::open(&db).await.unwrap();
        let cid = store.cohort_id("demo").await.unwrap().unwrap();
        let records = store.submissions(cid).await.unwrap();
        let redactor = assay::web::redact::Redactor::new(&records);
        let record = |anon: &str| records.iter().find(|s| s.anon_id == anon).unwrap().clone();
        let drafts = a["drafts"].as_array().unwrap();
        let draft_of = |id: &str| drafts.iter().find(|d| d["criterion"] == id).unwrap().clone();
        for d in drafts {
            let id = d["criterion"].as_str().unwrap();
            // Every criterion of the shipped rubric is a checklist: its level follows the items.
            assert_eq!(
                checked(&c, id).await.as_deref(),
                Some("items"),
                "{id} follows its items"
            );
            assert_eq!(note_text(&c, id).await, "", "{id}: the note is the grader's own");
            for item in d["items"].as_array().unwrap() {
                let name = format!("item:{id}:{}", item["id"].as_str().unwrap());
                assert_eq!(
                    ticked(&c, &name).await,
                    item["met"].as_bool().unwrap(),
                    "{name} pre-filled from the draft"
                );
            }
            let feedback = redactor.text(d["feedback"].as_str().unwrap_or("")).trim().to_string();
            assert_eq!(
                field_text(&c, &format!("feedback-{id}")).await,
                feedback,
                "{id} feedback (blind)"
            );
            // Cited evidence is one click away, on the same page.
            for cited in d["evidence"].as_array().unwrap() {
                let cited = cited.as_str().unwrap();
                c.find(Locator::Id(&format!("ev-{cited}"))).await.unwrap();
            }
        }

        // Tick a framing item the draft left unticked (three questions, levels = "count"):
        // on save the level is recomputed from the boxes, one higher.
        let framing = draft_of("framing");
        let draft_framing = framing["score"].as_u64().map(|s| s as u32);
        let unmet = framing["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["met"] == false)
            .expect("the tiny model leaves a framing question unmet")["id"]
            .as_str()
            .unwrap()
            .to_string();
        click(&c, Locator::Css(&format!("input[name='item:framing:{unmet}']"))).await;
        let approved = "State the success metric before the results.";
        let fb = c.find(Locator::Id("feedback-framing")).await.unwrap();
        fb.clear().await.unwrap();
        fb.send_keys(approved).await.unwrap();
        // Override iteration's level by keyboard, without a note: refused, the input kept.
        let iteration = draft_of("iteration")["score"].as_u64().unwrap();
        let other = if iteration == 1 { "2" } else { "1" };
        type_into(
            &c,
            Locator::Css(&format!("input[name='score:iteration'][value='{other}']")),
            " ",
        )
        .await;
        let before = page(&c).await;
        click(&c, Locator::Css("button[value='save']")).await;
        let refused = banner(&c, before).await;
        assert!(
            refused.contains("needs a note") && refused.contains("overrides the level its ticked items give"),
            "{refused}"
        );
        assert!(ticked(&c, &format!("item:framing:{unmet}")).await, "the tick is kept");
        assert_eq!(checked(&c, "iteration").await.as_deref(), Some(other));
        let rec = record(&a_anon);
        assert!(store.reviews(rec.id).await.unwrap().is_empty(), "nothing was saved");
        type_into(
            &c,
            Locator::Id("comment-iteration"),
            "The history was rewritten by a rebase.",
        )
        .await;
        let before = page(&c).await;
        click(&c, Locator::Css("button[value='save']")).await;
        let saved = banner(&c, before).await;
        assert!(saved.contains("Review saved"), "{saved}");
        // The page shows the recomputed level, the box ticked and the override kept.
        let level = draft_framing.unwrap() + 1;
        let label = c
            .find(Locator::Css("input[name='score:framing'][value='items']"))
            .await
            .unwrap()
            .find(Locator::XPath(".."))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(label.contains(&format!("level {level}")), "{label}");
        assert_eq!(checked(&c, "framing").await.as_deref(), Some("items"));
        assert_eq!(checked(&c, "iteration").await.as_deref(), Some(other));

        // Finalize by keyboard.
        let finalize = c.find(Locator::Css("button[value='finalize']")).await.unwrap();
        let before = page(&c).await;
        finalize.send_keys("\u{E007}").await.unwrap(); // Enter
        let shown = banner(&c, before).await;
        assert!(shown.contains("Review finalized"), "{shown}");
        assert!(c
            .find_all(Locator::Css("button[value='save']"))
            .await
            .unwrap()
            .is_empty());

        // What the database holds, and the audit trail.
        let reviews = store.reviews(rec.id).await.unwrap();
        assert_eq!(reviews.len(), 1);
        let r = &reviews[0];
        assert_eq!(
            (r.grader.as_str(), r.status, r.version),
            ("ann", ReviewStatus::Final, 2)
        );
        let f = &r.scores["framing"];
        assert_eq!(f.score, Some(level), "the level follows the ticked items");
        assert_eq!(
            (f.items[&unmet].met, f.items[&unmet].draft_met),
            (true, Some(false)),
            "the tick and the draft's answer it changed"
        );
        assert_eq!(f.feedback, approved);
        assert_eq!(f.draft_score, draft_framing, "the draft shown is recorded");
        assert_eq!(r.scores["iteration"].score, Some(other.parse().unwrap()));
        assert_eq!(r.scores["iteration"].comment, "The history was rewritten by a rebase.");
        let events = store.events(rec.id).await.unwrap();
        let first_save = &events[events.len() - 2];
        let framing_change = first_save.detail["changed"]
            .as_array()
            .unwrap()
            .iter()
            .find(|ch| ch["criterion"] == "framing")
            .unwrap_or_else(|| panic!("{:?}", first_save.detail))
            .clone();
        assert_eq!(
            framing_change["items"][&unmet],
            serde_json::json!({ "from": false, "to": true })
        );
        assert_eq!(framing_change["feedback"], approved);
        assert_eq!(framing_change["to"], level);
        let last = events.last().unwrap();
        assert_eq!((last.actor.as_str(), last.kind.as_str()), ("ann", "review_finalized"));
        // The audit trail is on the packet.
        assert!(c.source().await.unwrap().contains("review finalized"));

        // Two sessions of ben's on Bob's packet: the second save is refused and keeps its input.
        let b1 = browser(&driver_url, &profiles.path().join("b1")).await;
        let b2 = browser(&driver_url, &profiles.path().join("b2")).await;
        sign_in(&b1, &base, "ben", &ben).await;
        sign_in(&b2, &base, "ben", &ben).await;
        let packet = format!("{base}/c/demo/s/{b_anon}");
        b1.goto(&packet).await.unwrap();
        b2.goto(&packet).await.unwrap();
        type_into(&b1, Locator::Id("comment-framing"), " (first tab)").await;
        let before = page(&b1).await;
        click(&b1, Locator::Css("button[value='save']")).await;
        let saved = banner(&b1, before).await;
        assert!(saved.contains("Review saved"), "{saved}");
        let mine = "My careful note from the second tab.";
        let note = b2.find(Locator::Id("comment-framing")).await.unwrap();
        note.clear().await.unwrap();
        note.send_keys(mine).await.unwrap();
        let before = page(&b2).await;
        click(&b2, Locator::Css("button[value='save']")).await;
        let refused = banner(&b2, before).await;
        assert!(
            refused.contains("Not saved") && refused.contains("Nothing was overwritten"),
            "{refused}"
        );
        let kept = note_text(&b2, "framing").await;
        assert_eq!(kept, mine, "the refused input is still in the form");
        assert!(b2.source().await.unwrap().contains("Stored now"));
        let bob_rec = record(&b_anon);
        let stored = &store.reviews(bob_rec.id).await.unwrap()[0];
        assert_eq!(stored.version, 1);
        assert!(stored.scores["framing"].comment.ends_with("(first tab)"), "{stored:?}");
        // Saving again on purpose replaces it.
        let before = page(&b2).await;
        click(&b2, Locator::Css("button[value='save']")).await;
        let resaved = banner(&b2, before).await;
        assert!(resaved.contains("Review saved"), "{resaved}");
        let stored = &store.reviews(bob_rec.id).await.unwrap()[0];
        assert_eq!((stored.version, stored.scores["framing"].comment.as_str()), (2, mine));

        // A form from another session is refused (the per-session form token).
        let cookie = b1.get_named_cookie("assay_session").await.unwrap();
        assert_eq!(cookie.http_only(), Some(true));
        let (status, _) = post(
            port,
            &format!("/c/demo/s/{b_anon}"),
            Some(cookie.value()),
            "csrf=forged&base=2&action=save",
        );
        assert_eq!(status, 403);
        assert_eq!(store.reviews(bob_rec.id).await.unwrap()[0].version, 2);

        // The export a grader can download is blind.
        let (status, csv) = http(
            port,
            &format!(
                "GET /c/demo/export.csv HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: assay_session={}\r\n\r\n",
                cookie.value()
            ),
        );
        assert_eq!(status, 200);
        assert!(csv.contains(&a_anon) && csv.contains(",ann,"), "{csv}");
        for h in hidden {
            assert!(!csv.contains(h), "export shows {h}");
        }
        // The lead's metrics page: ann's tick is the one item a grader changed.
        b1.goto(&format!("{base}/c/demo/metrics")).await.unwrap();
        let metrics = b1.source().await.unwrap();
        assert!(metrics.contains("kept the draft"), "metrics page");
        let row = b1
            .find(Locator::Id(&format!("item-framing-{unmet}")))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(row.contains("0 (0 %) 1 0"), "kept 0 of 1, ticked once: {row}");
        assert!(metrics.contains("Changed most by graders"), "metrics page");

        for c in [c, b1, b2] {
            c.close().await.unwrap();
        }
        (unmet, approved)
    });
    let (unmet, approved) = signed;

    // The export carries ann's ticks and the feedback she approved.
    let out = assay.run(&["export", "demo", "--format", "json"]);
    let doc = json_ok(&out);
    let row = &doc["reviews"][0];
    assert_eq!(row["items"]["framing"][&unmet], true, "{row:#}");
    assert_eq!(row["feedback"]["framing"], approved);
    assert!(doc["item_metrics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["item"] == unmet.as_str() && m["to_met"] == 1));

    // Feedback to candidates: only the signed-off review of alice's submission is sent.
    let fb = tempfile::tempdir().unwrap();
    let out = assay
        .cmd()
        .args(["feedback", "demo", "--out"])
        .arg(fb.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("bob-jones: no final review yet: nothing written"),
        "{said}"
    );
    assert!(!fb.path().join("bob-jones.feedback.html").exists());
    let html = std::fs::read_to_string(fb.path().join("alice-smith.feedback.html")).unwrap();
    let md = std::fs::read_to_string(fb.path().join("alice-smith.feedback.md")).unwrap();
    let rubric = assay::rubric::Rubric::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/rubrics/trial-project.toml"
    )))
    .unwrap();
    let framing = &rubric.criteria[0];
    let ticked_text = &framing.items.iter().find(|i| i.id == unmet).unwrap().text;
    assert!(md.contains(&format!("- [x] {ticked_text}")), "{md}");
    assert!(md.contains(approved) && html.contains(approved));
    assert!(html.contains("Reproducibility report") && md.contains("## Reproducibility report"));
    for c in &rubric.criteria {
        if let Some(g) = &c.guidelines {
            assert!(
                !html.contains(g.as_str()) && !md.contains(g.as_str()),
                "guidelines of {} leaked",
                c.id
            );
        }
    }
    for never in ["Draft rationale", "Automated:", "The history was rewritten by a rebase"] {
        assert!(
            !md.contains(never) && !html.contains(never),
            "{never} reached the candidate"
        );
    }
    // One candidate without a final review: nothing written, and exit 1.
    let out = assay
        .cmd()
        .args(["feedback", "demo", "--candidate", "bob-jones", "--out"])
        .arg(fb.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = assay.run(&["feedback", "demo", "--candidate", "nobody"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Signs in over plain HTTP; returns the session cookie's value.
fn sign_in_http(port: u16, name: &str, token: &str) -> String {
    let (status, head) = post(port, "/login", None, &format!("name={name}&token={token}&next=/"));
    assert_eq!(status, 303, "{head}");
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie: assay_session="))
        .unwrap();
    line.split_once('=').unwrap().1.split(';').next().unwrap().to_string()
}

fn get(port: u16, path: &str, cookie: &str) -> (u16, String) {
    http(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: assay_session={cookie}\r\n\r\n"),
    )
}

#[test]
fn serve_needs_graders_and_shows_identities_only_when_revealed() {
    let r = iterative();
    let work = tempfile::tempdir().unwrap();
    let cohort = cohort_of(work.path(), "", &[("carol-white", r.path())]);
    let assay = Assay::new();
    json_ok(&assay.run(&[
        "grade",
        "--no-drafts",
        "--no-sandbox",
        "--json",
        cohort.to_str().unwrap(),
    ]));
    let none = assay.run(&["serve", "--addr", "127.0.0.1:0"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("assay grader add NAME"));
    let bad = assay.run(&["grader", "add", "no spaces"]);
    assert_eq!(bad.status.code(), Some(2));
    let out = assay.run(&["grader", "add", "dee"]);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(
        String::from_utf8(assay.run(&["grader", "list"]).stdout).unwrap(),
        "dee\n"
    );

    for reveal in [false, true] {
        let port = free_port();
        let mut cmd = assay.cmd();
        cmd.args(["serve", "--addr", &format!("127.0.0.1:{port}")]);
        if reveal {
            cmd.arg("--reveal");
        }
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        wait_for_port(port, "assay serve", &mut child);
        let _child = Killed(child);
        let cookie = sign_in_http(port, "dee", &token);
        let (status, queue) = get(port, "/c/demo", &cookie);
        assert_eq!(status, 200);
        assert_eq!(queue.contains("carol-white"), reveal, "reveal={reveal}");
        let (status, _) = get(port, "/c/nope", &cookie);
        assert_eq!(status, 404);
        let (status, _) = get(port, "/c/demo/s/a-00000000", &cookie);
        assert_eq!(status, 404);
    }
}

#[test]
fn bench_serve_reports_every_page_over_a_generated_cohort() {
    let v = json_ok(&Assay::new().run(&["bench", "serve", "--size", "30", "--requests", "8", "--json"]));
    assert_eq!(v["submissions"], 30);
    let pages = v["pages"].as_array().unwrap();
    let names: Vec<&str> = pages.iter().map(|p| p["page"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "queue (cached triage)",
            "packet",
            "save review (POST, redirect)",
            "queue, triage recomputed (baseline)"
        ]
    );
    for p in pages {
        let (p50, p99, max) = (
            p["p50_ms"].as_f64().unwrap(),
            p["p99_ms"].as_f64().unwrap(),
            p["max_ms"].as_f64().unwrap(),
        );
        assert!(
            p["requests"].as_u64().unwrap() > 0 && 0.0 < p50 && p50 <= p99 && p99 <= max,
            "{p}"
        );
    }
    assert!(
        pages[1]["bytes"].as_u64().unwrap() > 10_000,
        "a packet has its evidence"
    );
}
