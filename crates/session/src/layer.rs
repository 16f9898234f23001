//! Sessions for any hyper service: load per request, save after.
//!
//! [`SessionLayer`] holds what every request needs (store, TTL, cookie
//! attributes, node id). [`SessionLayer::service`] wraps a hyper service so the
//! handler finds its [`Session`] in the request extensions; apps that want
//! control over ordering (the demo reads bodies first) call
//! [`SessionLayer::session_for`] and [`SessionLayer::finish`] themselves.
//!
//! Store trouble becomes 503 with a short reason (and `Retry-After`), never a
//! hung request: each store call is bounded by the store's timeout, and the
//! wrapped service is bounded by [`SessionLayer::deadline`] as a whole.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER, SET_COOKIE};
use http::{Request, Response, StatusCode};
use hyper::service::Service;

use crate::cookie::CookieSettings;
use crate::session::{CookieChange, Session, SessionError};
use crate::store::{SessionStore, StoreError, Ttl};

/// Per-service session settings; share it behind an `Arc`.
pub struct SessionLayer {
    store: Arc<dyn SessionStore>,
    ttl: Ttl,
    first_ttl: Ttl,
    cookie: CookieSettings,
    node: Option<String>,
    deadline: Duration,
}

// === impl SessionLayer ===

impl SessionLayer {
    /// `node` becomes the cookie suffix (`<id>.<node>`) for sticky routing;
    /// `deadline` bounds the session work of one request (use the store timeout).
    pub fn new(
        store: Arc<dyn SessionStore>,
        ttl: Ttl,
        cookie: CookieSettings,
        node: Option<String>,
        deadline: Duration,
    ) -> SessionLayer {
        SessionLayer {
            store,
            ttl,
            first_ttl: ttl,
            cookie,
            node,
            deadline,
        }
    }

    /// New sessions live `first` until their client comes back (see
    /// [`Session::with_first_ttl`]); without this they get the full TTL.
    pub fn with_first_ttl(mut self, first: Ttl) -> SessionLayer {
        self.first_ttl = first.min(self.ttl);
        self
    }

    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    pub fn ttl(&self) -> Ttl {
        self.ttl
    }

    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    pub fn cookie(&self) -> &CookieSettings {
        &self.cookie
    }

    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The session named by the request's cookie; nothing is loaded yet.
    pub fn session_for(&self, headers: &HeaderMap) -> Session {
        Session::new(self.store.clone(), self.ttl, self.cookie.find(headers))
            .with_first_ttl(self.first_ttl)
    }

    /// Saves the session and sets or expires the cookie on `headers`.
    pub async fn finish(
        &self,
        session: &Session,
        headers: &mut HeaderMap,
    ) -> Result<(), SessionError> {
        session.save().await?;
        let value = match session.cookie_change(self.node()).await {
            CookieChange::None => return Ok(()),
            CookieChange::Set(v) => self.cookie.set(&v),
            CookieChange::Expire => self.cookie.expire(),
        };
        // Every part was validated (config) or generated (id), so this holds.
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.append(SET_COOKIE, v);
        }
        Ok(())
    }

    /// Wraps `inner` so each request carries a [`Session`] extension.
    pub fn service<S>(self: &Arc<Self>, inner: S) -> WithSession<S> {
        WithSession {
            layer: self.clone(),
            inner,
        }
    }
}

/// The response for a failed session operation: 503 for store trouble (with
/// the reason and `Retry-After: 1`), 500 for a bug in the handler's types.
///
/// ```
/// use std::time::Duration;
/// use stackd_session::{error_response, SessionError, StoreError};
/// let r: http::Response<String> = error_response(&SessionError::Store(StoreError::Timeout(Duration::from_secs(2))));
/// assert_eq!(r.status(), 503);
/// assert_eq!(r.body(), "503 session store unavailable: session store did not answer within 2s\n");
/// ```
pub fn error_response<B: From<String>>(e: &SessionError) -> Response<B> {
    let (status, body) = match e {
        SessionError::Store(s) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("503 session store unavailable: {}\n", s.reason()),
        ),
        other => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("500 session error: {other}\n"),
        ),
    };
    let mut r = Response::new(B::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// A hyper service with sessions; see [`SessionLayer::service`].
#[derive(Clone)]
pub struct WithSession<S> {
    layer: Arc<SessionLayer>,
    inner: S,
}

impl<S, B, RB> Service<Request<B>> for WithSession<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    RB: From<String> + Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RB>, S::Error>> + Send>>;

    fn call(&self, mut req: Request<B>) -> Self::Future {
        let layer = self.layer.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            let session = layer.session_for(req.headers());
            req.extensions_mut().insert(session.clone());
            let call = inner.call(req);
            let work = async {
                let mut resp = call.await?;
                Ok(layer
                    .finish(&session, resp.headers_mut())
                    .await
                    .map(|()| resp))
            };
            match tokio::time::timeout(layer.deadline, work).await {
                Ok(Ok(Ok(resp))) => Ok(resp),
                Ok(Ok(Err(e))) => Ok(error_response(&e)),
                Ok(Err(e)) => Err(e),
                Err(_) => Ok(error_response(&SessionError::Store(StoreError::Timeout(
                    layer.deadline,
                )))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use http::header::COOKIE;
    use hyper::service::service_fn;

    use super::*;
    use crate::memory::MemoryStore;
    use crate::redis::open_store;

    type Resp = Response<String>;

    fn app(
        store: Arc<dyn SessionStore>,
    ) -> impl Service<Request<String>, Response = Resp, Error = std::convert::Infallible> + Clone
    {
        let layer = Arc::new(SessionLayer::new(
            store,
            Ttl::new(Duration::from_secs(60)).unwrap(),
            CookieSettings::default(),
            Some("n1".into()),
            Duration::from_millis(500),
        ));
        layer.service(service_fn(|req: Request<String>| async move {
            let s = req
                .extensions()
                .get::<Session>()
                .cloned()
                .expect("layer adds the session");
            let body = match s.incr("visits", 1).await {
                Ok(n) => n.to_string(),
                Err(e) => return Ok(error_response(&e)),
            };
            Ok(Response::new(body))
        }))
    }

    #[tokio::test]
    async fn wrapped_service_gets_a_session_and_the_cookie_round_trips() {
        let svc = app(Arc::new(MemoryStore::new()));
        let r = svc.call(Request::new(String::new())).await.unwrap();
        assert_eq!(r.body(), "1");
        let set = r
            .headers()
            .get(SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(set.contains(".n1; Path=/; HttpOnly; SameSite=Lax"), "{set}");
        let cookie = set.split(';').next().unwrap().to_owned();
        let mut req = Request::new(String::new());
        req.headers_mut()
            .insert(COOKIE, HeaderValue::from_str(&cookie).unwrap());
        let r = svc.call(req).await.unwrap();
        assert_eq!(r.body(), "2");
        assert!(
            r.headers().get(SET_COOKIE).is_none(),
            "unchanged id: no new cookie"
        );
    }

    #[tokio::test]
    async fn unreachable_store_is_503_with_a_reason() {
        // A real Redis URL on a port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = open_store(
            &format!("redis://127.0.0.1:{port}/"),
            "t:",
            Duration::from_millis(300),
        )
        .unwrap();
        let r = app(store).call(Request::new(String::new())).await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            r.body().starts_with("503 session store unavailable"),
            "{}",
            r.body()
        );
        assert_eq!(r.headers().get(RETRY_AFTER).unwrap(), "1");
    }
}
