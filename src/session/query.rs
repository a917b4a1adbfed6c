//! The results of a `query`: one per statement.

use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::error::{Error, Result, ServerError};
use crate::session::options::{ReadOnlyAnswer, Snapshot};
use crate::wire::tags;

/// The per-statement results of [`Session::query`](crate::Session::query).
///
/// Each statement succeeded with a value or failed with its own error; a failed statement does
/// not fail the whole call. Use [`take`](QueryResponse::take) to read one statement's value as
/// any serde type, or [`check`](QueryResponse::check) to turn the first statement error into an
/// `Err`.
///
/// ```no_run
/// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
/// #[derive(serde::Deserialize)]
/// struct Person { name: String }
/// let mut res = db.query("CREATE person SET name = $n; SELECT * FROM person", serde_json::json!({"n": "Tobie"})).await?;
/// let people: Vec<Person> = res.take(1)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct QueryResponse {
    results: Vec<Option<Result<Json, ServerError>>>,
    snapshot: Option<Snapshot>,
}

impl QueryResponse {
    /// Reads a `query` result (a list of `{status, result, …}`), already mapped to JSON.
    pub(crate) fn from_json(reply: Json) -> Result<QueryResponse> {
        let Json::Array(items) = reply else {
            return Err(Error::Protocol("a query result that is not a list".into()));
        };
        let results = items
            .into_iter()
            .map(|item| {
                let mut item = match item {
                    Json::Object(map) => map,
                    _ => return Err(Error::Protocol("a statement result that is not an object".into())),
                };
                let result = item.remove("result").unwrap_or(Json::Null);
                match item.get("status").and_then(Json::as_str) {
                    Some("OK") => Ok(Some(Ok(result))),
                    Some("ERR") => {
                        let message = match result {
                            Json::String(s) => s,
                            other => other.to_string(),
                        };
                        let kind = item.get("kind").and_then(Json::as_str).unwrap_or("Internal").to_owned();
                        Ok(Some(Err(ServerError::new(0, kind, message).with_details(item.remove("details")))))
                    }
                    _ => Err(Error::Protocol("a statement result without a status".into())),
                }
            })
            .collect::<Result<_>>()?;
        Ok(QueryResponse { results, snapshot: None })
    }

    /// A read-only query's answer ([`Session::query_with`](crate::Session::query_with) with
    /// [`QueryOptions::read_only`](crate::QueryOptions::read_only)): the caller's statements,
    /// without the `BEGIN` and `COMMIT` of the block they ran in; the snapshot the block read
    /// is kept. A failed `COMMIT` with no failed statement before it is the call's error.
    pub(crate) fn from_read_only(answer: ReadOnlyAnswer) -> Result<QueryResponse> {
        let mut response = QueryResponse::from_json(tags::to_json(answer.statements))?;
        let commit = QueryResponse::from_json(tags::to_json(ciborium::Value::Array(vec![answer.commit])))?;
        if let Some(Some(Err(e))) = commit.results.into_iter().next() {
            if !response.results.iter().any(|r| matches!(r, Some(Err(_)))) {
                return Err(Error::Server(e));
            }
        }
        response.snapshot = Some(answer.snapshot);
        Ok(response)
    }

    /// The snapshot a read-only query read, as the server described it (see
    /// [`Session::query_with`](crate::Session::query_with)); `None` for any other query.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use surreal_pool::{QueryOptions, ReadOnly};
    /// let res = db.query_with("SELECT * FROM person", (), QueryOptions::new().read_only(ReadOnly::current())).await?;
    /// assert!(res.snapshot().is_some_and(|s| !s.is_stale()));
    /// # Ok(()) }
    /// ```
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The number of statement results.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// let res = db.query("RETURN 1; RETURN 2", ()).await?;
    /// assert_eq!(res.len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.results.len()
    }

    /// Whether the query had no statements.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// let res = db.query("RETURN 1", ()).await?;
    /// assert!(!res.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    /// Takes statement `index`'s value, deserialized as `T`. A statement error is returned as
    /// [`Error::Query`]. Each result can be taken once; a second take is an
    /// [`Error::InvalidArgument`].
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// let mut res = db.query("RETURN 1; RETURN 'a'", ()).await?;
    /// let one: i64 = res.take(0)?;
    /// let a: String = res.take(1)?;
    /// # Ok(()) }
    /// ```
    pub fn take<T: DeserializeOwned>(&mut self, index: usize) -> Result<T> {
        let len = self.results.len();
        let slot = self
            .results
            .get_mut(index)
            .ok_or_else(|| Error::InvalidArgument(format!("no statement {index} in a response of {len}")))?;
        match slot.take() {
            None => Err(Error::InvalidArgument(format!("statement {index}'s result was already taken"))),
            Some(Err(error)) => Err(Error::Query { index, error }),
            Some(Ok(value)) => serde_json::from_value(value).map_err(|source| Error::Decode(Box::new(StatementDecode { index, source }))),
        }
    }

    /// The first statement error, if any, as [`Error::Query`].
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// db.query("CREATE person:a; CREATE person:b", ()).await?.check()?;
    /// # Ok(()) }
    /// ```
    pub fn check(self) -> Result<Self> {
        if let Some((index, error)) = self.results.iter().enumerate().find_map(|(i, r)| match r {
            Some(Err(e)) => Some((i, e.clone())),
            _ => None,
        }) {
            return Err(Error::Query { index, error });
        }
        Ok(self)
    }

    /// Every statement's outcome, in order (taken results are `None`).
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// for outcome in db.query("RETURN 1; THROW 'no'", ()).await?.into_results() {
    ///     if let Some(Err(e)) = outcome {
    ///         eprintln!("failed: {e}");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn into_results(self) -> Vec<Option<Result<Json, ServerError>>> {
        self.results
    }
}

/// A statement's result that did not fit the requested type (keeps serde's error as source).
#[derive(Debug)]
struct StatementDecode {
    index: usize,
    source: serde_json::Error,
}

impl std::fmt::Display for StatementDecode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "statement {}: {}", self.index, self.source)
    }
}

impl std::error::Error for StatementDecode {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciborium::Value as Cbor;

    fn text(s: &str) -> Cbor {
        Cbor::Text(s.into())
    }

    fn response() -> QueryResponse {
        let ok = Cbor::Map(vec![(text("status"), text("OK")), (text("time"), text("1ms")), (text("result"), Cbor::Integer(2.into()))]);
        let err = Cbor::Map(vec![
            (text("status"), text("ERR")),
            (text("time"), text("1ms")),
            (text("result"), text("boom")),
            (text("kind"), text("Thrown")),
        ]);
        QueryResponse::from_json(tags::to_json(Cbor::Array(vec![ok, err]))).unwrap()
    }

    #[test]
    fn take_reads_values_and_errors_once() {
        let mut r = response();
        assert_eq!(r.len(), 2);
        assert_eq!(r.take::<i64>(0).unwrap(), 2);
        assert!(matches!(r.take::<i64>(0), Err(Error::InvalidArgument(_))));
        match r.take::<i64>(1) {
            Err(Error::Query { index: 1, error }) => assert_eq!((error.kind(), error.message()), ("Thrown", "boom")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(r.take::<i64>(9), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn check_finds_the_first_error() {
        assert!(matches!(response().check(), Err(Error::Query { index: 1, .. })));
    }
}
