//! The demo routes (SPEC.md "Demo backend HTTP contract").
//!
//! `/`, `/session`, `/login` and `/logout` go through the [`SessionLayer`]
//! under one deadline (`redis_timeout`); bodies are read *before* the deadline
//! starts so a slow client is never reported as a slow Redis. `/echo` and
//! `/healthz` (in `probes.rs`) never touch a session, so they answer even with Redis down
//! (`/healthz` then says so with 503).

use std::net::SocketAddr;
use std::time::Duration;

use http::header::{HeaderMap, HeaderValue, ALLOW, CONTENT_TYPE};
use http::{Method, StatusCode};
use hyper::body::Incoming;
use hyper::Request;
use serde_json::{json, Value};

use super::http_util::{json, read_body, respond, text, Resp};
use super::metrics::{Metrics, RouteLabels};
use super::page;
use crate::id::CookieValue;
use crate::layer::{error_response, SessionLayer};
use crate::session::{Session, SessionError};
use crate::store::StoreError;

/// Largest `/login` body.
const LOGIN_BODY_LIMIT: u64 = 16 * 1024;
/// Longest user name accepted at login.
const USER_MAX_CHARS: usize = 64;

pub(crate) struct App {
    pub layer: SessionLayer,
    pub node: String,
    pub metrics: Metrics,
    pub body: BodyLimits,
}

/// How request bodies are read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyLimits {
    /// Longest pause between two reads (`client_body_timeout`).
    pub timeout: Duration,
    /// Largest `/echo` body (`client_max_body_size`).
    pub echo_max: u64,
}

/// What a session route does once its body (if any) is read.
enum Action {
    Page,
    Session,
    Login(String),
    Logout,
}

/// What `/` and `/session` show, after this request's changes were saved.
pub(super) struct View {
    pub session_id: Option<String>,
    pub visits: i64,
    pub user: Option<String>,
    pub created_at: Option<u64>,
    pub ttl_secs: u64,
}

// === impl App ===

impl App {
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Resp {
        let get = matches!(*req.method(), Method::GET | Method::HEAD);
        let post = *req.method() == Method::POST;
        let route = route_label(req.uri().path());
        let mut resp = match req.uri().path() {
            "/echo" => self.echo(req, peer).await,
            "/metrics" if get => respond(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.metrics.encode(),
            ),
            "/healthz" if get => self.healthz().await,
            "/" if get => self.session_route(req.headers(), Action::Page).await,
            "/session" if get => self.session_route(req.headers(), Action::Session).await,
            "/logout" if post => self.session_route(req.headers(), Action::Logout).await,
            "/login" if post => {
                let headers = req.headers().clone();
                match login_user(req, self.body.timeout).await {
                    Ok(user) => self.session_route(&headers, Action::Login(user)).await,
                    Err(r) => r,
                }
            }
            "/healthz" | "/" | "/session" | "/metrics" => not_allowed("GET, HEAD"),
            "/login" | "/logout" => not_allowed("POST"),
            other => json(
                StatusCode::NOT_FOUND,
                &json!({"error": "not found", "path": other, "node": self.node}),
            ),
        };
        if let Ok(v) = HeaderValue::from_str(&self.node) {
            resp.headers_mut().insert("x-stackd-node", v);
        }
        self.metrics
            .requests
            .get_or_create(&RouteLabels {
                route,
                status: resp.status().as_u16(),
            })
            .inc();
        resp
    }

    async fn session_route(&self, headers: &HeaderMap, action: Action) -> Resp {
        let session = self.layer.session_for(headers);
        let work = async {
            let mut resp = self.act(&session, action).await?;
            self.layer.finish(&session, resp.headers_mut()).await?;
            Ok::<_, SessionError>(resp)
        };
        let deadline = self.layer.deadline();
        let started = tokio::time::Instant::now();
        let outcome = tokio::time::timeout(deadline, work).await;
        self.metrics
            .session_seconds
            .observe(started.elapsed().as_secs_f64());
        match outcome {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "session request failed");
                error_response(&e)
            }
            Err(_) => {
                tracing::warn!(?deadline, "session request exceeded redis_timeout");
                error_response(&SessionError::Store(StoreError::Timeout(deadline)))
            }
        }
    }

    async fn act(&self, s: &Session, action: Action) -> Result<Resp, SessionError> {
        match action {
            Action::Page => {
                s.incr("visits", 1).await?;
                let view = self.view(s).await?;
                Ok(respond(
                    StatusCode::OK,
                    "text/html; charset=utf-8",
                    page::render(&self.node, &view),
                ))
            }
            Action::Session => {
                s.incr("visits", 1).await?;
                Ok(json(StatusCode::OK, &self.view_json(&self.view(s).await?)))
            }
            Action::Login(user) => {
                s.insert("user", &user).await?;
                s.rotate_id().await; // session fixation defence
                Ok(json(StatusCode::OK, &self.view_json(&self.view(s).await?)))
            }
            Action::Logout => {
                s.destroy().await?;
                Ok(json(
                    StatusCode::OK,
                    &json!({"node": self.node, "logged_out": true}),
                ))
            }
        }
    }

    /// Saves first, so the view shows the stored session (merged with other
    /// writers) and its final id.
    async fn view(&self, s: &Session) -> Result<View, SessionError> {
        s.save().await?;
        let id = s.id().await?;
        Ok(View {
            session_id: id.map(|id| {
                CookieValue {
                    id,
                    node: Some(self.node.clone()),
                }
                .to_string()
            }),
            visits: s.get("visits").await?.unwrap_or(0),
            user: s.get("user").await?,
            created_at: s.created_at().await?,
            ttl_secs: s.ttl().secs(),
        })
    }

    fn view_json(&self, v: &View) -> Value {
        json!({
            "node": self.node,
            "session_id": v.session_id,
            "visits": v.visits,
            "user": v.user,
            "created_at": v.created_at,
            "ttl_secs": v.ttl_secs,
        })
    }
}

/// A bounded label set: unknown paths share one label.
fn route_label(path: &str) -> &'static str {
    match path {
        "/" => "/",
        "/session" => "/session",
        "/login" => "/login",
        "/logout" => "/logout",
        "/echo" => "/echo",
        "/healthz" => "/healthz",
        "/metrics" => "/metrics",
        _ => "other",
    }
}

fn not_allowed(allow: &'static str) -> Resp {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, format!("405 use {allow}\n"));
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

/// The user name from a JSON (`{"user": "..."}`) or form (`user=...`) body.
async fn login_user(req: Request<Incoming>, pause: Duration) -> Result<String, Resp> {
    let form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let (_, body) = read_body(req.into_body(), LOGIN_BODY_LIMIT, pause, true).await?;
    let bad = |why: &str| {
        text(
            StatusCode::BAD_REQUEST,
            format!("400 {why}; send JSON {{\"user\": \"ann\"}} or form user=ann\n"),
        )
    };
    let text_body = std::str::from_utf8(&body).map_err(|_| bad("the body is not UTF-8"))?;
    let user = if form {
        super::http_util::form_value(text_body, "user")
    } else {
        match serde_json::from_str::<Value>(text_body) {
            Ok(v) => v.get("user").and_then(Value::as_str).map(str::to_owned),
            Err(_) => super::http_util::form_value(text_body, "user"),
        }
    };
    let user = user
        .map(|u| u.trim().to_owned())
        .ok_or_else(|| bad("no user given"))?;
    if user.is_empty()
        || user.chars().count() > USER_MAX_CHARS
        || user.chars().any(char::is_control)
    {
        return Err(bad(&format!(
            "user must be 1 to {USER_MAX_CHARS} printable characters"
        )));
    }
    Ok(user)
}
