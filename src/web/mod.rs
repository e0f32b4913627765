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

pub mod redact;

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

/// The session cookie's name.
pub const COOKIE: &str = "assay_session";
/// How stale a changing cohort's queue may get (see [`App::view`]).
const REFRESH: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest comment kept per field (characters).
const MAX_COMMENT: usize = 10_000;

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

/// A signed-in grader.
#[derive(Debug, Clone)]
struct Session {
    grader: String,
    /// Every form posts it back; a request from another site cannot know it.
    csrf: String,
    started: std::time::Instant,
}

/// How long a sign-in lasts.
const SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

/// One cohort as the UI shows it, computed once per change of the cohort's runs.
struct CohortView {
    stamp: String,
    built: std::time::Instant,
    record: CohortRecord,
    rubric: Rubric,
    records: Vec<SubmissionRecord>,
    triage: Triage,
    /// anon id → index into `records`.
    by_anon: HashMap<String, usize>,
    redactor: Redactor,
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

    /// Computes every cohort's view now, so the first grader does not wait for it.
    pub async fn warm(self: &Arc<Self>) -> Result<(), StoreError> {
        for c in self.store.cohorts().await? {
            if let Err(e) = self.view(&c.name).await {
                tracing::warn!("cohort {:?}: {e:?}", c.name);
            }
        }
        Ok(())
    }

    /// Forgets cached views (the next page computes them again).
    pub async fn forget_views(&self) {
        self.views.lock().await.clear();
    }

    fn render(&self, template: &str, ctx: &Context) -> Result<String, WebError> {
        self.tera.render(template, ctx).map_err(|e| {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            WebError::Render(msg)
        })
    }

    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        self.sessions
            .lock()
            .expect("sessions lock")
            .get(&id)
            .filter(|s| s.started.elapsed() < SESSION_TTL)
            .cloned()
    }

    fn base_context(&self, session: Option<&Session>) -> Context {
        let mut ctx = Context::new();
        ctx.insert("version", env!("CARGO_PKG_VERSION"));
        ctx.insert("blind", &self.options.blind);
        ctx.insert("grader", &session.map(|s| &s.grader));
        ctx.insert("csrf", &session.map(|s| &s.csrf));
        ctx
    }

    /// The cohort's view, recomputed when its stamp moved.
    async fn view(&self, name: &str) -> Result<Arc<CohortView>, WebError> {
        let Some(id) = self.store.cohort_id(name).await? else {
            return Err(WebError::NotFound(format!("no cohort named {name:?}")));
        };
        let stamp = self.store.cohort_stamp(id).await?;
        let mut views = self.views.lock().await;
        // While a cohort is being graded its stamp moves with every stage; recomputing its
        // triage (seconds for a thousand submissions) at most every REFRESH keeps pages fast.
        if let Some(v) = views
            .get(&id)
            .filter(|v| v.stamp == stamp || v.built.elapsed() < REFRESH)
        {
            return Ok(v.clone());
        }
        let record = self
            .store
            .cohorts()
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| WebError::NotFound(format!("no cohort named {name:?}")))?;
        let rubric = record.rubric().ok_or_else(|| {
            WebError::BadRequest(format!(
                "cohort {name:?} was graded before rubrics were stored with cohorts: grade it again to review it"
            ))
        })?;
        let summary = crate::results::summarize(self.store.as_ref(), name, id, &rubric, record.top()).await?;
        let records = self.store.submissions(id).await?;
        let by_anon = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.anon_id.clone(), i))
            .collect();
        let view = Arc::new(CohortView {
            stamp,
            built: std::time::Instant::now(),
            redactor: Redactor::new(&records),
            record,
            rubric,
            records,
            triage: summary.triage,
            by_anon,
        });
        views.insert(id, view.clone());
        Ok(view)
    }

    /// `ctx` as the page may show it: identities redacted in blind mode. The form token and the
    /// page's own links are put back as they were (a cohort named like a candidate must not
    /// break them).
    fn shown(&self, view: &CohortView, ctx: Context) -> Context {
        if !self.options.blind {
            return ctx;
        }
        const KEEP: [&str; 4] = ["csrf", "action", "cohort_href", "base"];
        let kept: Vec<(&str, serde_json::Value)> = KEEP
            .iter()
            .filter_map(|k| ctx.get(k).map(|v| (*k, v.clone())))
            .collect();
        let mut v = ctx.into_json();
        view.redactor.json(&mut v);
        let mut ctx = Context::from_value(v).expect("an object stays an object");
        for (k, v) in kept {
            ctx.insert(k, &v);
        }
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

/// A signed-in grader. Without a session, a page (GET) redirects to the sign-in, which comes
/// back to it; anything else is refused (401).
struct Signed(Session);

impl FromRequestParts<Arc<App>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        if let Some(s) = app.session(&parts.headers) {
            return Ok(Signed(s));
        }
        if parts.method == Method::GET {
            return Err(to_login(parts.uri.path_and_query().map_or("/", |p| p.as_str())));
        }
        Err(error_page(StatusCode::UNAUTHORIZED, "sign in first: nothing was saved"))
    }
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

/// A cookie's value from the request's Cookie headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// 64 hex digits from the operating system's random source.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    hex::encode(bytes)
}

/// Lower-case hex sha256 of a token, as settings store it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// Equal without an early exit (a token check must not tell how much of a guess was right).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

/// Where an unsigned visitor of `path` goes.
fn to_login(path: &str) -> Response {
    see_other(&format!("/login?next={}", seg(path)))
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Only same-site paths: `/x`, never `//host` or a URL.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

async fn login_page(State(app): State<Arc<App>>, Query(q): Query<NextQuery>) -> Result<Response, WebError> {
    let mut ctx = app.base_context(None);
    ctx.insert("next", safe_next(q.next.as_deref()));
    ctx.insert("failed", &false);
    ctx.insert("no_graders", &app.graders.is_empty());
    Ok(Html(app.render("login.html", &ctx)?).into_response())
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    token: String,
    next: Option<String>,
}

async fn login(State(app): State<Arc<App>>, Form(f): Form<LoginForm>) -> Result<Response, WebError> {
    let hash = token_hash(&f.token);
    let known = app
        .graders
        .iter()
        .find(|g| g.name == f.name.trim() && same(&g.token_sha256, &hash));
    let Some(grader) = known else {
        tracing::warn!("failed sign-in as {:?}", f.name);
        let mut ctx = app.base_context(None);
        ctx.insert("next", safe_next(f.next.as_deref()));
        ctx.insert("failed", &true);
        ctx.insert("no_graders", &app.graders.is_empty());
        return Ok((StatusCode::UNAUTHORIZED, Html(app.render("login.html", &ctx)?)).into_response());
    };
    let id = random_token();
    let mut sessions = app.sessions.lock().expect("sessions lock");
    sessions.retain(|_, s| s.started.elapsed() < SESSION_TTL);
    sessions.insert(
        id.clone(),
        Session {
            grader: grader.name.clone(),
            csrf: random_token(),
            started: std::time::Instant::now(),
        },
    );
    drop(sessions);
    let mut res = see_other(safe_next(f.next.as_deref()));
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict")).expect("hex cookie value"),
    );
    Ok(res)
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap, Form(f): Form<CsrfForm>) -> Response {
    if let Some(id) = cookie(&headers, COOKIE) {
        let mut sessions = app.sessions.lock().expect("sessions lock");
        if sessions.get(&id).is_some_and(|s| same(&s.csrf, &f.csrf)) {
            sessions.remove(&id);
        }
    }
    let mut res = see_other("/login");
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("assay_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    res
}

#[derive(Serialize)]
struct CohortRow {
    name: String,
    href: String,
    top: usize,
    graded_with: Option<String>,
}

async fn cohorts_page(State(app): State<Arc<App>>, Signed(session): Signed) -> Result<Response, WebError> {
    let rows: Vec<CohortRow> = app
        .store
        .cohorts()
        .await?
        .into_iter()
        .map(|c| CohortRow {
            href: format!("/c/{}", seg(&c.name)),
            top: c.top(),
            graded_with: c.rubric().map(|r| r.name),
            name: c.name,
        })
        .collect();
    let mut ctx = app.base_context(Some(&session));
    ctx.insert("cohorts", &rows);
    Ok(Html(app.render("cohorts.html", &ctx)?).into_response())
}

#[derive(Deserialize)]
struct QueueQuery {
    order: Option<String>,
}

#[derive(Serialize)]
struct QueueRow {
    rank: Option<usize>,
    label: String,
    href: String,
    total: Option<f64>,
    confidence: f64,
    reasons: Vec<&'static str>,
    tie: bool,
    doubts: usize,
    /// The signed-in grader's review: none, open or final.
    mine: &'static str,
    /// Final reviews by other graders.
    others_final: usize,
}

async fn queue_page(
    State(app): State<Arc<App>>,
    Signed(session): Signed,
    Path(cohort): Path<String>,
    Query(q): Query<QueueQuery>,
) -> Result<Response, WebError> {
    let view = app.view(&cohort).await?;
    let reviews = app.store.cohort_reviews(view.record.id).await?;
    let mut status: HashMap<i64, (&'static str, usize)> = HashMap::new();
    for r in &reviews {
        let e = status.entry(r.submission_id).or_insert(("none", 0));
        if r.grader == session.grader {
            e.0 = r.status.as_str();
        } else if r.status == ReviewStatus::Final {
            e.1 += 1;
        }
    }
    let random = q.order.as_deref() == Some("random");
    let base = format!("/c/{}", seg(&cohort));
    let row = |t: &crate::triage::Triaged| {
        let rec = view.by_anon.get(&t.anon_id).map(|&i| &view.records[i]);
        let (mine, others_final) = rec.and_then(|r| status.get(&r.id)).copied().unwrap_or(("none", 0));
        QueueRow {
            rank: t.rank,
            label: if app.options.blind {
                t.anon_id.clone()
            } else {
                t.candidate.clone()
            },
            href: format!("{base}/s/{}", seg(&t.anon_id)),
            total: t.total,
            confidence: t.confidence,
            reasons: t.queued.iter().map(|r| r.as_str()).collect(),
            tie: t.tie,
            doubts: t.doubts.len(),
            mine,
            others_final,
        }
    };
    let mut queued: Vec<QueueRow> = view.triage.queue().map(row).collect();
    let rest: Vec<QueueRow> = view
        .triage
        .submissions
        .iter()
        .filter(|t| t.queued.is_empty())
        .map(row)
        .collect();
    if random {
        // Per grader and cohort: stable across visits, different between graders, so two
        // graders do not review in the same order (and anchor on the same first packets).
        let key = |r: &QueueRow| Sha256::digest(format!("{}\n{}\n{}", session.grader, cohort, r.href));
        queued.sort_by_cached_key(key);
    }
    let mut ctx = app.base_context(Some(&session));
    ctx.insert("cohort", &cohort);
    ctx.insert("base", &base);
    ctx.insert("top_k", &view.triage.top_k);
    ctx.insert("random", &random);
    ctx.insert("queued", &queued);
    ctx.insert("rest", &rest);
    ctx.insert(
        "finals",
        &reviews.iter().filter(|r| r.status == ReviewStatus::Final).count(),
    );
    let ctx = app.shown(&view, ctx);
    Ok(Html(app.render("queue.html", &ctx)?).into_response())
}

#[derive(Deserialize)]
struct PacketQuery {
    saved: Option<String>,
}

/// What the review form holds for one criterion.
#[derive(Debug, Clone, Default, Serialize)]
struct FormCriterion {
    score: Option<u32>,
    comment: String,
    draft_score: Option<u32>,
}

/// A review as the form posts it.
#[derive(Debug, Clone, Default)]
struct ReviewInput {
    csrf: String,
    base: i64,
    finalize: bool,
    scores: BTreeMap<String, CriterionReview>,
    comment: String,
}

/// Reads the posted form: per criterion `score:<id>` (a level, `items` for the level its
/// ticked items give, or empty), `comment:<id>`, `draft:<id>`, `feedback:<id>`; per checklist
/// item `item:<criterion>:<item>` (a checkbox, posted only when ticked) and
/// `itemdraft:<criterion>:<item>` (the draft's answer, `1` or `0`); then `comment`, `base`,
/// `action` (save or finalize) and `csrf`.
fn parse_review(rubric: &Rubric, fields: &[(String, String)]) -> Result<ReviewInput, String> {
    let mut input = ReviewInput::default();
    for c in &rubric.criteria {
        let items = c.items.iter().map(|i| (i.id.clone(), ItemReview::default())).collect();
        input.scores.insert(
            c.id.clone(),
            CriterionReview {
                items,
                ..Default::default()
            },
        );
    }
    let mut follow_items = Vec::new();
    let clip = |s: &str| s.replace("\r\n", "\n").chars().take(MAX_COMMENT).collect::<String>();
    for (k, v) in fields {
        let v = v.trim();
        match k.as_str() {
            "csrf" => input.csrf = v.to_string(),
            "base" => input.base = v.parse().map_err(|_| format!("base version {v:?} is not a number"))?,
            "action" => input.finalize = v == "finalize",
            "comment" => input.comment = clip(v),
            _ => {
                let Some((kind, rest)) = k.split_once(':') else {
                    continue;
                };
                let (id, item) = match rest.split_once(':') {
                    Some((id, item)) => (id, Some(item)),
                    None => (rest, None),
                };
                let Some(c) = rubric.criteria.iter().find(|c| c.id == id) else {
                    return Err(format!("the rubric has no criterion {id:?}"));
                };
                let entry = input.scores.get_mut(id).expect("every criterion inserted");
                if let Some(item) = item {
                    let Some(x) = entry.items.get_mut(item) else {
                        return Err(format!("{}: the rubric has no item {item:?}", c.title));
                    };
                    match kind {
                        "item" => x.met = true,
                        "itemdraft" => x.draft_met = Some(v == "1"),
                        _ => {}
                    }
                    continue;
                }
                let score = || -> Result<Option<u32>, String> {
                    if v.is_empty() {
                        return Ok(None);
                    }
                    let s: u32 = v
                        .parse()
                        .map_err(|_| format!("{}: score {v:?} is not a number", c.title))?;
                    if !c.levels.iter().any(|l| l.score == s) {
                        return Err(format!("{}: {s} is not one of its levels", c.title));
                    }
                    Ok(Some(s))
                };
                match kind {
                    "score" if v == "items" && !c.items.is_empty() => follow_items.push(c),
                    "score" => entry.score = score()?,
                    "draft" => entry.draft_score = score()?,
                    "comment" => entry.comment = clip(v),
                    "feedback" => entry.feedback = clip(v),
                    _ => {}
                }
            }
        }
    }
    // The level follows the items once every box is read.
    for c in follow_items {
        let entry = input.scores.get_mut(&c.id).expect("every criterion inserted");
        entry.score = review::items_level(c, entry);
    }
    Ok(input)
}

/// One checklist item of the review form.
#[derive(Serialize)]
struct FormItem<'a> {
    id: &'a str,
    text: &'a str,
    kind: &'static str,
    /// Whether the box is ticked.
    checked: bool,
    /// The draft's answer and its reading (evidence, quote, flags, note), when drafted.
    draft: Option<crate::rubric::assess::ItemResult>,
}

#[derive(Serialize)]
struct LevelRow {
    score: u32,
    descriptor: String,
    checked: bool,
}

/// A criterion of the review form: the packet's row and what the form holds.
#[derive(Serialize)]
struct FormRow<'a> {
    #[serde(flatten)]
    row: report::CriterionRow<'a>,
    description: &'a str,
    levels: Vec<LevelRow>,
    unscored: bool,
    comment: String,
    /// A checklist criterion's items as the form shows them (empty otherwise).
    form_items: Vec<FormItem<'a>>,
    /// The level the ticked items give (checklist criteria).
    items_level: Option<u32>,
    /// The score follows the items (no override).
    follows_items: bool,
    /// The candidate-facing feedback (the grader's, else the draft's).
    feedback_text: String,
    /// What the stored review holds, when a conflict shows it beside the grader's input.
    stored: Option<FormCriterion>,
}

/// The banner over the form.
#[derive(Serialize)]
struct Banner {
    kind: &'static str,
    title: String,
    lines: Vec<String>,
}

struct PacketState<'a> {
    /// What the form shows: the grader's input (after a refused save) or the stored review.
    input: Option<&'a ReviewInput>,
    /// The grader's stored review.
    mine: Option<&'a Review>,
    /// Another save's review, shown beside the input after a conflict.
    theirs: Option<&'a Review>,
    banner: Option<Banner>,
}

async fn packet_page(
    State(app): State<Arc<App>>,
    Signed(session): Signed,
    Path((cohort, anon)): Path<(String, String)>,
    Query(q): Query<PacketQuery>,
) -> Result<Response, WebError> {
    let view = app.view(&cohort).await?;
    let rec = submission(&view, &anon)?;
    let reviews = app.store.reviews(rec.id).await?;
    let mine = reviews.iter().find(|r| r.grader == session.grader);
    let banner = match q.saved.as_deref() {
        Some("final") => Some(Banner {
            kind: "ok",
            title: "Review finalized.".into(),
            lines: vec![],
        }),
        Some(_) => Some(Banner {
            kind: "ok",
            title: "Review saved.".into(),
            lines: vec![],
        }),
        None => None,
    };
    let state = PacketState {
        input: None,
        mine,
        theirs: None,
        banner,
    };
    let page = packet_html(&app, &session, &view, rec, &reviews, state).await?;
    Ok(Html(page).into_response())
}

fn submission<'a>(view: &'a CohortView, anon: &str) -> Result<&'a SubmissionRecord, WebError> {
    view.by_anon
        .get(anon)
        .map(|&i| &view.records[i])
        .ok_or_else(|| WebError::NotFound(format!("no submission {anon:?} in cohort {:?}", view.record.name)))
}

async fn packet_html(
    app: &App,
    session: &Session,
    view: &CohortView,
    rec: &SubmissionRecord,
    reviews: &[Review],
    state: PacketState<'_>,
) -> Result<String, WebError> {
    let (summary, detail) = crate::results::view(app.store.as_ref(), rec).await?;
    let t = view.triage.submissions.iter().find(|t| t.anon_id == rec.anon_id);
    let mut ctx = report::packet_context(&view.record.name, &view.rubric, &summary, &detail, t);
    ctx.extend(app.base_context(Some(session)));
    let final_review = state.mine.filter(|r| r.status == ReviewStatus::Final);
    let rows: Vec<FormRow> = view
        .rubric
        .criteria
        .iter()
        .zip(report::criterion_rows(&view.rubric, &summary, t))
        .map(|(c, row)| {
            // Input after a refused save, else the stored review, else the draft.
            // A checklist criterion's note starts empty: its rationale (shown above the form)
            // only restates the items, and the note is where the grader explains an override.
            let draft = CriterionReview {
                score: row.draft_score,
                comment: if c.items.is_empty() {
                    row.rationale.clone()
                } else {
                    String::new()
                },
                draft_score: row.draft_score,
                items: row
                    .items
                    .iter()
                    .map(|i| {
                        (
                            i.id.clone(),
                            ItemReview {
                                met: i.met,
                                draft_met: Some(i.met),
                            },
                        )
                    })
                    .collect(),
                feedback: row.feedback.clone().unwrap_or_default(),
            };
            let mut shown = if let Some(input) = state.input {
                input.scores[&c.id].clone()
            } else if let Some(r) = state.mine {
                r.scores.get(&c.id).cloned().unwrap_or_default()
            } else {
                draft.clone()
            };
            // A review saved before the criterion had items (or before the draft answered
            // them) shows the draft's answers.
            if shown.items.is_empty() {
                shown.items = draft.items.clone();
            }
            let items_level = review::items_level(c, &shown);
            let follows_items = items_level.is_some() && shown.score == items_level;
            let form_items = c
                .items
                .iter()
                .map(|i| FormItem {
                    id: &i.id,
                    text: &i.text,
                    kind: i.decide.kind(),
                    checked: shown.items.get(&i.id).is_some_and(|x| x.met),
                    draft: row.items.iter().find(|r| r.id == i.id).cloned(),
                })
                .collect();
            let score = shown.score;
            FormRow {
                description: &c.description,
                levels: c
                    .levels
                    .iter()
                    .map(|l| LevelRow {
                        score: l.score,
                        descriptor: l.descriptor.clone(),
                        checked: !follows_items && score == Some(l.score),
                    })
                    .collect(),
                unscored: score.is_none(),
                comment: shown.comment,
                form_items,
                items_level,
                follows_items,
                feedback_text: shown.feedback,
                stored: state.theirs.map(|r| {
                    let x = r.scores.get(&c.id).cloned().unwrap_or_default();
                    FormCriterion {
                        score: x.score,
                        comment: x.comment,
                        draft_score: x.draft_score,
                    }
                }),
                row,
            }
        })
        .collect();
    let base_version = match (state.theirs, state.input, state.mine) {
        (Some(r), _, _) => r.version,
        (None, Some(i), _) => i.base,
        (None, None, Some(r)) => r.version,
        _ => 0,
    };
    let comment = match (state.input, state.mine) {
        (Some(i), _) => i.comment.clone(),
        (None, Some(r)) => r.comment.clone(),
        _ => String::new(),
    };
    ctx.insert("form", &rows);
    ctx.insert("base_version", &base_version);
    ctx.insert("overall", &comment);
    ctx.insert("banner", &state.banner);
    ctx.insert("final", &final_review.map(|r| &r.finalized_at));
    ctx.insert(
        "mine",
        &state.mine.map(|r| (r.status.as_str(), r.version, &r.updated_at)),
    );
    let others: Vec<&Review> = reviews.iter().filter(|r| r.grader != session.grader).collect();
    ctx.insert("others", &others.len());
    ctx.insert(
        "others_final",
        &others.iter().filter(|r| r.status == ReviewStatus::Final).count(),
    );
    let cohort_href = format!("/c/{}", seg(&view.record.name));
    ctx.insert("action", &format!("{cohort_href}/s/{}", seg(&rec.anon_id)));
    ctx.insert("cohort_href", &cohort_href);
    ctx.insert(
        "label",
        if app.options.blind {
            &rec.anon_id
        } else {
            &rec.candidate
        },
    );
    ctx.insert("events", &app.store.events(rec.id).await?);
    let mut ctx = app.shown(view, ctx);
    // In blind mode the chart is drawn from the redacted history (its tooltips carry commit
    // messages); otherwise straight from the stored one.
    let history = if app.options.blind {
        ctx.get("h")
            .cloned()
            .and_then(|h| serde_json::from_value::<crate::git::history::HistoryReport>(h).ok())
    } else {
        detail.history
    };
    if let Some(h) = history {
        ctx.insert("timeline_svg", &report::svg::timeline(&h));
    }
    app.render("review.html", &ctx)
}

async fn save(
    State(app): State<Arc<App>>,
    Signed(session): Signed,
    Path((cohort, anon)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let view = app.view(&cohort).await?;
    let rec = submission(&view, &anon)?;
    let input = parse_review(&view.rubric, &fields).map_err(WebError::BadRequest)?;
    if !same(&input.csrf, &session.csrf) {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "this form is from another session (signed out or restarted server): nothing was saved; open the packet again",
        ));
    }
    let reviews = app.store.reviews(rec.id).await?;
    let mine = reviews.iter().find(|r| r.grader == session.grader);
    // An override without a note, or a finalize with a criterion unscored: nothing is saved
    // and the page comes back with the grader's input and why.
    let refusal = match review::override_problems(&view.rubric, &input.scores) {
        o if !o.is_empty() => Some((
            "Not saved: a level that overrides the checklist needs a note. Nothing was saved; your input is below.",
            o,
        )),
        _ if input.finalize => Some((
            "Not finalized: every criterion needs a score. Nothing was saved; your input is below.",
            review::final_problems(&view.rubric, &input.scores),
        ))
        .filter(|(_, p)| !p.is_empty()),
        _ => None,
    };
    if let Some((title, lines)) = refusal {
        let state = PacketState {
            input: Some(&input),
            mine,
            theirs: None,
            banner: Some(Banner {
                kind: "error",
                title: title.into(),
                lines,
            }),
        };
        let page = packet_html(&app, &session, &view, rec, &reviews, state).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page)).into_response());
    }
    let outcome = app
        .store
        .save_review(&ReviewSave {
            submission_id: rec.id,
            grader: &session.grader,
            actor: &session.grader,
            base_version: input.base,
            scores: input.scores.clone(),
            comment: input.comment.clone(),
            finalize: input.finalize,
        })
        .await?;
    let packet = format!("/c/{}/s/{}", seg(&cohort), seg(&anon));
    match outcome {
        SaveOutcome::Saved(r) => Ok(see_other(&format!(
            "{packet}?saved={}",
            if r.status == ReviewStatus::Final { "final" } else { "1" }
        ))),
        SaveOutcome::Conflict(current) => {
            let reviews = app.store.reviews(rec.id).await?;
            let when = current
                .as_ref()
                .map(|r| format!("version {} of {}", r.version, r.updated_at))
                .unwrap_or_default();
            let state = PacketState {
                input: Some(&input),
                mine: current.as_ref(),
                theirs: current.as_ref(),
                banner: Some(Banner {
                    kind: "error",
                    title: format!(
                        "Not saved: this review was saved elsewhere ({when}) since you opened it. Nothing was overwritten."
                    ),
                    lines: vec![
                        "Your input is kept below; what is stored now is shown beside each criterion.".into(),
                        "Save again to replace the stored review with yours.".into(),
                    ],
                }),
            };
            let page = packet_html(&app, &session, &view, rec, &reviews, state).await?;
            Ok((StatusCode::CONFLICT, Html(page)).into_response())
        }
        SaveOutcome::AlreadyFinal(r) => {
            let state = PacketState {
                input: Some(&input),
                mine: Some(&r),
                theirs: Some(&r),
                banner: Some(Banner {
                    kind: "error",
                    title: format!(
                        "Not saved: this review was finalized at {} and cannot change.",
                        r.finalized_at.as_deref().unwrap_or("?")
                    ),
                    lines: vec!["Your input is kept below for reference.".into()],
                }),
            };
            let page = packet_html(&app, &session, &view, rec, &reviews, state).await?;
            Ok((StatusCode::CONFLICT, Html(page)).into_response())
        }
    }
}

async fn metrics_page(
    State(app): State<Arc<App>>,
    Signed(session): Signed,
    Path(cohort): Path<String>,
) -> Result<Response, WebError> {
    let view = app.view(&cohort).await?;
    let reviews = app.store.cohort_reviews(view.record.id).await?;
    let metrics = review::metrics(&view.rubric, &reviews);
    #[derive(Serialize)]
    struct Row<'a> {
        title: &'a str,
        m: &'a review::CriterionMetrics,
        kept_pct: Option<u32>,
        exact_pct: Option<u32>,
        within_pct: Option<u32>,
    }
    let pct = |n: usize, of: usize| (of > 0).then(|| (100.0 * n as f64 / of as f64).round() as u32);
    let rows: Vec<Row> = metrics
        .iter()
        .map(|m| Row {
            title: view
                .rubric
                .criteria
                .iter()
                .find(|c| c.id == m.criterion)
                .map_or(&m.criterion, |c| &c.title),
            kept_pct: pct(m.kept_draft, m.with_draft),
            exact_pct: pct(m.exact, m.pairs),
            within_pct: pct(m.within_one, m.pairs),
            m,
        })
        .collect();
    #[derive(Serialize)]
    struct ItemRow<'a> {
        criterion: &'a str,
        text: &'a str,
        m: &'a review::ItemMetrics,
        kept_pct: Option<u32>,
    }
    let item_metrics = review::item_metrics(&view.rubric, &reviews);
    let items: Vec<ItemRow> = item_metrics
        .iter()
        .map(|m| {
            let c = view.rubric.criteria.iter().find(|c| c.id == m.criterion);
            ItemRow {
                criterion: c.map_or(&m.criterion, |c| &c.title),
                text: c
                    .and_then(|c| c.items.iter().find(|i| i.id == m.item))
                    .map_or(&m.item, |i| &i.text),
                kept_pct: pct(m.kept, m.with_draft),
                m,
            }
        })
        .collect();
    // The items graders change most, most changes first (only those changed at all).
    let mut most_changed: Vec<&ItemRow> = items.iter().filter(|r| r.m.changed() > 0).collect();
    most_changed.sort_by_key(|r| std::cmp::Reverse(r.m.changed()));
    most_changed.truncate(5);
    let finals = reviews.iter().filter(|r| r.status == ReviewStatus::Final).count();
    let mut per_grader: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in &reviews {
        let e = per_grader.entry(&r.grader).or_default();
        e.0 += 1;
        e.1 += usize::from(r.status == ReviewStatus::Final);
    }
    let mut ctx = app.base_context(Some(&session));
    ctx.insert("cohort", &cohort);
    ctx.insert("base", &format!("/c/{}", seg(&cohort)));
    ctx.insert("rows", &rows);
    ctx.insert("items", &items);
    ctx.insert("most_changed", &most_changed);
    ctx.insert("reviews", &reviews.len());
    ctx.insert("finals", &finals);
    ctx.insert("graders", &per_grader);
    ctx.insert("submissions", &view.records.len());
    Ok(Html(app.render("metrics.html", &ctx)?).into_response())
}

async fn export_csv(
    State(app): State<Arc<App>>,
    _signed: Signed,
    Path(cohort): Path<String>,
) -> Result<Response, WebError> {
    let view = app.view(&cohort).await?;
    let reviews = app.store.cohort_reviews(view.record.id).await?;
    let reveal = !app.options.blind;
    let rows = review::export_rows(&view.rubric, &view.records, &reviews, reveal);
    let csv = review::export_csv(&view.rubric, &rows, reveal);
    let file: String = cohort
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}-final-scores.csv\""),
            ),
        ],
        csv,
    )
        .into_response())
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
