//! mod_wsgi's hook scripts: `WSGIAuthUserScript`, `WSGIAuthGroupScript`, `WSGIAccessScript`
//! and `WSGIDispatchScript`, each `FILE [application-group=NAME] [process-group=NAME]`. Their
//! functions run in a daemon process group (`process-group=` is rswsgi's own option; mod_wsgi
//! ran them inside Apache).

use super::words::{split_option, split_words};

/// Which hook script a directive names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// `WSGIAccessScript`: `allow_access`.
    Access,
    /// `WSGIAuthUserScript`: `check_password`, `get_realm_hash`.
    AuthUser,
    /// `WSGIAuthGroupScript`: `groups_for_user`.
    AuthGroup,
    /// `WSGIDispatchScript`: `process_group`, `application_group`, `callable_object`.
    Dispatch,
}

impl HookKind {
    /// The directive's name.
    pub fn directive(self) -> &'static str {
        match self {
            HookKind::Access => "WSGIAccessScript",
            HookKind::AuthUser => "WSGIAuthUserScript",
            HookKind::AuthGroup => "WSGIAuthGroupScript",
            HookKind::Dispatch => "WSGIDispatchScript",
        }
    }
}

/// One hook script directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookScript {
    /// Which directive it came from.
    pub kind: HookKind,
    /// The script (absolute once resolved against ServerRoot).
    pub script: String,
    /// `process-group=`: the daemon group its functions run in.
    pub process_group: Option<String>,
    /// `application-group=`.
    pub application_group: Option<String>,
}

impl HookScript {
    /// Parses the raw arguments of a hook script directive.
    pub fn parse(kind: HookKind, args: &str) -> Result<Self, String> {
        let d = kind.directive();
        let words = split_words(args);
        let [script, options @ ..] = words.as_slice() else {
            return Err(format!("{d}: expected a script file"));
        };
        if script.is_empty() {
            return Err(format!("{d}: the script must not be empty"));
        }
        let mut h = HookScript {
            kind,
            script: script.clone(),
            process_group: None,
            application_group: None,
        };
        for word in options {
            let (option, value) = split_option(d, word)?;
            if value.is_empty() {
                return Err(format!("{d} {script}: {option}= needs a value"));
            }
            match option {
                "process-group" => h.process_group = Some(value.to_string()),
                "application-group" => h.application_group = Some(value.to_string()),
                o => {
                    return Err(format!(
                        "{d} {script}: unknown option '{o}' (expected application-group= or \
                         process-group=)"
                    ))
                }
            }
        }
        Ok(h)
    }
}

/// The hook scripts in force for a directory (each merged separately).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HookScripts {
    /// `WSGIAccessScript`.
    pub access: Option<HookScript>,
    /// `WSGIAuthUserScript`.
    pub auth_user: Option<HookScript>,
    /// `WSGIAuthGroupScript`.
    pub auth_group: Option<HookScript>,
    /// `WSGIDispatchScript`.
    pub dispatch: Option<HookScript>,
    /// `WSGIGroupAuthoritative`: read, and without effect under httpd 2.4, whose `Require`
    /// sections decide how authorization providers combine (as under mod_wsgi 6).
    pub group_authoritative: Option<bool>,
}

impl HookScripts {
    /// Sets the script of `h`'s kind.
    pub fn set(&mut self, h: HookScript) {
        let slot = match h.kind {
            HookKind::Access => &mut self.access,
            HookKind::AuthUser => &mut self.auth_user,
            HookKind::AuthGroup => &mut self.auth_group,
            HookKind::Dispatch => &mut self.dispatch,
        };
        *slot = Some(h);
    }

    /// `child` over `base`, each script on its own.
    pub fn merge(base: &HookScripts, child: &HookScripts) -> HookScripts {
        let pick = |c: &Option<HookScript>, b: &Option<HookScript>| c.clone().or_else(|| b.clone());
        HookScripts {
            access: pick(&child.access, &base.access),
            auth_user: pick(&child.auth_user, &base.auth_user),
            auth_group: pick(&child.auth_group, &base.auth_group),
            dispatch: pick(&child.dispatch, &base.dispatch),
            group_authoritative: child.group_authoritative.or(base.group_authoritative),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mod_wsgi_forms_and_the_process_group_option() {
        let h = HookScript::parse(HookKind::AuthUser, "/srv/auth.wsgi").unwrap();
        assert_eq!(h.script, "/srv/auth.wsgi");
        assert_eq!((h.process_group, h.application_group), (None, None));
        let h = HookScript::parse(
            HookKind::AuthGroup,
            "'/srv/my auth.wsgi' application-group=%{GLOBAL} process-group=django",
        )
        .unwrap();
        assert_eq!(h.script, "/srv/my auth.wsgi");
        assert_eq!(h.application_group.as_deref(), Some("%{GLOBAL}"));
        assert_eq!(h.process_group.as_deref(), Some("django"));
        for bad in [
            "",
            "/a.wsgi process-group=",
            "/a.wsgi callable-object=x",
            "/a.wsgi junk",
        ] {
            assert!(HookScript::parse(HookKind::Access, bad).is_err(), "{bad}");
        }
        let e = HookScript::parse(HookKind::Dispatch, "/a.wsgi user=x").unwrap_err();
        assert!(e.starts_with("WSGIDispatchScript"), "{e}");
    }

    #[test]
    fn each_script_merges_on_its_own() {
        let mut base = HookScripts::default();
        base.set(HookScript::parse(HookKind::AuthUser, "/base-user.wsgi").unwrap());
        base.set(HookScript::parse(HookKind::Access, "/base-access.wsgi").unwrap());
        let mut child = HookScripts::default();
        child.set(HookScript::parse(HookKind::AuthUser, "/child-user.wsgi").unwrap());
        child.group_authoritative = Some(false);
        let m = HookScripts::merge(&base, &child);
        assert_eq!(m.auth_user.unwrap().script, "/child-user.wsgi");
        assert_eq!(m.access.unwrap().script, "/base-access.wsgi");
        assert_eq!(m.auth_group, None);
        assert_eq!(m.group_authoritative, Some(false));
    }
}
