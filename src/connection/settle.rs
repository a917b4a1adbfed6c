//! A move's last look at the socket it leaves: the notifications its live queries still had on
//! the way there (see `connection::relocate`, step 5).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::{timeout_at, Instant};
use tokio_websockets::Message;

use super::{live_registry, Shared, Socket};
use crate::wire::envelope::{self, Incoming};
use crate::wire::tags;

/// The longest a move reads the old socket for the notifications still on their way there
/// (see [`settle`]); commands are held meanwhile.
pub(crate) const SETTLE_LIMIT: Duration = Duration::from_millis(500);

/// Step 5a, once the move is committed (every live query registered again on the new socket,
/// whose notifications during the replay are routed after these): the old socket may still
/// carry notifications of the old registrations, `live` (key, session, old id), which the
/// server sends unordered with replies. Each is killed there, and the old socket read until
/// every kill is answered and each query's `KILLED` notification has come, at most
/// [`SETTLE_LIMIT`]; the notifications read meanwhile go to their streams by key, the `KILLED`
/// ones do not (the streams go on). A change made elsewhere in a cluster between the two
/// registrations may be notified twice; none made before the move is lost, unless the old node
/// takes longer than the limit to deliver it (or delivers it after its query's `KILLED`).
/// Returns how many live queries were killed.
pub(crate) async fn settle(old: &mut Socket, shared: &Shared, live: &[(u64, Option<uuid::Uuid>, uuid::Uuid)]) -> Result<usize, String> {
    if live.is_empty() {
        return Ok(0);
    }
    // The old ids, to their streams' keys (the registry holds the new ids by now).
    let keys: HashMap<uuid::Uuid, u64> = live.iter().map(|(key, _, id)| (*id, *key)).collect();
    let deadline = Instant::now() + SETTLE_LIMIT;
    let late = || format!("the old socket did not settle within {SETTLE_LIMIT:?}");
    let mut kills: HashMap<u64, uuid::Uuid> = HashMap::with_capacity(live.len());
    let mut ending: HashSet<uuid::Uuid> = HashSet::with_capacity(live.len());
    for (_, session, id) in live {
        let request = shared.next_id();
        let frame = envelope::encode_request(request, "kill", vec![tags::uuid(id)], *session).map_err(|e| e.to_string())?;
        timeout_at(deadline, old.feed(Message::binary(frame))).await.map_err(|_| late())?.map_err(|e| e.to_string())?;
        kills.insert(request, *id);
        ending.insert(*id);
    }
    timeout_at(deadline, old.flush()).await.map_err(|_| late())?.map_err(|e| e.to_string())?;
    while !kills.is_empty() || !ending.is_empty() {
        let frame = timeout_at(deadline, old.next()).await.map_err(|_| late())?;
        match frame {
            Some(Ok(message)) if message.is_binary() => match envelope::decode_response(&message.into_payload().into()) {
                Ok(Incoming::Reply { id, outcome, .. }) => {
                    // A kill refused sends no `KILLED`: nothing more to wait for of that query.
                    if let (Some(live), Err(_)) = (kills.remove(&id), &outcome) {
                        ending.remove(&live);
                    }
                }
                Ok(Incoming::Unsolicited(frame)) => {
                    let Some(note) = live_registry::notification(frame) else { continue };
                    match live_registry::id_and_action(&note) {
                        // Our own kills' end, never the stream's (it goes on on the new socket).
                        (Some(id), Some("KILLED")) if keys.contains_key(&id) => {
                            ending.remove(&id);
                        }
                        (Some(id), _) => {
                            if let Some(&key) = keys.get(&id) {
                                shared.live().deliver(key, note);
                            }
                        }
                        _ => {}
                    }
                }
                Err(_) => {}
            },
            Some(Ok(message)) if message.is_close() => return Err("the old socket closed".into()),
            None => return Err("the old socket closed".into()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(_)) => {}
        }
    }
    Ok(live.len())
}
