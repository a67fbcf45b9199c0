//! Hook calls: requests that run one of mod_wsgi's hook functions in a daemon instead of a
//! WSGI application — the auth scripts (`WSGIAuthUserScript`, `WSGIAuthGroupScript`,
//! `WSGIAccessScript`) and `WSGIDispatchScript`.
//!
//! A hook call travels as an ordinary request on an authenticated connection: a `RequestHead`
//! with no body, whose environ carries the call in [carrier keys](crate::carriers) (which the
//! daemon removes before Python sees the environ, so a password never reaches it), answered
//! by `ResponseHead{200}` whose headers hold the [`HookReply`], then `ResponseEnd`; or by
//! `Error` when the script failed (the module answers 500). Both sides use the types here.

/// The hook function to call (`mod_wsgi.x-hook`).
pub const KIND: &str = "mod_wsgi.x-hook";
/// The script file that defines it (`mod_wsgi.x-hook_script`).
pub const SCRIPT: &str = "mod_wsgi.x-hook_script";
/// The user name of an auth call.
pub const USER: &str = "mod_wsgi.x-hook_user";
/// The password of a `check_password` call.
pub const PASSWORD: &str = "mod_wsgi.x-hook_password";
/// The realm of a `get_realm_hash` call.
pub const REALM: &str = "mod_wsgi.x-hook_realm";
/// The client's host name or address of an `allow_access` call.
pub const HOST: &str = "mod_wsgi.x-hook_host";

/// The response header that names the reply's kind.
const OUTCOME: &[u8] = b"outcome";

/// A hook call, as the module sends it and the daemon reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookCall<'a> {
    /// `check_password(environ, user, password)` of a `WSGIAuthUserScript` (Basic auth).
    CheckPassword {
        /// The user name the client sent.
        user: &'a [u8],
        /// The password the client sent.
        password: &'a [u8],
    },
    /// `get_realm_hash(environ, user, realm)` of a `WSGIAuthUserScript` (Digest auth).
    RealmHash {
        /// The user name the client sent.
        user: &'a [u8],
        /// The realm (`AuthName`).
        realm: &'a [u8],
    },
    /// `groups_for_user(environ, user)` of a `WSGIAuthGroupScript`.
    GroupsForUser {
        /// The authenticated user.
        user: &'a [u8],
    },
    /// `allow_access(environ, host)` of a `WSGIAccessScript`.
    AllowAccess {
        /// The client's host name, else its address.
        host: &'a [u8],
    },
    /// `process_group(environ)`, `application_group(environ)` and `callable_object(environ)`
    /// of a `WSGIDispatchScript` (each optional).
    Dispatch,
}

/// A hook call that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// The call names no hook this side knows.
    #[error("unknown hook '{0}'")]
    UnknownHook(String),
    /// A field the call needs is missing.
    #[error("hook call without its {0}")]
    Missing(&'static str),
    /// The reply does not fit the call it answers.
    #[error("a reply of kind '{0}' does not answer this hook")]
    Mismatch(String),
}

impl<'a> HookCall<'a> {
    /// The hook's name on the wire (for dispatch, the name of the whole script's call).
    pub fn name(&self) -> &'static str {
        match self {
            HookCall::CheckPassword { .. } => "check_password",
            HookCall::RealmHash { .. } => "get_realm_hash",
            HookCall::GroupsForUser { .. } => "groups_for_user",
            HookCall::AllowAccess { .. } => "allow_access",
            HookCall::Dispatch => "dispatch",
        }
    }

    /// The carrier pairs that encode the call (besides [`SCRIPT`], which the caller adds).
    pub fn carriers(&self) -> Vec<(&'static str, &'a [u8])> {
        let mut out = vec![(KIND, self.name().as_bytes())];
        match *self {
            HookCall::CheckPassword { user, password } => {
                out.extend([(USER, user), (PASSWORD, password)])
            }
            HookCall::RealmHash { user, realm } => out.extend([(USER, user), (REALM, realm)]),
            HookCall::GroupsForUser { user } => out.push((USER, user)),
            HookCall::AllowAccess { host } => out.push((HOST, host)),
            HookCall::Dispatch => {}
        }
        out
    }

    /// Reads the call from a request's environ (`get` looks a key up); `Ok(None)` for a plain
    /// WSGI request.
    pub fn from_environ(
        get: impl Fn(&str) -> Option<&'a [u8]>,
    ) -> Result<Option<HookCall<'a>>, HookError> {
        let Some(kind) = get(KIND) else {
            return Ok(None);
        };
        let need = |key: &'static str| get(key).ok_or(HookError::Missing(key));
        let user = || need(USER);
        Ok(Some(match kind {
            b"check_password" => HookCall::CheckPassword {
                user: user()?,
                password: need(PASSWORD)?,
            },
            b"get_realm_hash" => HookCall::RealmHash {
                user: user()?,
                realm: need(REALM)?,
            },
            b"groups_for_user" => HookCall::GroupsForUser { user: user()? },
            b"allow_access" => HookCall::AllowAccess { host: need(HOST)? },
            b"dispatch" => HookCall::Dispatch,
            other => {
                return Err(HookError::UnknownHook(
                    String::from_utf8_lossy(other).into_owned(),
                ))
            }
        }))
    }
}

/// What a hook function answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookReply {
    /// `True`: the password is right, or access is allowed.
    Granted,
    /// `check_password` returned a user name: the password is right, and the request's user
    /// becomes this name.
    GrantedAs(Vec<u8>),
    /// `False`: the password is wrong, or access is refused.
    Denied,
    /// `None`: no such user, or (`allow_access`) no opinion.
    Unknown,
    /// `get_realm_hash`'s hash of `user:realm:password`.
    RealmHash(Vec<u8>),
    /// `groups_for_user`'s groups.
    Groups(Vec<Vec<u8>>),
    /// What the dispatch script chose; `None` where it has no such function or it returned
    /// `None`.
    Dispatch {
        /// The daemon process group.
        process_group: Option<Vec<u8>>,
        /// The application group.
        application_group: Option<Vec<u8>>,
        /// The callable's name.
        callable_object: Option<Vec<u8>>,
    },
}

const DISPATCH_FIELDS: [&[u8]; 3] = [b"process-group", b"application-group", b"callable-object"];

impl HookReply {
    /// The reply as response headers (for a `ResponseHead` of status 200).
    pub fn to_headers(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let outcome = |v: &str| (OUTCOME.to_vec(), v.as_bytes().to_vec());
        match self {
            HookReply::Granted => vec![outcome("granted")],
            HookReply::GrantedAs(user) => {
                vec![outcome("granted-as"), (b"user".to_vec(), user.clone())]
            }
            HookReply::Denied => vec![outcome("denied")],
            HookReply::Unknown => vec![outcome("unknown")],
            HookReply::RealmHash(h) => vec![outcome("realm-hash"), (b"hash".to_vec(), h.clone())],
            HookReply::Groups(groups) => std::iter::once(outcome("groups"))
                .chain(groups.iter().map(|g| (b"group".to_vec(), g.clone())))
                .collect(),
            HookReply::Dispatch {
                process_group,
                application_group,
                callable_object,
            } => {
                let fields = [process_group, application_group, callable_object];
                std::iter::once(outcome("dispatch"))
                    .chain(
                        DISPATCH_FIELDS
                            .iter()
                            .zip(fields)
                            .filter_map(|(name, v)| v.as_ref().map(|v| (name.to_vec(), v.clone()))),
                    )
                    .collect()
            }
        }
    }

    /// Reads a reply from response headers, checking that it answers `call`.
    pub fn from_headers<'h>(
        call: &HookCall<'_>,
        headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>,
    ) -> Result<HookReply, HookError> {
        let headers: Vec<(&[u8], &[u8])> = headers.into_iter().collect();
        let one = |name: &[u8]| {
            headers
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_vec())
        };
        let outcome = one(OUTCOME).ok_or(HookError::Missing("outcome"))?;
        let reply = match outcome.as_slice() {
            b"granted" => HookReply::Granted,
            b"granted-as" => HookReply::GrantedAs(one(b"user").ok_or(HookError::Missing("user"))?),
            b"denied" => HookReply::Denied,
            b"unknown" => HookReply::Unknown,
            b"realm-hash" => HookReply::RealmHash(one(b"hash").ok_or(HookError::Missing("hash"))?),
            b"groups" => HookReply::Groups(
                headers
                    .iter()
                    .filter(|(k, _)| *k == b"group")
                    .map(|(_, v)| v.to_vec())
                    .collect(),
            ),
            b"dispatch" => HookReply::Dispatch {
                process_group: one(DISPATCH_FIELDS[0]),
                application_group: one(DISPATCH_FIELDS[1]),
                callable_object: one(DISPATCH_FIELDS[2]),
            },
            other => {
                return Err(HookError::Mismatch(
                    String::from_utf8_lossy(other).into_owned(),
                ))
            }
        };
        if reply.answers(call) {
            Ok(reply)
        } else {
            Err(HookError::Mismatch(
                String::from_utf8_lossy(&outcome).into_owned(),
            ))
        }
    }

    /// Whether this is a reply `call` can have.
    fn answers(&self, call: &HookCall<'_>) -> bool {
        use HookReply as R;
        match call {
            HookCall::CheckPassword { .. } => {
                matches!(self, R::Granted | R::GrantedAs(_) | R::Denied | R::Unknown)
            }
            HookCall::RealmHash { .. } => matches!(self, R::RealmHash(_) | R::Unknown),
            HookCall::GroupsForUser { .. } => matches!(self, R::Groups(_)),
            HookCall::AllowAccess { .. } => matches!(self, R::Granted | R::Denied | R::Unknown),
            HookCall::Dispatch => matches!(self, R::Dispatch { .. }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'static str, &'a [u8])]) -> impl Fn(&str) -> Option<&'a [u8]> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
    }

    #[test]
    fn calls_round_trip_through_their_carriers() {
        let calls = [
            HookCall::CheckPassword {
                user: b"alice",
                password: b"s\xe9cret",
            },
            HookCall::RealmHash {
                user: b"bob",
                realm: b"Top Secret",
            },
            HookCall::GroupsForUser { user: b"carol" },
            HookCall::AllowAccess { host: b"127.0.0.1" },
            HookCall::Dispatch,
        ];
        for call in calls {
            let pairs = call.carriers();
            assert_eq!(HookCall::from_environ(lookup(&pairs)), Ok(Some(call)));
            assert!(pairs
                .iter()
                .all(|(k, _)| k.starts_with(crate::carriers::PREFIX)));
        }
        assert_eq!(HookCall::from_environ(|_| None), Ok(None));
        let missing = [(KIND, &b"check_password"[..]), (USER, b"a")];
        assert_eq!(
            HookCall::from_environ(lookup(&missing)),
            Err(HookError::Missing(PASSWORD))
        );
        let unknown = [(KIND, &b"format_disk"[..])];
        assert!(matches!(
            HookCall::from_environ(lookup(&unknown)),
            Err(HookError::UnknownHook(_))
        ));
    }

    fn through_headers(call: &HookCall<'_>, reply: &HookReply) -> Result<HookReply, HookError> {
        let headers = reply.to_headers();
        HookReply::from_headers(
            call,
            headers.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        )
    }

    #[test]
    fn replies_round_trip_and_must_fit_their_call() {
        let check = HookCall::CheckPassword {
            user: b"u",
            password: b"p",
        };
        for reply in [
            HookReply::Granted,
            HookReply::GrantedAs(b"alice@example".to_vec()),
            HookReply::Denied,
            HookReply::Unknown,
        ] {
            assert_eq!(through_headers(&check, &reply), Ok(reply));
        }
        let groups = HookReply::Groups(vec![b"staff".to_vec(), b"admins".to_vec()]);
        let g = HookCall::GroupsForUser { user: b"u" };
        assert_eq!(through_headers(&g, &groups), Ok(groups.clone()));
        assert_eq!(
            through_headers(&g, &HookReply::Groups(vec![])),
            Ok(HookReply::Groups(vec![]))
        );
        let dispatch = HookReply::Dispatch {
            process_group: Some(b"two".to_vec()),
            application_group: None,
            callable_object: Some(b"app".to_vec()),
        };
        assert_eq!(
            through_headers(&HookCall::Dispatch, &dispatch),
            Ok(dispatch)
        );
        let hash = HookReply::RealmHash(b"0123abcd".to_vec());
        let realm = HookCall::RealmHash {
            user: b"u",
            realm: b"r",
        };
        assert_eq!(through_headers(&realm, &hash), Ok(hash.clone()));
        // A reply of the wrong kind (a confused or hostile daemon) is refused.
        assert!(through_headers(&check, &groups).is_err());
        assert!(through_headers(&check, &hash).is_err());
        assert!(through_headers(&g, &HookReply::Granted).is_err());
        assert!(through_headers(&HookCall::AllowAccess { host: b"h" }, &groups).is_err());
        assert!(HookReply::from_headers(&check, []).is_err());
        let bogus: [(&[u8], &[u8]); 1] = [(b"outcome", b"maybe")];
        assert!(HookReply::from_headers(&check, bogus).is_err());
    }
}
