//! One bridge event as one JSON line with the original package's names, in the documented
//! order: `{"t":..,"event":"sessionSet","clientId":..,"sessionId":..,"isNew":..,"isInit":..}`.
//! Framework-free, so every example prints events the same way.

use serde_json::Value;
use session_bridge::{BridgeEvent, ClientId};

/// The line for `event` at unix-ms `t`; `None` for event kinds this format does not know.
pub fn event_line(t: u64, event: &BridgeEvent) -> Option<String> {
    // Written field by field to keep the documented order (`t`, `event`, ...).
    let id = |v: &Option<ClientId>| Value::from(v.as_ref().map(ClientId::as_str));
    Some(match event {
        BridgeEvent::SessionSet {
            client_id,
            session_id,
            is_new,
            is_init,
        } => format!(
            r#"{{"t":{t},"event":"sessionSet","clientId":{},"sessionId":{},"isNew":{is_new},"isInit":{is_init}}}"#,
            id(client_id),
            Value::from(session_id.as_str())
        ),
        BridgeEvent::SessionDestroy {
            client_id,
            session_id,
            ..
        } => format!(
            r#"{{"t":{t},"event":"sessionDestroy","clientId":{},"sessionId":{}}}"#,
            id(client_id),
            Value::from(session_id.as_str())
        ),
        BridgeEvent::Cleanup(cleared) => {
            format!(r#"{{"t":{t},"event":"cleanup","cleared":{cleared}}}"#)
        }
        _ => return None,
    })
}
