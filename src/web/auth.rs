//! Signing in: grader tokens checked against their hashes, signed session cookies, per-session
//! form tokens, the login and logout pages, where a sign-in may send the grader next.

use super::*;

/// The session cookie's name.
pub const COOKIE: &str = "assay_session";

/// A signed-in grader.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub(super) grader: String,
    /// Every form posts it back; a request from another site cannot know it.
    pub(super) csrf: String,
    pub(super) started: std::time::Instant,
}

/// How long a sign-in lasts.
pub(super) const SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

impl App {
    pub(super) fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        self.sessions
            .lock()
            .expect("sessions lock")
            .get(&id)
            .filter(|s| s.started.elapsed() < SESSION_TTL)
            .cloned()
    }
}

/// A signed-in grader. Without a session, a page (GET) redirects to the sign-in, which comes
/// back to it; anything else is refused (401).
pub(super) struct Signed(pub(super) Session);

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

/// A cookie's value from the request's Cookie headers.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
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
pub(super) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where an unsigned visitor of `path` goes.
pub(super) fn to_login(path: &str) -> Response {
    see_other(&format!("/login?next={}", seg(path)))
}

#[derive(Deserialize)]
pub(super) struct NextQuery {
    pub(super) next: Option<String>,
}

/// Only same-site paths: `/x`, never `//host` or a URL.
pub(super) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

pub(super) async fn login_page(State(app): State<Arc<App>>, Query(q): Query<NextQuery>) -> Result<Response, WebError> {
    let mut ctx = app.base_context(None);
    ctx.insert("next", safe_next(q.next.as_deref()));
    ctx.insert("failed", &false);
    ctx.insert("no_graders", &app.graders.is_empty());
    Ok(Html(app.render("login.html", &ctx)?).into_response())
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    pub(super) name: String,
    pub(super) token: String,
    pub(super) next: Option<String>,
}

pub(super) async fn login(State(app): State<Arc<App>>, Form(f): Form<LoginForm>) -> Result<Response, WebError> {
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
pub(super) struct CsrfForm {
    pub(super) csrf: String,
}

pub(super) async fn logout(State(app): State<Arc<App>>, headers: HeaderMap, Form(f): Form<CsrfForm>) -> Response {
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
