//! Restoring every server session on a fresh socket, in a fixed order, before any caller's
//! command is sent.
//!
//! The order, for every session at once (each step pipelined across sessions, each reply
//! checked before the next step):
//!
//! 1. `attach` the session id (not for the default session);
//! 2. `use` its namespace and database — skipped when step 4 authenticates with a token whose
//!    `NS`/`DB` claims select the same ones;
//! 3. `let` each variable;
//! 4. auth: `authenticate` with the stored access token if it has not expired; otherwise
//!    `refresh` with the refresh token — once per refresh token, since refresh tokens are
//!    single-use, then `authenticate` the other sessions that held it with the new access token;
//!    otherwise `signin` with remembered credentials if the caller opted in; otherwise the
//!    session is marked auth-lost. A session is never left silently anonymous.
//! 5. live queries: each is registered again (`live` or its `LIVE SELECT`) on sessions whose
//!    identity came back, and its stream follows the new id; the others' streams end.
//!
//! The server answers one socket's requests concurrently, so steps are separated by a wait for
//! every reply of the previous step.

use std::collections::HashMap;

use ciborium::Value as Cbor;
use futures_util::{SinkExt, StreamExt};
use tokio::time::{timeout_at, Instant};
use tokio_websockets::Message;

use crate::auth::Tokens;
use crate::wire::tags;
use crate::connection::{Config, Shared, Socket};
use crate::error::ServerError;
use crate::wire::envelope::{self, Incoming};
use crate::connection::live_registry;
use crate::connection::state::{AuthState, SessionState};

type Outcome = Result<Cbor, ServerError>;

/// What a replay did.
pub(crate) struct Report {
    pub(crate) sessions: usize,
    pub(crate) requests: usize,
    pub(crate) auth_lost: Vec<Option<uuid::Uuid>>,
}

/// A replay sent and answered on a fresh socket, not yet recorded in the shared state (only
/// refreshed token pairs are, at once: refresh tokens are single-use). A reconnect records it
/// whatever it holds; a planned move records it only if it is [`complete`](Self::complete),
/// and otherwise keeps the old socket, whose sessions are still as they were.
pub(crate) struct Replayed {
    plans: Vec<(Option<uuid::Uuid>, SessionState)>,
    alive: Vec<bool>,
    attach_failed: Vec<bool>,
    auth: Vec<Auth>,
    /// Live queries registered again: (key, session, new id if the server gave one).
    live: Vec<(u64, Option<uuid::Uuid>, Option<uuid::Uuid>)>,
    /// Live queries of sessions whose identity did not come back.
    live_dropped: Vec<u64>,
    /// Whether one of those was of a session whose identity was known before: a session that
    /// had no known identity to restore (it is `Unknown`, or it rested on an expired token)
    /// loses its live queries at any reconnect, so they do not keep a move from completing.
    live_lost: bool,
    requests: usize,
    /// Notifications the socket delivered meanwhile, for live queries registered again: routed
    /// once their new ids are recorded.
    notes: Vec<Cbor>,
}

/// What the steps of a replay sent, and the notifications that came with the replies.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) requests: usize,
    pub(crate) notes: Vec<Cbor>,
}

/// One request of a replay step.
struct Step {
    session: Option<uuid::Uuid>,
    method: &'static str,
    params: Vec<Cbor>,
}

/// Sends every request of a step, then waits for every reply (bounded by the request timeout);
/// notifications that come meanwhile are kept in `tally`.
async fn exchange(
    socket: &mut Socket,
    shared: &Shared,
    config: &Config,
    tally: &mut Tally,
    steps: Vec<Step>,
) -> Result<Vec<Outcome>, String> {
    tally.requests += steps.len();
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids = HashMap::with_capacity(steps.len());
    for (index, step) in steps.into_iter().enumerate() {
        let id = shared.next_id();
        let frame = envelope::encode_request(id, step.method, step.params, step.session).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + config.request_timeout;
        timeout_at(deadline, socket.feed(Message::binary(frame)))
            .await
            .map_err(|_| "a replay write stalled".to_string())?
            .map_err(|e| e.to_string())?;
        ids.insert(id, index);
    }
    timeout_at(Instant::now() + config.request_timeout, socket.flush())
        .await
        .map_err(|_| "a replay write stalled".to_string())?
        .map_err(|e| e.to_string())?;
    let mut results: Vec<Option<Outcome>> = (0..ids.len()).map(|_| None).collect();
    let mut missing = ids.len();
    let deadline = Instant::now() + config.request_timeout;
    while missing > 0 {
        let frame = timeout_at(deadline, socket.next())
            .await
            .map_err(|_| format!("no reply to the replay within {:?}", config.request_timeout))?;
        match frame {
            Some(Ok(message)) if message.is_binary() => match envelope::decode_response(&message.into_payload().into()) {
                Ok(Incoming::Reply { id, outcome, .. }) => {
                    if let Some(index) = ids.remove(&id) {
                        let invalid = |e: crate::Error| ServerError::new(0, "Internal", e.to_string());
                        results[index] = Some(outcome.and_then(|p| p.cbor().map_err(invalid)));
                        missing -= 1;
                    }
                }
                Ok(Incoming::Unsolicited(frame)) => tally.notes.extend(live_registry::notification(frame)),
                Err(_) => {}
            },
            Some(Ok(message)) if message.is_close() => return Err("the socket closed during the replay".into()),
            None => return Err("the socket closed during the replay".into()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(_)) => {}
        }
    }
    Ok(results.into_iter().map(|r| r.unwrap_or_else(|| Err(ServerError::new(0, "Internal", "no reply")))).collect())
}

fn text(s: &str) -> Cbor {
    Cbor::Text(s.to_owned())
}

fn none() -> Cbor {
    Cbor::Tag(tags::TAG_NONE, Box::new(Cbor::Null))
}

/// Whether authenticating with `tokens` selects exactly `namespace` and `database`.
fn token_selects(tokens: &Tokens, state: &SessionState) -> bool {
    let Some(claims) = tokens.access.claims() else { return false };
    claims.ns == state.namespace && claims.db == state.database && state.namespace.is_some()
}

/// Whether an access token has expired, as a replay judges it (a second early, for the trip).
pub(crate) fn expired(tokens: &Tokens) -> bool {
    // One second of slack for the trip to the server.
    tokens.access.expires_at().is_some_and(|exp| exp <= chrono::Utc::now().timestamp() + 1)
}

/// How a session's identity is being restored.
#[derive(Clone, PartialEq)]
enum Auth {
    /// Nothing to restore (anonymous).
    Nothing,
    /// Done.
    Restored(Tokens),
    /// Still to do, with what is known.
    Todo(Tokens),
    Lost,
}

/// Replays every session on `socket` and records the outcome (a reconnect).
pub(crate) async fn replay(socket: &mut Socket, shared: &Shared, config: &Config) -> Result<Report, String> {
    let replayed = run(socket, shared, config, Occasion::Reconnect).await?;
    let Committed { mut report, orphans, notes } = replayed.commit(shared);
    route(shared, notes);
    kill_orphans(socket, shared, config, &mut report.requests, orphans).await?;
    Ok(report)
}

/// Kills live queries registered again whose stream was dropped meanwhile (their new ids are
/// recorded: notifications that come meanwhile are routed at once).
pub(crate) async fn kill_orphans(
    socket: &mut Socket,
    shared: &Shared,
    config: &Config,
    requests: &mut usize,
    orphans: Vec<(Option<uuid::Uuid>, uuid::Uuid)>,
) -> Result<(), String> {
    let kills = orphans.into_iter().map(|(session, id)| Step { session, method: "kill", params: vec![tags::uuid(&id)] }).collect();
    let mut tally = Tally::default();
    let done = exchange(socket, shared, config, &mut tally, kills).await.map(drop);
    *requests += tally.requests;
    route(shared, tally.notes);
    done
}

/// Why sessions are replayed on a fresh socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Occasion {
    /// The socket was lost: whatever can come back does.
    Reconnect,
    /// A move off an ejected node: as a reconnect.
    ForcedMove,
    /// A move that can be given up (the old socket serves on meanwhile).
    ///
    /// Step 4b spends no refresh token: a refresh token is single-use, and a move given up
    /// past its limit while a `refresh` is in flight would lose the new pair the server has
    /// already issued (the old socket goes on serving the session, whose next reconnect could
    /// then not restore it). A session whose access token has expired needs no move to be
    /// refreshed: the connection renews it on its socket (see `Actor::renewals`), and the move
    /// waits for that if the session is in use.
    PlannedMove,
}

/// Sends every step of the replay on `socket` and checks every reply; records nothing but
/// refreshed token pairs (see [`Replayed`], [`Occasion`]).
pub(crate) async fn run(socket: &mut Socket, shared: &Shared, config: &Config, occasion: Occasion) -> Result<Replayed, String> {
    let refresh = occasion != Occasion::PlannedMove;
    let mut plans: Vec<(Option<uuid::Uuid>, SessionState)> =
        shared.sessions().iter().map(|(id, s)| (*id, s.clone())).collect();
    plans.sort_by_key(|(id, _)| *id);
    let mut tally = Tally::default();
    let mut alive = vec![true; plans.len()];
    let mut attach_failed = vec![false; plans.len()];

    // 1. attach
    let attach: Vec<usize> = (0..plans.len()).filter(|&i| plans[i].0.is_some()).collect();
    let results = exchange(socket, shared, config, &mut tally, attach.iter().map(|&i| Step { session: plans[i].0, method: "attach", params: vec![] }).collect()).await?;
    for (&i, result) in attach.iter().zip(results) {
        if let Err(e) = result {
            tracing::warn!(session = ?plans[i].0, error = %e, "could not re-attach a session");
            alive[i] = false;
            attach_failed[i] = true;
        }
    }

    // 2. use (unless the token will select the same namespace and database)
    let mut used = vec![false; plans.len()];
    let uses: Vec<usize> = (0..plans.len())
        .filter(|&i| alive[i] && (plans[i].1.namespace.is_some() || plans[i].1.database.is_some()))
        .filter(|&i| !matches!(&plans[i].1.auth, AuthState::Token(t) if token_selects(t, &plans[i].1)))
        .collect();
    let use_step = |i: usize| Step {
        session: plans[i].0,
        method: "use",
        params: vec![
            plans[i].1.namespace.as_deref().map(text).unwrap_or_else(none),
            plans[i].1.database.as_deref().map(text).unwrap_or_else(none),
        ],
    };
    let results = exchange(socket, shared, config, &mut tally, uses.iter().map(|&i| use_step(i)).collect()).await?;
    for (&i, result) in uses.iter().zip(results) {
        used[i] = true;
        if let Err(e) = result {
            tracing::warn!(session = ?plans[i].0, error = %e, "could not restore a session's namespace/database");
            alive[i] = false;
        }
    }

    // 3. variables
    let mut lets = Vec::new();
    for (i, (id, state)) in plans.iter().enumerate() {
        if alive[i] {
            for (name, value) in &state.variables {
                lets.push((i, Step { session: *id, method: "let", params: vec![text(name), value.clone()] }));
            }
        }
    }
    let (owners, steps): (Vec<usize>, Vec<Step>) = lets.into_iter().unzip();
    let results = exchange(socket, shared, config, &mut tally, steps).await?;
    for (&i, result) in owners.iter().zip(results) {
        if let Err(e) = result {
            tracing::warn!(session = ?plans[i].0, error = %e, "could not restore a session variable");
            alive[i] = false;
        }
    }

    // 4. auth
    let mut auth: Vec<Auth> = plans
        .iter()
        .enumerate()
        .map(|(i, (_, state))| match &state.auth {
            _ if !alive[i] => Auth::Lost,
            AuthState::Anonymous => Auth::Nothing,
            AuthState::Token(t) => Auth::Todo(t.clone()),
            AuthState::Unknown => Auth::Lost,
        })
        .collect();

    // 4a. authenticate with unexpired tokens
    let todo: Vec<usize> = (0..plans.len()).filter(|&i| matches!(&auth[i], Auth::Todo(t) if !expired(t))).collect();
    let steps = todo
        .iter()
        .map(|&i| {
            let Auth::Todo(t) = &auth[i] else { unreachable!() };
            Step { session: plans[i].0, method: "authenticate", params: vec![text(t.access.as_str())] }
        })
        .collect();
    for (&i, result) in todo.iter().zip(exchange(socket, shared, config, &mut tally, steps).await?) {
        if result.is_ok() {
            if let Auth::Todo(t) = &auth[i] {
                auth[i] = Auth::Restored(t.clone());
            }
        }
    }

    // 4b. refresh, once per refresh token
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, a) in auth.iter().enumerate() {
        match a {
            Auth::Todo(Tokens { refresh: Some(r), .. }) if refresh => groups.entry(r.as_str().to_owned()).or_default().push(i),
            _ => {}
        }
    }
    let leaders: Vec<usize> = groups.values().map(|g| g[0]).collect();
    let steps = leaders
        .iter()
        .filter_map(|&i| match &auth[i] {
            Auth::Todo(t) => t.to_params().ok().map(|p| Step { session: plans[i].0, method: "refresh", params: vec![p] }),
            _ => None,
        })
        .collect();
    let mut followers = Vec::new();
    for (&leader, result) in leaders.iter().zip(exchange(socket, shared, config, &mut tally, steps).await?) {
        let Ok(tokens) = result.map_err(|_| ()).and_then(|r| Tokens::from_result(&r).map_err(|_| ())) else { continue };
        let group = match &auth[leader] {
            Auth::Todo(Tokens { refresh: Some(r), .. }) => groups.get(r.as_str()).cloned().unwrap_or_default(),
            _ => continue,
        };
        for &i in &group {
            auth[i] = Auth::Restored(tokens.clone());
            if i != leader {
                followers.push(i);
            }
        }
    }
    // Refresh tokens are single-use: keep the new pairs now, whatever happens next.
    {
        let mut states = shared.sessions();
        for (i, (id, _)) in plans.iter().enumerate() {
            if let (Auth::Restored(tokens), Some(state)) = (&auth[i], states.get_mut(id)) {
                state.auth = AuthState::Token(tokens.clone());
            }
        }
    }
    let steps = followers
        .iter()
        .filter_map(|&i| match &auth[i] {
            Auth::Restored(t) => Some(Step { session: plans[i].0, method: "authenticate", params: vec![text(t.access.as_str())] }),
            _ => None,
        })
        .collect();
    for (&i, result) in followers.iter().zip(exchange(socket, shared, config, &mut tally, steps).await?) {
        if result.is_err() {
            auth[i] = Auth::Lost;
        }
    }

    // 4c. remembered credentials
    let by_credentials: Vec<usize> = (0..plans.len())
        .filter(|&i| matches!(auth[i], Auth::Todo(_)) && config.remember_credentials && plans[i].1.credentials.is_some())
        .collect();
    let steps = by_credentials
        .iter()
        .filter_map(|&i| plans[i].1.credentials.as_ref().map(|c| Step { session: plans[i].0, method: "signin", params: vec![c.params().clone()] }))
        .collect();
    for (&i, result) in by_credentials.iter().zip(exchange(socket, shared, config, &mut tally, steps).await?) {
        if let Ok(tokens) = result.map_err(|_| ()).and_then(|r| Tokens::from_result(&r).map_err(|_| ())) {
            auth[i] = Auth::Restored(tokens);
        }
    }

    // Sessions whose `use` was skipped because their token would select the namespace and
    // database, but whose identity did not come back with such a token (lost, or restored by a
    // signin that selects nothing): select explicitly.
    let reselect: Vec<usize> = (0..plans.len())
        .filter(|&i| alive[i] && !used[i])
        .filter(|&i| plans[i].1.namespace.is_some() || plans[i].1.database.is_some())
        .filter(|&i| !matches!(&auth[i], Auth::Restored(t) if token_selects(t, &plans[i].1)))
        .collect();
    exchange(socket, shared, config, &mut tally, reselect.iter().map(|&i| use_step(i)).collect()).await?;

    // 5. live queries, on sessions that came back with their identity.
    let live = shared.live().snapshot();
    let usable: std::collections::HashSet<Option<uuid::Uuid>> = plans
        .iter()
        .enumerate()
        .filter(|(i, _)| alive[*i] && matches!(auth[*i], Auth::Restored(_) | Auth::Nothing))
        .map(|(_, (id, _))| *id)
        .collect();
    let (keep, drop_now): (Vec<_>, Vec<_>) = live.into_iter().partition(|(_, session, _)| usable.contains(session));
    let steps = keep
        .iter()
        .map(|(_, session, what)| {
            let (method, params) = what.request();
            Step { session: *session, method, params }
        })
        .collect();
    let results = exchange(socket, shared, config, &mut tally, steps).await?;
    let live = keep.into_iter().zip(results).map(|((key, session, what), result)| (key, session, result.ok().and_then(|r| what.id_from(r)))).collect();
    // A live query whose stream is still read is in use, whoever holds its session: it keeps
    // a planned move from completing unless its session has no identity at all to restore.
    let lost_anyway = |key: u64, session: &Option<uuid::Uuid>| {
        plans.iter().find(|(id, _)| id == session).is_some_and(|(_, plan)| match &plan.auth {
            AuthState::Unknown => true,
            AuthState::Token(t) => expired(t) && plan.idle && !shared.live().is_read(key),
            _ => false,
        })
    };
    let live_lost = drop_now.iter().any(|(key, session, _)| !lost_anyway(*key, session));
    let live_dropped = drop_now.into_iter().map(|(key, ..)| key).collect();
    let Tally { requests, notes } = tally;
    Ok(Replayed { plans, alive, attach_failed, auth, live, live_dropped, live_lost, requests, notes })
}

impl Replayed {
    /// Whether every session came back as it was: attached, its namespace, database and
    /// variables set, its identity restored, and each of its live queries registered again.
    ///
    /// Two kinds of session count as back without their identity: one whose identity is
    /// unknown (there is nothing to restore), and an idle one (no caller holds it) whose
    /// identity rested only on an access token that has expired (it would be lost at any
    /// reconnect too; the pool prepares the session again when it is next checked out, and
    /// marks idle only sessions whose identity it can make anew). A session *in
    /// use* in that case is not back: its socket's server session may well outlive the token
    /// (`FOR SESSION` longer than `FOR TOKEN`), and the caller's next request would fail where
    /// it would have run.
    pub(crate) fn complete(&self) -> bool {
        let sessions = (0..self.plans.len()).all(|i| {
            !self.attach_failed[i]
                && self.alive[i]
                && match (&self.auth[i], &self.plans[i].1.auth) {
                    (Auth::Nothing | Auth::Restored(_), _) => true,
                    (_, AuthState::Unknown) => true,
                    (_, AuthState::Token(t)) => expired(t) && self.plans[i].1.idle,
                    (_, AuthState::Anonymous) => false,
                }
        });
        sessions && self.live.iter().all(|(_, _, id)| id.is_some()) && !self.live_lost
    }

    /// Records the outcome in the shared state, whatever it holds (a reconnect, a forced
    /// move): see [`Committed`].
    pub(crate) fn commit(self, shared: &Shared) -> Committed {
        self.commit_checked(shared, false).unwrap_or_else(|| unreachable!("an unchecked commit always records"))
    }

    /// Records the outcome as [`commit`](Self::commit) does, unless a session counted back
    /// only because it was idle (its identity, resting on an expired token, given up) has been
    /// checked out since the replay began: then nothing is recorded (`None`) and the move is
    /// given up. The check and the record are made under the sessions' lock, the one a pool's
    /// checkout takes to mark a session in use and judge it: a checkout before the commit
    /// keeps the move from happening, one after it finds the identity lost and prepares the
    /// session again. (A checkout while a move holds the commands gives such an identity up
    /// itself, `SessionState::take_into_use`, which this check allows, unless something keeps
    /// it: a refresh token, remembered credentials or a read stream. So a move is stopped here
    /// by a checkout that took its session just before the hold began, or during it one whose
    /// identity is kept that way: rare, since renewals refresh tokens before they expire.)
    pub(crate) fn commit_if_still_idle(self, shared: &Shared) -> Option<Committed> {
        self.commit_checked(shared, true)
    }

    fn commit_checked(self, shared: &Shared, check_idle: bool) -> Option<Committed> {
        let Replayed { plans, attach_failed, auth, live, live_dropped, requests, notes, .. } = self;
        let report = Self::record(shared, &plans, &attach_failed, &auth, requests, check_idle)?;
        let mut orphans = Vec::new();
        let mut registry = shared.live();
        for (key, session, id) in live {
            match id {
                Some(id) => {
                    if !registry.rebind(key, id) {
                        orphans.push((session, id)); // its stream was dropped meanwhile
                    }
                }
                None => {
                    registry.remove(key);
                }
            }
        }
        for key in live_dropped {
            registry.remove(key); // its session lost its identity: the stream ends
        }
        Some(Committed { report, orphans, notes })
    }

    fn record(
        shared: &Shared,
        plans: &[(Option<uuid::Uuid>, SessionState)],
        attach_failed: &[bool],
        auth: &[Auth],
        requests: usize,
        check_idle: bool,
    ) -> Option<Report> {
        let sessions = plans.len();
        let mut auth_lost = Vec::new();
        let mut states = shared.sessions();
        if check_idle {
            let given_up_as_idle = |i: usize| matches!(auth[i], Auth::Todo(_) | Auth::Lost) && matches!(&plans[i].1.auth, AuthState::Token(t) if plans[i].1.idle && expired(t));
            // Taken since, and still resting on that identity (a checkout during the hold gives
            // it up itself: see `SessionState::take_into_use`).
            let taken = |s: &SessionState| !s.idle && s.auth != AuthState::Unknown;
            if (0..plans.len()).any(|i| given_up_as_idle(i) && states.get(&plans[i].0).is_some_and(taken)) {
                return None;
            }
        }
        for (i, (id, _)) in plans.iter().enumerate() {
            if attach_failed[i] {
                // The server has no such session on this socket: it is gone, not replayed again,
                // and its commands fail with `Detached` (a pool replaces it).
                states.remove(id);
                auth_lost.push(*id);
                continue;
            }
            let Some(state) = states.get_mut(id) else { continue };
            state.open_transactions = 0; // transactions die with their socket
            match &auth[i] {
                Auth::Nothing => {}
                Auth::Restored(tokens) => state.auth = AuthState::Token(tokens.clone()),
                Auth::Todo(_) | Auth::Lost => {
                    if state.auth != AuthState::Unknown {
                        auth_lost.push(*id);
                    }
                    state.auth = AuthState::Unknown;
                }
            }
        }
        Some(Report { sessions, requests, auth_lost })
    }
}

/// What a commit leaves to do.
pub(crate) struct Committed {
    pub(crate) report: Report,
    /// Live queries registered again whose stream was dropped meanwhile: to kill.
    pub(crate) orphans: Vec<(Option<uuid::Uuid>, uuid::Uuid)>,
    /// Notifications the new socket delivered during the replay: to route (their new ids are
    /// recorded now), after any the old socket still had.
    pub(crate) notes: Vec<Cbor>,
}

/// Delivers notifications to their streams by their (recorded) server ids.
pub(crate) fn route(shared: &Shared, notes: Vec<Cbor>) {
    let mut registry = shared.live();
    for note in notes {
        registry.route(note);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use surreal_pool_testkit::fake::{self, FakeServer};

    use super::*;
    use crate::auth::{AccessToken, RefreshToken};

    /// A session whose access token expired (`{"exp":1700000000}`), with a refresh token.
    fn expired_with_refresh(idle: bool) -> SessionState {
        let tokens = Tokens { access: AccessToken::new("eyJhbGciOiJub25lIn0.eyJleHAiOjE3MDAwMDAwMDB9."), refresh: Some(RefreshToken::new("r")) };
        let mut state = SessionState::default();
        (state.auth, state.idle) = (AuthState::Token(tokens), idle);
        state
    }

    /// Replays one such session on a fake server that answers everything with `NONE`-ish
    /// nulls; returns the methods it was sent and whether the replay was complete.
    async fn replay_once(occasion: Occasion, idle: bool) -> (Vec<String>, bool, AuthState) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let server = {
            let seen = seen.clone();
            FakeServer::start(true, move |request| {
                seen.lock().unwrap().push(request.method.clone());
                vec![fake::reply(request.id, Cbor::Null, None)]
            })
            .await
        };
        let config = Config { endpoints: vec![server.url()], ..Config::default() };
        let shared = Shared::new(&config);
        let id = Some(uuid::Uuid::new_v4());
        shared.sessions().insert(id, expired_with_refresh(idle));
        let mut socket = crate::connection::dial(&server.url(), &config).await.unwrap();
        let replayed = run(&mut socket, &shared, &config, occasion).await.unwrap();
        let methods = seen.lock().unwrap().clone();
        let auth = shared.sessions()[&id].auth.clone();
        (methods, replayed.complete(), auth)
    }

    #[tokio::test]
    async fn a_planned_move_spends_no_refresh_token_and_waits_for_a_session_in_use() {
        let (methods, complete, auth) = replay_once(Occasion::PlannedMove, false).await;
        assert!(methods.iter().any(|m| m == "attach"), "{methods:?}");
        assert!(!methods.iter().any(|m| m == "refresh"), "a planned move sent {methods:?}");
        assert!(!complete, "a session in use whose identity did not come back is not back");
        assert!(matches!(auth, AuthState::Token(_)), "in use, its identity is left as it is: {auth:?}");
        let (methods, complete, auth) = replay_once(Occasion::PlannedMove, true).await;
        assert!(!methods.iter().any(|m| m == "refresh"), "{methods:?}");
        assert!(complete, "idle, its expired identity is given up at the commit");
        assert!(matches!(auth, AuthState::Token(_)), "nothing recorded before the commit: {auth:?}");
        // A reconnect (the old socket is gone) does spend it.
        let (methods, ..) = replay_once(Occasion::Reconnect, false).await;
        assert!(methods.iter().any(|m| m == "refresh"), "a reconnect sent {methods:?}");
    }
}
