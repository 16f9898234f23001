//! Writing a session back: the only place that talks to the store's write side.
//!
//! Outcomes of a write and what we do:
//! - nothing changed: slide the TTL (`EXPIRE`) unless a load already did;
//! - changes on a stored session: `Update` (or `rotate` when asked);
//! - the session vanished meanwhile (expired, logout on another node):
//!   the changes go into a *new* session with a new id, never into the old one;
//! - a new session: `Create` under a fresh id with the short first TTL,
//!   retried on the (astronomically unlikely) clash. The client's next
//!   request loads it, which slides it to the full TTL.

use super::*;

// === impl Session ===

impl Session {
    /// Sends this request's changes to the store, at most once per change.
    ///
    /// Safe to call more than once: a second call with nothing new only slides
    /// the TTL if that has not happened yet. After it, reads see the stored
    /// session including other writers' changes (e.g. their increments).
    pub async fn save(&self) -> Result<(), SessionError> {
        let mut st = self.state.lock().await;
        let ops = st.ops();
        if ops.is_empty() && !st.rotate {
            if let (Some(id), false) = (&st.id, st.slid) {
                let found = self.store.touch(id, self.ttl).await?;
                st.slid = true;
                if !found {
                    st.id = None;
                }
            }
            return Ok(());
        }
        let outcome = match (st.id.clone(), st.rotate) {
            (Some(old), true) => {
                let new = SessionId::generate();
                match self.store.rotate(&old, &new, &ops, self.ttl).await? {
                    Written::Saved(r) => Some((new, r)),
                    Written::Missing | Written::Exists => None,
                }
            }
            (Some(id), false) => match self
                .store
                .write(&id, &ops, WriteMode::Update, self.ttl)
                .await?
            {
                Written::Saved(r) => Some((id, r)),
                Written::Missing | Written::Exists => None,
            },
            (None, _) => None,
        };
        let (id, record) = match outcome {
            Some(done) => done,
            None => self.create(&ops).await?,
        };
        st.id = Some(id);
        st.record = Some(record);
        st.pending.clear();
        st.rotate = false;
        st.slid = true;
        Ok(())
    }

    /// Stores `ops` as a brand-new session.
    async fn create(&self, ops: &[Op]) -> Result<(SessionId, Record), SessionError> {
        let mut all = Vec::with_capacity(ops.len() + 1);
        all.push(Op::Set {
            field: CREATED_FIELD.into(),
            value: now_unix().to_string(),
        });
        all.extend_from_slice(ops);
        for _ in 0..CREATE_ATTEMPTS {
            let id = SessionId::generate();
            if let Written::Saved(r) = self
                .store
                .write(&id, &all, WriteMode::Create, self.first_ttl)
                .await?
            {
                return Ok((id, r));
            }
        }
        Err(SessionError::IdClash)
    }

    /// What the response must do with the cookie, given the node serving it.
    ///
    /// The cookie is (re)set when the id changed, or when it names another node:
    /// like Tomcat's jvmRoute, the suffix follows the node that serves the
    /// session, so stickiness moves to a survivor when a node dies.
    pub async fn cookie_change(&self, node: Option<&str>) -> CookieChange {
        let st = self.state.lock().await;
        match (&st.id, &st.cookie) {
            (None, Some(_)) if st.destroyed => CookieChange::Expire,
            (None, _) => CookieChange::None,
            (Some(id), cookie) => {
                let want = CookieValue {
                    id: id.clone(),
                    node: node.map(str::to_owned),
                };
                if cookie.as_ref() == Some(&want) {
                    CookieChange::None
                } else {
                    CookieChange::Set(want)
                }
            }
        }
    }

    /// Whether a save would write anything (tests and the layer's logging).
    pub async fn is_dirty(&self) -> bool {
        let st = self.state.lock().await;
        !st.pending.is_empty() || st.rotate
    }
}

// === impl State ===

impl State {
    /// Pending changes as store operations on `d:<name>` fields.
    fn ops(&self) -> Vec<Op> {
        self.pending
            .iter()
            .map(|(name, p)| {
                let field = format!("{DATA_PREFIX}{name}");
                match p {
                    Pending::Set(v) => Op::Set {
                        field,
                        value: v.to_string(),
                    },
                    Pending::Del => Op::Del { field },
                    Pending::Incr(by) => Op::Incr { field, by: *by },
                }
            })
            .collect()
    }
}
