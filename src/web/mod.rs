//! `assay serve`: the graders' review UI (axum, server-rendered HTML, no JavaScript).
//!
//! Graders are listed in the settings with the sha256 of a token; they sign in with name and
//! token and get a session cookie (HttpOnly, SameSite=Strict) plus a per-session form token that
//! every write must carry. Nothing is readable or writable without a session. Pages: the
//! cohorts, a cohort's review queue (top K first, optionally in a per-grader random order), a
//! submission's packet with the review form pre-filled from the drafts, the lead's metrics and a
//! blind CSV export. Reviews go through [`Store::save_review`]: a save names the version it
//! started from, so a stale save is refused with the grader's input kept on the page.
//!
//! Blind mode (the default) replaces every candidate identity in what a page shows by the
//! submission's anonymised id ([`redact`]); URLs only ever name anonymised ids.
//!
//! Triage of a cohort is computed once and cached in memory, keyed on [`Store::cohort_stamp`]
//! (one cheap query per request), so the queue does not re-read every submission's runs; while
//! a cohort is being graded, it is recomputed at most every ten seconds.

mod auth;
mod cache;
mod form;
mod pages;
pub mod redact;

use self::auth::*;
pub use self::auth::{random_token, token_hash, COOKIE};
use self::cache::*;
use self::form::*;
use self::pages::*;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::extract::{Form, Path, Query, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tera::{Context, Tera};

use crate::config::Grader;
use crate::report;
use crate::review;
use crate::review::{CriterionReview, ItemReview, Review, ReviewStatus};
use crate::rubric::Rubric;
use crate::store::{CohortRecord, ReviewSave, SaveOutcome, Store, StoreError};
use crate::submission::SubmissionRecord;
use crate::triage::Triage;

use redact::Redactor;

const TEMPLATES: [(&str, &str); 7] = [
    ("web_base.html", include_str!("templates/web_base.html.tera")),
    ("login.html", include_str!("templates/login.html.tera")),
    ("cohorts.html", include_str!("templates/cohorts.html.tera")),
    ("queue.html", include_str!("templates/queue.html.tera")),
    ("queue_rows.html", include_str!("templates/queue_rows.html.tera")),
    ("review.html", include_str!("templates/review.html.tera")),
    ("metrics.html", include_str!("templates/metrics.html.tera")),
];

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Hide candidate identities (the default).
    pub blind: bool,
}

/// The server's state.
pub struct App {
    store: Arc<dyn Store>,
    graders: Vec<Grader>,
    options: Options,
    tera: Tera,
    sessions: Mutex<HashMap<String, Session>>,
    views: tokio::sync::Mutex<HashMap<i64, Arc<CohortView>>>,
}

/// A page that could not be served, shown to the grader as such.
#[derive(Debug)]
enum WebError {
    NotFound(String),
    BadRequest(String),
    Store(StoreError),
    Render(String),
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        WebError::Store(e)
    }
}

impl App {
    /// The application over `store`, for `graders`.
    pub fn new(store: Arc<dyn Store>, graders: Vec<Grader>, options: Options) -> Arc<App> {
        Arc::new(App {
            store,
            graders,
            options,
            tera: report::html_engine_with(&TEMPLATES),
            sessions: Mutex::new(HashMap::new()),
            views: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", get(cohorts_page))
            .route("/login", get(login_page).post(login))
            .route("/logout", post(logout))
            .route("/c/{cohort}", get(queue_page))
            .route("/c/{cohort}/metrics", get(metrics_page))
            .route("/c/{cohort}/export.csv", get(export_csv))
            .route("/c/{cohort}/s/{anon}", get(packet_page).post(save))
            .fallback(not_found)
            .layer(axum::middleware::map_response(security_headers))
            .with_state(self.clone())
    }

    /// Renders a page; candidate text in it is made [`printable`](crate::untrusted::printable).
    fn render(&self, template: &str, ctx: &Context) -> Result<String, WebError> {
        self.tera
            .render(template, ctx)
            .map(|page| crate::untrusted::printable(&page))
            .map_err(|e| {
                let mut msg = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    msg.push_str(&format!(": {s}"));
                    source = s.source();
                }
                WebError::Render(msg)
            })
    }

    fn base_context(&self, session: Option<&Session>) -> Context {
        let mut ctx = Context::new();
        ctx.insert("version", env!("CARGO_PKG_VERSION"));
        ctx.insert("blind", &self.options.blind);
        ctx.insert("grader", &session.map(|s| &s.grader));
        ctx.insert("csrf", &session.map(|s| &s.csrf));
        ctx
    }
}

/// Serves `app` on `addr` until Ctrl-C.
pub async fn serve(app: Arc<App>, addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    eprintln!(
        "assay serve: http://{bound}/ — {} grader(s), blind review {}; Ctrl-C stops",
        app.graders.len(),
        if app.options.blind { "on" } else { "OFF (--reveal)" }
    );
    if !bound.ip().is_loopback() {
        eprintln!("warning: {bound} is reachable from other machines; put a TLS proxy in front of it");
    }
    let warm = app.clone();
    tokio::spawn(async move {
        if let Err(e) = warm.warm().await {
            tracing::warn!("could not precompute the cohorts' queues: {e}");
        }
    });
    axum::serve(listener, app.router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            WebError::Store(e) => {
                tracing::error!("store: {e}");
                (StatusCode::INTERNAL_SERVER_ERROR, format!("database error: {e}"))
            }
            WebError::Render(m) => {
                tracing::error!("render: {m}");
                (StatusCode::INTERNAL_SERVER_ERROR, format!("page error: {m}"))
            }
        };
        error_page(status, &message)
    }
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — assay</title></head>\
         <body><main><h1>{}</h1><p>{}</p><p><a href=\"/\">Cohorts</a></p></main></body></html>",
        status.as_u16(),
        html_escape(status.canonical_reason().unwrap_or("Error")),
        html_escape(message)
    );
    (status, Html(body)).into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "no such page")
}

/// A path segment, percent-encoded.
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_string())]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rubric::{Automated, Criterion, Level};

    fn rubric() -> Rubric {
        let level = |score: u32| Level {
            score,
            descriptor: format!("level {score}"),
        };
        Rubric {
            name: "t".into(),
            criteria: vec![Criterion {
                id: "framing".into(),
                title: "Problem framing".into(),
                description: String::new(),
                weight: 1.0,
                levels: (1..=4).map(level).collect(),
                evidence: vec!["readme".into()],
                guidelines: None,
                automated: Automated {
                    from: vec!["readme".into()],
                    combine: Default::default(),
                },
                items: vec![],
                rule: Default::default(),
            }],
            band_above: 1,
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_review_form_is_read_and_checked_against_the_rubric() {
        let r = rubric();
        let input = parse_review(
            &r,
            &fields(&[
                ("csrf", "x"),
                ("base", "3"),
                ("action", "finalize"),
                ("score:framing", "2"),
                ("draft:framing", "3"),
                ("comment:framing", "metric stated\r\nlate"),
                ("comment", " overall "),
            ]),
        )
        .unwrap();
        assert_eq!(
            (input.base, input.finalize, input.comment.as_str()),
            (3, true, "overall")
        );
        let f = &input.scores["framing"];
        assert_eq!(
            (f.score, f.draft_score, f.comment.as_str()),
            (Some(2), Some(3), "metric stated\nlate")
        );
        let unscored = parse_review(&r, &fields(&[("score:framing", ""), ("action", "save")])).unwrap();
        assert_eq!(unscored.scores["framing"].score, None);
        assert!(!unscored.finalize);
        let err = parse_review(&r, &fields(&[("score:framing", "7")])).unwrap_err();
        assert!(err.contains("7 is not one of its levels"), "{err}");
        let err = parse_review(&r, &fields(&[("score:nope", "1")])).unwrap_err();
        assert!(err.contains("no criterion \"nope\""), "{err}");
    }

    #[test]
    fn checklist_boxes_are_read_and_the_level_follows_them_unless_overridden() {
        let mut r = rubric();
        let item = |id: &str, check: &str| crate::rubric::Item {
            id: id.into(),
            text: format!("{id} text"),
            decide: crate::rubric::Decide::Check(check.into()),
            weight: 1.0,
        };
        r.criteria[0].items = vec![
            item("metric", "readme_results"),
            item("scope", "has_tests"),
            item("ci", "ci_config"),
        ];
        // Two boxes ticked, the level from the checklist: 1 + 2 met = 3.
        let input = parse_review(
            &r,
            &fields(&[
                ("score:framing", "items"),
                ("item:framing:metric", "1"),
                ("item:framing:ci", "1"),
                ("itemdraft:framing:metric", "0"),
                ("itemdraft:framing:scope", "1"),
                ("itemdraft:framing:ci", "1"),
                ("feedback:framing", "State the metric.\r\n"),
            ]),
        )
        .unwrap();
        let f = &input.scores["framing"];
        assert_eq!(f.score, Some(3));
        let ticks: Vec<(&str, bool, Option<bool>)> = f
            .items
            .iter()
            .map(|(id, x)| (id.as_str(), x.met, x.draft_met))
            .collect();
        assert_eq!(
            ticks,
            [
                ("ci", true, Some(true)),
                ("metric", true, Some(false)),
                ("scope", false, Some(true))
            ]
        );
        assert_eq!(f.feedback, "State the metric.");
        // An explicit level is kept as the grader's override.
        let input = parse_review(&r, &fields(&[("score:framing", "1"), ("item:framing:metric", "1")])).unwrap();
        assert_eq!(input.scores["framing"].score, Some(1));
        assert!(
            !review::override_problems(&r, &input.scores).is_empty(),
            "an override without a note"
        );
        // No box ticked: the lowest level.
        let input = parse_review(&r, &fields(&[("score:framing", "items")])).unwrap();
        assert_eq!(input.scores["framing"].score, Some(1));
        let err = parse_review(&r, &fields(&[("item:framing:nope", "1")])).unwrap_err();
        assert!(err.contains("no item \"nope\""), "{err}");
    }

    #[test]
    fn the_page_templates_parse() {
        let tera = report::html_engine_with(&TEMPLATES);
        for (name, _) in TEMPLATES {
            assert!(tera.get_template_names().any(|n| n == name), "{name}");
        }
    }

    #[test]
    fn cookies_tokens_and_redirect_targets() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; assay_session=abc"));
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "b"), None);
        let t = random_token();
        assert_eq!(t.len(), 64);
        assert_ne!(t, random_token());
        assert_eq!(token_hash(&format!(" {t}\n")), token_hash(&t));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
        assert_eq!(safe_next(Some("/c/x")), "/c/x");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", ""] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(seg("churn model/v2"), "churn%20model%2Fv2");
    }
}
