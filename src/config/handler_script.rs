//! `WSGIHandlerScript NAME FILE [option=value]...`: a WSGI script that serves the requests
//! whose Apache handler is `NAME` (set with `AddHandler` or `SetHandler`). The request's own
//! file is `SCRIPT_FILENAME`; the script's callable is `handle_request`, as in mod_wsgi.

use super::words::{split_option, split_words};

const DIRECTIVE: &str = "WSGIHandlerScript";

/// The callable mod_wsgi calls in a handler script.
pub const HANDLER_CALLABLE: &str = "handle_request";

/// One `WSGIHandlerScript`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerScript {
    /// The Apache handler name it serves.
    pub name: String,
    /// The script (absolute once resolved against ServerRoot).
    pub script: String,
    /// `process-group=`: the daemon group that runs it.
    pub process_group: Option<String>,
    /// `application-group=`.
    pub application_group: Option<String>,
    /// `pass-authorization=On|Off`.
    pub pass_authorization: Option<bool>,
}

impl HandlerScript {
    /// Parses the raw arguments of a `WSGIHandlerScript` line.
    pub fn parse(args: &str) -> Result<Self, String> {
        let words = split_words(args);
        let [name, script, options @ ..] = words.as_slice() else {
            return Err(format!(
                "{DIRECTIVE}: expected a handler name and a script file"
            ));
        };
        if name.is_empty() || script.is_empty() {
            return Err(format!(
                "{DIRECTIVE}: the handler name and the script must not be empty"
            ));
        }
        let mut h = HandlerScript {
            name: name.clone(),
            script: script.clone(),
            process_group: None,
            application_group: None,
            pass_authorization: None,
        };
        for word in options {
            let (option, value) = split_option(DIRECTIVE, word)?;
            if value.is_empty() {
                return Err(format!("{DIRECTIVE} {name}: {option}= needs a value"));
            }
            match option {
                "process-group" => h.process_group = Some(value.to_string()),
                "application-group" => h.application_group = Some(value.to_string()),
                "pass-authorization" => {
                    h.pass_authorization = Some(match value.to_ascii_lowercase().as_str() {
                        "on" => true,
                        "off" => false,
                        _ => {
                            return Err(format!(
                                "{DIRECTIVE} {name}: pass-authorization={value}: On or Off"
                            ))
                        }
                    })
                }
                o => return Err(format!("{DIRECTIVE} {name}: unknown option '{o}'")),
            }
        }
        Ok(h)
    }
}

/// `WSGIImportScript FILE process-group=G [application-group=A]`: a script the group's
/// daemons load when they start (mod_wsgi requires both options; `application-group=` is
/// informational here, one interpreter per process). Returns (file, group, application group).
pub fn parse_import_script(args: &str) -> Result<(String, String, Option<String>), String> {
    const IMPORT: &str = "WSGIImportScript";
    let words = split_words(args);
    let [file, options @ ..] = words.as_slice() else {
        return Err(format!("{IMPORT}: expected a script file"));
    };
    let (mut group, mut app_group) = (None, None);
    for word in options {
        let (option, value) = split_option(IMPORT, word)?;
        if value.is_empty() {
            return Err(format!("{IMPORT} {file}: {option}= needs a value"));
        }
        match option {
            "process-group" => group = Some(value.to_string()),
            "application-group" => app_group = Some(value.to_string()),
            o => return Err(format!("{IMPORT} {file}: unknown option '{o}'")),
        }
    }
    let Some(group) = group else {
        return Err(format!(
            "{IMPORT} {file}: process-group=NAME is required (the daemon group to load it in)"
        ));
    };
    Ok((file.clone(), group, app_group))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_errors() {
        let h = HandlerScript::parse(
            "wsgi-resource /srv/r.wsgi process-group=site application-group=%{GLOBAL} \
             pass-authorization=On",
        )
        .unwrap();
        assert_eq!(
            (h.name.as_str(), h.script.as_str()),
            ("wsgi-resource", "/srv/r.wsgi")
        );
        assert_eq!(h.process_group.as_deref(), Some("site"));
        assert_eq!(h.application_group.as_deref(), Some("%{GLOBAL}"));
        assert_eq!(h.pass_authorization, Some(true));
        assert!(HandlerScript::parse("only-a-name").is_err());
        let e = HandlerScript::parse("h /s.wsgi callable-object=x").unwrap_err();
        assert!(e.contains("unknown option 'callable-object'"), "{e}");
        assert!(HandlerScript::parse("h /s.wsgi pass-authorization=maybe").is_err());
        assert!(HandlerScript::parse("h /s.wsgi process-group=").is_err());
        let (f, g, a) =
            parse_import_script("/srv/preload.py process-group=site application-group=%{GLOBAL}")
                .unwrap();
        assert_eq!(
            (f.as_str(), g.as_str(), a.as_deref()),
            ("/srv/preload.py", "site", Some("%{GLOBAL}"))
        );
        assert!(parse_import_script("/srv/p.py")
            .unwrap_err()
            .contains("process-group=NAME is required"));
        assert!(parse_import_script("/srv/p.py bogus=1").is_err());
    }
}
