//! Environ keys that carry values from the module to the daemon and never reach the
//! application (mod_wsgi 6's `mod_wsgi.x-` convention): the daemon turns them into the typed
//! keys applications see (`mod_wsgi.request_start`, `mod_wsgi.queue_start`).

/// Every carrier key starts with this; the daemon drops them all from the environ.
pub const PREFIX: &str = "mod_wsgi.x-";
/// When Apache read the request, microseconds since the epoch (`queue-timeout` counts from it).
/// It travels as a typed field of the request head ([`crate::RequestMeta`]), not as a pair;
/// the daemon adds this key from that field for native handlers, and Python applications see
/// it as `mod_wsgi.request_start`.
pub const REQUEST_START_US: &str = "mod_wsgi.x-request_start_us";
/// When the Apache child began handing the request to the daemon group, microseconds since the
/// epoch.
pub const QUEUE_START_US: &str = "mod_wsgi.x-queue_start_us";
/// Present (`1`) under `WSGIIgnoreActivity On`: the request does not count as activity for
/// `inactivity-timeout`.
pub const IGNORE_ACTIVITY: &str = "mod_wsgi.x-ignore_activity";
