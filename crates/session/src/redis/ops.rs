//! The [`SessionStore`] operations as Redis commands and scripts.

use std::time::Duration;

use redis::AsyncCommands;

use super::*;
use crate::id::SessionId;
use crate::store::{Op, Record, Ttl, WriteMode, Written};

impl RedisStore {
    async fn script_write(
        &self,
        keys: &[String],
        mode: &str,
        ops: &[Op],
        ttl: Ttl,
    ) -> Result<Written, StoreError> {
        let reply: Vec<String> = self
            .run(|mut c| async move {
                let mut inv = self.write.prepare_invoke();
                for k in keys {
                    inv.key(k);
                }
                inv.arg(ttl.secs()).arg(mode);
                for op in ops {
                    match op {
                        Op::Set { field, value } => inv.arg("s").arg(field).arg(value),
                        Op::Del { field } => inv.arg("d").arg(field).arg(""),
                        Op::Incr { field, by } => inv.arg("i").arg(field).arg(*by),
                    };
                }
                inv.invoke_async(&mut c).await
            })
            .await?;
        parse_written(reply)
    }

    async fn rotate_cluster(
        &self,
        from: &SessionId,
        to: &SessionId,
        ops: &[Op],
        ttl: Ttl,
    ) -> Result<Written, StoreError> {
        let old = self.key(from);
        let taken: Vec<String> = self
            .run(|mut c| async move { self.take.key(&old).invoke_async(&mut c).await })
            .await?;
        if taken.is_empty() {
            return Ok(Written::Missing);
        }
        let mut all: Vec<Op> = pairs(taken)
            .into_iter()
            .map(|(field, value)| Op::Set { field, value })
            .collect();
        all.extend_from_slice(ops);
        self.script_write(&[self.key(to)], "c", &all, ttl).await
    }
}

fn pairs(flat: Vec<String>) -> Record {
    let mut out = Record::new();
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.insert(k, v);
    }
    out
}

fn parse_written(mut reply: Vec<String>) -> Result<Written, StoreError> {
    if reply.is_empty() {
        return Err(StoreError::Command(
            "empty reply from the session script".into(),
        ));
    }
    let status = reply.remove(0);
    match status.as_str() {
        "ok" => Ok(Written::Saved(pairs(reply))),
        "missing" => Ok(Written::Missing),
        "exists" => Ok(Written::Exists),
        "notint" => Err(StoreError::Command(format!(
            "hash value is not an integer: {}",
            reply.join("")
        ))),
        other => Err(StoreError::Command(format!(
            "unexpected reply {other:?} from the session script"
        ))),
    }
}

impl SessionStore for RedisStore {
    fn load<'a>(
        &'a self,
        id: &'a SessionId,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        boxed(async move {
            let key = self.key(id);
            let flat: Vec<String> = self
                .run(|mut c| async move {
                    self.load
                        .key(&key)
                        .arg(ttl.secs())
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            Ok((!flat.is_empty()).then(|| pairs(flat)))
        })
    }

    fn touch<'a>(&'a self, id: &'a SessionId, ttl: Ttl) -> BoxFuture<'a, Result<bool, StoreError>> {
        boxed(async move {
            let key = self.key(id);
            let secs = i64::try_from(ttl.secs()).unwrap_or(i64::MAX);
            self.run(|mut c| async move { c.expire::<_, bool>(&key, secs).await })
                .await
        })
    }

    fn write<'a>(
        &'a self,
        id: &'a SessionId,
        ops: &'a [Op],
        mode: WriteMode,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Written, StoreError>> {
        let mode = match mode {
            WriteMode::Create => "c",
            WriteMode::Update => "u",
        };
        boxed(async move { self.script_write(&[self.key(id)], mode, ops, ttl).await })
    }

    fn rotate<'a>(
        &'a self,
        from: &'a SessionId,
        to: &'a SessionId,
        ops: &'a [Op],
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Written, StoreError>> {
        boxed(async move {
            if self.is_cluster() {
                self.rotate_cluster(from, to, ops, ttl).await
            } else {
                self.script_write(&[self.key(from), self.key(to)], "r", ops, ttl)
                    .await
            }
        })
    }

    fn destroy<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool, StoreError>> {
        boxed(async move {
            let key = self.key(id);
            let n: i64 = self.run(|mut c| async move { c.del(&key).await }).await?;
            Ok(n > 0)
        })
    }

    fn ttl<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<Option<Duration>, StoreError>> {
        boxed(async move {
            let key = self.key(id);
            let ms: i64 = self.run(|mut c| async move { c.pttl(&key).await }).await?;
            // -2: no such key; -1: no expiry (never written by us, treat as present).
            Ok(match ms {
                -2 => None,
                ms => Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
            })
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        boxed(async move {
            let _: String = self
                .run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
                .await?;
            Ok(())
        })
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}
