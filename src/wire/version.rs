//! The server's version as its `version` RPC reports it, and what each version supports (plain
//! data, no I/O; the connection learns the version when it connects, see
//! [`crate::Connection::server_version`]).
//!
//! SurrealDB answers `version` with `surrealdb-<semver>`: `surrealdb-3.3.5`,
//! `surrealdb-4.0.0-beta.1`. Every 3.x and 4.x server speaks the same RPC for what this crate
//! sends by default; 4.0 adds options to `begin` and `query` (read-only transactions over a
//! snapshot of bounded staleness, the isolation level), which 3.x does not refuse but ignores
//! (`begin`) or refuses as invalid parameters (`query`). So those options are sent only to a
//! server whose version says it has them, and refused with [`crate::Error::Unsupported`]
//! otherwise.

use std::fmt;

/// A SurrealDB server's version, as it reported it at connect (the `version` RPC).
///
/// ```
/// use surreal_pool::ServerVersion;
/// let v = ServerVersion::parse("surrealdb-4.0.0-beta.1").unwrap();
/// assert_eq!((v.major(), v.minor(), v.patch()), (4, 0, 0));
/// assert_eq!(v.pre_release(), Some("beta.1"));
/// assert_eq!(v.to_string(), "surrealdb-4.0.0-beta.1");
/// assert!(v.has_begin_options());
/// assert!(!ServerVersion::parse("surrealdb-3.3.5").unwrap().has_begin_options());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerVersion {
    text: String,
    major: u64,
    minor: u64,
    patch: u64,
    pre: Option<String>,
}

impl ServerVersion {
    /// Parses a version as SurrealDB reports it: `surrealdb-<major>.<minor>.<patch>`, with an
    /// optional `-<pre-release>` and `+<build>` (the `surrealdb-` prefix may be missing).
    /// `None` for anything else.
    ///
    /// ```
    /// use surreal_pool::ServerVersion;
    /// assert!(ServerVersion::parse("surrealdb-3.3.5").is_some());
    /// assert!(ServerVersion::parse("3.3.5").is_some());
    /// assert!(ServerVersion::parse("surrealdb-3.3").is_none());
    /// assert!(ServerVersion::parse("").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<ServerVersion> {
        let text = text.trim();
        let semver = text.strip_prefix("surrealdb-").unwrap_or(text);
        let semver = semver.split_once('+').map_or(semver, |(v, _build)| v);
        let (core, pre) = match semver.split_once('-') {
            Some((core, pre)) if !pre.is_empty() => (core, Some(pre.to_owned())),
            Some(_) => return None,
            None => (semver, None),
        };
        let mut parts = core.split('.');
        let mut number = || -> Option<u64> {
            let part = parts.next()?;
            // Digits only (no sign, no spaces); no leading zeros but for 0 itself.
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) || (part.len() > 1 && part.starts_with('0')) {
                return None;
            }
            part.parse().ok()
        };
        let (major, minor, patch) = (number()?, number()?, number()?);
        if parts.next().is_some() {
            return None;
        }
        Some(ServerVersion { text: text.to_owned(), major, minor, patch, pre })
    }

    /// The major version (3 for `surrealdb-3.3.5`).
    pub fn major(&self) -> u64 {
        self.major
    }

    /// The minor version (3 for `surrealdb-3.3.5`).
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// The patch version (5 for `surrealdb-3.3.5`).
    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// The pre-release part (`beta.1` for `surrealdb-4.0.0-beta.1`), if any.
    pub fn pre_release(&self) -> Option<&str> {
        self.pre.as_deref()
    }

    /// The version exactly as the server reported it.
    ///
    /// ```
    /// let v = surreal_pool::ServerVersion::parse("surrealdb-3.3.5").unwrap();
    /// assert_eq!(v.as_str(), "surrealdb-3.3.5");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `begin` takes options on this server (4.0 and later): read-only transactions
    /// over a snapshot of bounded staleness, and the isolation level (see
    /// [`crate::Session::begin_with`]).
    pub fn has_begin_options(&self) -> bool {
        Feature::BeginOptions.supported_by(Some(self))
    }

    /// Whether `query` takes options on this server (4.0 and later): running the statements
    /// as one read-only block over a snapshot of bounded staleness (see
    /// [`crate::Session::query_with`]).
    pub fn has_query_options(&self) -> bool {
        Feature::QueryOptions.supported_by(Some(self))
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What a request may ask of the server beyond what every 3.x server understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feature {
    /// `begin` with an options object (`isolation`, `read_only`): 4.0.
    BeginOptions,
    /// `query` with a third, options parameter (`read_only`): 4.0.
    QueryOptions,
}

impl Feature {
    /// The name used in [`crate::Error::Unsupported`].
    pub(crate) fn name(self) -> &'static str {
        match self {
            Feature::BeginOptions => "transaction options (`begin` with read-only or isolation)",
            Feature::QueryOptions => "query options (`query` with read-only)",
        }
    }

    /// The first SurrealDB version that has it.
    pub(crate) fn since(self) -> &'static str {
        match self {
            Feature::BeginOptions | Feature::QueryOptions => "4.0",
        }
    }

    /// Whether a server of this version (`None`: it did not say) has the feature. Any 4.x has
    /// both, its pre-releases included (4.0.0-beta.1 is the first with them); an unknown
    /// version has neither, so that nothing is sent that a 3.x server would ignore.
    pub(crate) fn supported_by(self, version: Option<&ServerVersion>) -> bool {
        match (self, version) {
            (_, None) => false,
            (Feature::BeginOptions | Feature::QueryOptions, Some(v)) => v.major >= 4,
        }
    }

    /// [`crate::Error::Unsupported`] unless a server of this version has the feature.
    pub(crate) fn require(self, version: Option<&ServerVersion>) -> crate::Result<()> {
        if self.supported_by(version) {
            return Ok(());
        }
        Err(crate::Error::Unsupported {
            feature: self.name(),
            needs: self.since(),
            server: version.map_or_else(|| "of an unknown version".to_owned(), |v| v.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_versions_surrealdb_reports_parse() {
        let v = ServerVersion::parse("surrealdb-3.3.5").unwrap();
        assert_eq!((v.major(), v.minor(), v.patch(), v.pre_release()), (3, 3, 5, None));
        let v = ServerVersion::parse("surrealdb-4.0.0-beta.1").unwrap();
        assert_eq!((v.major(), v.minor(), v.patch(), v.pre_release()), (4, 0, 0, Some("beta.1")));
        let v = ServerVersion::parse("surrealdb-4.1.2-rc.1+20260101.abcdef").unwrap();
        assert_eq!((v.major(), v.minor(), v.patch(), v.pre_release()), (4, 1, 2, Some("rc.1")));
        assert_eq!(v.as_str(), "surrealdb-4.1.2-rc.1+20260101.abcdef");
        let v = ServerVersion::parse(" 3.0.0 ").unwrap();
        assert_eq!((v.major(), v.as_str()), (3, "3.0.0"));
    }

    #[test]
    fn anything_else_does_not() {
        for text in [
            "", "surrealdb", "surrealdb-", "surrealdb-3", "surrealdb-3.3", "surrealdb-3.3.5.1", "surrealdb-3.3.x", "surrealdb-+3.3.5",
            "surrealdb-3.03.5", "surrealdb-3.3.5-", "surrealdb- 3.3.5", "[1]", "surrealdb-99999999999999999999.0.0",
        ] {
            assert_eq!(ServerVersion::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn options_are_for_4_x_only_and_never_for_an_unknown_version() {
        let v = |s: &str| ServerVersion::parse(s).unwrap();
        for feature in [Feature::BeginOptions, Feature::QueryOptions] {
            assert!(!feature.supported_by(None));
            assert!(!feature.supported_by(Some(&v("surrealdb-3.3.5"))));
            assert!(!feature.supported_by(Some(&v("surrealdb-3.99.0"))));
            assert!(feature.supported_by(Some(&v("surrealdb-4.0.0-beta.1"))));
            assert!(feature.supported_by(Some(&v("surrealdb-4.0.0"))));
            assert!(feature.supported_by(Some(&v("surrealdb-5.2.0"))));
        }
        assert!(v("surrealdb-4.0.0-beta.1").has_begin_options() && v("surrealdb-4.0.0-beta.1").has_query_options());
        assert!(!v("surrealdb-3.3.5").has_begin_options() && !v("surrealdb-3.3.5").has_query_options());
    }

    #[test]
    fn require_names_the_feature_and_the_server() {
        match Feature::BeginOptions.require(Some(&ServerVersion::parse("surrealdb-3.3.5").unwrap())) {
            Err(e @ crate::Error::Unsupported { .. }) => {
                assert!(e.is_unsupported());
                let text = e.to_string();
                assert!(text.contains("4.0") && text.contains("surrealdb-3.3.5"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        match Feature::QueryOptions.require(None) {
            Err(crate::Error::Unsupported { server, .. }) => assert_eq!(server, "of an unknown version"),
            other => panic!("{other:?}"),
        }
        Feature::QueryOptions.require(Some(&ServerVersion::parse("surrealdb-4.0.0-beta.1").unwrap())).unwrap();
    }
}
