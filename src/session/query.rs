//! The results of a `query`: one per statement.

use std::ops::Range;

use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::error::{Error, Result, ServerError};
use crate::session::options::{ReadOnlyAnswer, Snapshot};
use crate::wire::envelope::Payload;
use crate::wire::reader::Reader;

/// How many levels a statement's result is inside its frame: the envelope, the list of
/// statements, the statement's map.
const RESULT_DEPTH: usize = 3;

/// The per-statement results of [`Session::query`](crate::Session::query).
///
/// Each statement succeeded with a value or failed with its own error; a failed statement does
/// not fail the whole call. Use [`take`](QueryResponse::take) to read one statement's value as
/// any serde type, or [`check`](QueryResponse::check) to turn the first statement error into an
/// `Err`.
///
/// The values stay encoded, as they came (the bytes are checked when the reply arrives): `take`
/// decodes one straight into the requested type, with no JSON value in between.
///
/// ```no_run
/// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
/// #[derive(serde::Deserialize)]
/// struct Person { name: String }
/// let mut res = db.query("CREATE person SET name = $n; SELECT * FROM person", serde_json::json!({"n": "Tobie"})).await?;
/// let people: Vec<Person> = res.take(1)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct QueryResponse {
    /// The reply's encoded list of statements.
    payload: Payload,
    /// Each statement's result: the bytes of its value in `payload` (`None`: the statement
    /// had no value, read as `null`), or its error. Taken results are `None`.
    results: Vec<Option<std::result::Result<Option<Range<usize>>, ServerError>>>,
    snapshot: Option<Snapshot>,
}

/// Shows each statement's value as JSON (decoded for the purpose).
impl std::fmt::Debug for QueryResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let results: Vec<_> = (0..self.results.len()).map(|i| self.outcome(i)).collect();
        f.debug_struct("QueryResponse").field("results", &results).field("snapshot", &self.snapshot).finish()
    }
}

impl QueryResponse {
    /// Reads a `query` result: a list of `{status, result, …}` maps. Every value is checked
    /// (skipped as strictly as it would be decoded) but none is decoded.
    pub(crate) fn from_payload(payload: Payload) -> Result<QueryResponse> {
        let invalid = |e: String| Error::Protocol(format!("an invalid result: {e}"));
        let bytes = payload.bytes();
        let mut r = Reader::inside(bytes);
        let Some(len) = r.array_start().map_err(invalid)? else {
            return Err(Error::Protocol("a query result that is not a list".into()));
        };
        r.enter().map_err(invalid)?;
        let mut results = Vec::new();
        let mut read = 0;
        while r.map_more(len, &mut read).map_err(invalid)? {
            results.push(Some(statement(&mut r, bytes)?));
        }
        Ok(QueryResponse { payload, results, snapshot: None })
    }

    /// A read-only query's answer ([`Session::query_with`](crate::Session::query_with) with
    /// [`QueryOptions::read_only`](crate::QueryOptions::read_only)): the caller's statements,
    /// without the `BEGIN` and `COMMIT` of the block they ran in; the snapshot the block read
    /// is kept. A failed `COMMIT` with no failed statement before it is the call's error.
    pub(crate) fn from_read_only(answer: ReadOnlyAnswer) -> Result<QueryResponse> {
        let mut response = QueryResponse::from_payload(Payload::from_value(&answer.statements))?;
        let commit = QueryResponse::from_payload(Payload::from_value(&ciborium::Value::Array(vec![answer.commit])))?;
        if let Some(Some(Err(e))) = commit.results.into_iter().next() {
            if !response.results.iter().any(|r| matches!(r, Some(Err(_)))) {
                return Err(Error::Server(e));
            }
        }
        response.snapshot = Some(answer.snapshot);
        Ok(response)
    }

    /// Statement `index`'s value as `T`, from its bytes.
    fn decode<T: DeserializeOwned>(&self, index: usize, range: Option<Range<usize>>) -> Result<T> {
        match range {
            Some(range) => crate::wire::de::from_slice(&self.payload.bytes()[range], RESULT_DEPTH).map_err(|e| e.into_error(Some(index))),
            None => T::deserialize(Json::Null).map_err(|e| crate::wire::de::DecodeError::Mismatch(e.to_string()).into_error(Some(index))),
        }
    }

    /// Statement `index`'s outcome with its value as JSON (`None` once taken).
    fn outcome(&self, index: usize) -> Option<std::result::Result<Json, ServerError>> {
        match self.results.get(index)? {
            None => None,
            Some(Err(e)) => Some(Err(e.clone())),
            // Checked when the reply was read, so it decodes.
            Some(Ok(range)) => Some(Ok(self.decode(index, range.clone()).unwrap_or(Json::Null))),
        }
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
            Some(Ok(range)) => self.decode(index, range),
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
        (0..self.results.len()).map(|i| self.outcome(i)).collect()
    }
}

/// One statement's outcome: the range of its value's bytes (`None`: no value), or its error.
type Outcome = std::result::Result<Option<Range<usize>>, ServerError>;

/// Reads one statement's `{status, result, kind?, details?}` map from `r`, which reads `bytes`.
fn statement(r: &mut Reader<'_>, bytes: &[u8]) -> Result<Outcome> {
    let invalid = |e: String| Error::Protocol(format!("an invalid result: {e}"));
    let Some(len) = r.map_start().map_err(invalid)? else {
        return Err(Error::Protocol("a statement result that is not an object".into()));
    };
    r.enter().map_err(invalid)?;
    let (mut status, mut result, mut kind, mut details) = (None, None, None, None);
    let mut read = 0;
    while r.map_more(len, &mut read).map_err(invalid)? {
        let key = r.key_or_text().map_err(invalid)?;
        // A repeated key counts once, the last one (as in a JSON object).
        match key.as_ref() {
            "status" => status = Some(r.json().map_err(invalid)?),
            "result" => result = Some(r.skip().map_err(invalid)?),
            "kind" => kind = Some(r.json().map_err(invalid)?),
            "details" => details = Some(r.json().map_err(invalid)?),
            _ => {
                r.skip().map_err(invalid)?;
            }
        }
    }
    r.leave();
    match status.as_ref().and_then(Json::as_str) {
        Some("OK") => Ok(Ok(result)),
        Some("ERR") => {
            let message = match result {
                Some(range) => Reader::at_depth(&bytes[range], RESULT_DEPTH).json().map_err(invalid)?,
                None => Json::Null,
            };
            let message = match message {
                Json::String(s) => s,
                other => other.to_string(),
            };
            let kind = kind.as_ref().and_then(Json::as_str).unwrap_or("Internal").to_owned();
            Ok(Err(ServerError::new(0, kind, message).with_details(details)))
        }
        _ => Err(Error::Protocol("a statement result without a status".into())),
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
        QueryResponse::from_payload(Payload::from_value(&Cbor::Array(vec![ok, err]))).unwrap()
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
