//! `WSGIScriptAlias URL-PATH FILE [option=value]...` and URL matching.

use super::words::{split_option, split_words};

const DIRECTIVE: &str = "WSGIScriptAlias";

/// One `WSGIScriptAlias` mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptAlias {
    /// The URL path it is mounted at, as written.
    pub url: String,
    /// The WSGI script file (absolute once resolved against ServerRoot).
    pub script: String,
    /// `process-group=`: the daemon group that serves it.
    pub process_group: Option<String>,
    /// `application-group=`: passed to the application as `mod_wsgi.application_group`.
    pub application_group: Option<String>,
    /// `callable-object=`: the name of the WSGI callable in the script.
    pub callable: Option<String>,
    /// The target is a directory of scripts (written with a trailing `/`, or found to be one
    /// when the configuration is read): each file in it is its own application.
    pub directory: bool,
    /// `WSGIScriptAliasMatch`: `url` is a regular expression and `script` a template of
    /// `$N` captures; this is the expression compiled by the FFI side (`httpd::regex`), 0 for
    /// a literal `WSGIScriptAlias`.
    pub regex: usize,
}

/// Where a request under a directory mount goes (see [`ScriptAlias::in_directory`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryTarget {
    /// The file's name within the directory (the first segment of the path info).
    pub file: Vec<u8>,
    /// `SCRIPT_NAME`: the mount's part and the file's segment.
    pub script_name: Vec<u8>,
    /// `PATH_INFO`: what follows the file's segment.
    pub path_info: Vec<u8>,
}

impl ScriptAlias {
    /// Parses the raw arguments of a `WSGIScriptAlias` line.
    pub fn parse(args: &str) -> Result<Self, String> {
        Self::parse_as(DIRECTIVE, args)
    }

    /// Parses a `WSGIScriptAliasMatch REGEX FILE [option=value]...` line (`regex` is left for
    /// the caller to compile).
    pub fn parse_match(args: &str) -> Result<Self, String> {
        Self::parse_as("WSGIScriptAliasMatch", args)
    }

    /// The static directory part of a `WSGIScriptAliasMatch` target: what precedes its first
    /// substitution, up to the last `/` (its scripts lie under it).
    pub fn template_directory(&self) -> &str {
        let fixed = self
            .script
            .find(['$', '&'])
            .map_or(self.script.as_str(), |i| &self.script[..i]);
        match fixed.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &fixed[..i],
        }
    }

    /// Whether this is a `WSGIScriptAliasMatch` whose target substitutes captures.
    pub fn is_template(&self) -> bool {
        self.regex != 0 && self.script.contains(['$', '&'])
    }

    fn parse_as(directive: &str, args: &str) -> Result<Self, String> {
        let words = split_words(args);
        let [url, script, options @ ..] = words.as_slice() else {
            return Err(format!(
                "{directive}: expected a URL path and a script file"
            ));
        };
        if directive == DIRECTIVE && !url.starts_with('/') {
            return Err(format!("{directive}: URL path '{url}' must start with '/'"));
        }
        let mut alias = ScriptAlias {
            url: url.clone(),
            script: script.clone(),
            process_group: None,
            application_group: None,
            callable: None,
            directory: script.ends_with('/'),
            regex: 0,
        };
        for word in options {
            let (option, value) = split_option(DIRECTIVE, word)?;
            if value.is_empty() {
                return Err(format!("{directive} {url}: {option}= needs a value"));
            }
            match option {
                "process-group" => alias.process_group = Some(value.to_string()),
                "application-group" => alias.application_group = Some(value.to_string()),
                "callable-object" => alias.callable = Some(value.to_string()),
                o => return Err(format!("{directive} {url}: unknown option '{o}'")),
            }
        }
        Ok(alias)
    }

    /// Matches a request URI against this mount the way mod_alias does (runs of `/` in the
    /// URI match one `/` in the alias; the match must end at a path segment boundary) and
    /// splits it into `(SCRIPT_NAME, PATH_INFO)`. SCRIPT_NAME never ends in `/`, so it is
    /// `""` for a mount at the root. The URI is bytes: Apache has percent-decoded it, and
    /// what it decodes to need not be UTF-8 (`/caf%E9`); PEP 3333 passes such bytes as latin-1.
    pub fn split<'u>(&self, uri: &'u [u8]) -> Option<(&'u [u8], &'u [u8])> {
        let (a, u) = (self.url.as_bytes(), uri);
        let (mut i, mut j) = (0, 0);
        while i < a.len() {
            if a[i] == b'/' {
                if u.get(j) != Some(&b'/') {
                    return None;
                }
                while a.get(i) == Some(&b'/') {
                    i += 1;
                }
                while u.get(j) == Some(&b'/') {
                    j += 1;
                }
            } else {
                if u.get(j) != Some(&a[i]) {
                    return None;
                }
                i += 1;
                j += 1;
            }
        }
        if a.last() != Some(&b'/') && j < u.len() && u[j] != b'/' {
            return None;
        }
        while j > 0 && u[j - 1] == b'/' {
            j -= 1;
        }
        Some(uri.split_at(j))
    }

    /// For a directory mount, the file a request's `(SCRIPT_NAME, PATH_INFO)` split names, as
    /// mod_wsgi maps it: the first segment of the path info is the script's file name, the
    /// rest its `PATH_INFO`. `None` when the path info names no file (the directory itself),
    /// or names `.`/`..`.
    pub fn in_directory(&self, script_name: &[u8], path_info: &[u8]) -> Option<DirectoryTarget> {
        let start = path_info.iter().position(|&b| b != b'/')?;
        let rest = &path_info[start..];
        let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
        let file = &rest[..end];
        if file == b"." || file == b".." {
            return None;
        }
        let mut name = script_name.to_vec();
        name.extend_from_slice(&path_info[..start + end]);
        Some(DirectoryTarget {
            file: file.to_vec(),
            script_name: name,
            path_info: rest[end..].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(url: &str) -> ScriptAlias {
        ScriptAlias::parse(&format!("{url} /srv/wsgi.py")).unwrap()
    }

    /// `split` of a UTF-8 URI, as text.
    fn split<'u>(a: &ScriptAlias, uri: &'u str) -> Option<(&'u str, &'u str)> {
        let text = |b| std::str::from_utf8(b).unwrap();
        a.split(uri.as_bytes()).map(|(s, p)| (text(s), text(p)))
    }

    #[test]
    fn root_mount() {
        let a = alias("/");
        assert_eq!(split(&a, "/"), Some(("", "/")));
        assert_eq!(split(&a, "/x/y"), Some(("", "/x/y")));
    }

    #[test]
    fn sub_mount() {
        let a = alias("/sub");
        assert_eq!(split(&a, "/sub"), Some(("/sub", "")));
        assert_eq!(split(&a, "/sub/a/b"), Some(("/sub", "/a/b")));
        assert_eq!(split(&a, "//sub//a"), Some(("//sub", "//a")));
        assert_eq!(split(&a, "/subway"), None);
        assert_eq!(split(&a, "/other"), None);
        let a = alias("/sub/");
        assert_eq!(split(&a, "/sub/a"), Some(("/sub", "/a")));
        assert_eq!(split(&a, "/sub"), None);
    }

    #[test]
    fn uri_bytes_need_not_be_utf8() {
        let a = alias("/sub");
        assert_eq!(
            a.split(b"/sub/caf\xe9"),
            Some((&b"/sub"[..], &b"/caf\xe9"[..]))
        );
        assert_eq!(a.split(b"/sub\xe9"), None);
        assert_eq!(
            alias("/").split(b"/\xff/x"),
            Some((&b""[..], &b"/\xff/x"[..]))
        );
    }

    #[test]
    fn a_directory_mount_maps_its_first_segment_to_a_file() {
        let a = ScriptAlias::parse("/wsgi/ /srv/scripts/").unwrap();
        assert!(a.directory);
        let (sn, pi) = a.split(b"/wsgi/a.wsgi/x/y").unwrap();
        let t = a.in_directory(sn, pi).unwrap();
        assert_eq!(t.file, b"a.wsgi");
        assert_eq!(t.script_name, b"/wsgi/a.wsgi");
        assert_eq!(t.path_info, b"/x/y");
        let (sn, pi) = a.split(b"/wsgi/b.wsgi").unwrap();
        let t = a.in_directory(sn, pi).unwrap();
        assert_eq!(
            (t.script_name.as_slice(), t.path_info.as_slice()),
            (&b"/wsgi/b.wsgi"[..], &b""[..])
        );
        let (sn, pi) = a.split(b"/wsgi/").unwrap();
        assert_eq!(a.in_directory(sn, pi), None, "the directory itself");
        assert_eq!(a.in_directory(b"/wsgi", b"/../etc"), None);
        assert!(!ScriptAlias::parse("/x /srv/a.py").unwrap().directory);
    }

    #[test]
    fn match_targets_name_their_directory() {
        let a = match_case("^/app/([^/]+) /srv/apps/$1/wsgi.py");
        assert!(a.is_template());
        assert_eq!(a.template_directory(), "/srv/apps");
        let b = match_case("^/x /srv/one.wsgi");
        assert!(!b.is_template());
        assert_eq!(match_case("^/(.*) $1").template_directory(), "/");
    }

    /// A `WSGIScriptAliasMatch` as parsed, with a stand-in for the FFI side's compiled
    /// expression.
    fn match_case(args: &str) -> ScriptAlias {
        ScriptAlias {
            regex: 1,
            ..ScriptAlias::parse_match(args).unwrap()
        }
    }

    #[test]
    fn options_and_errors() {
        let a = ScriptAlias::parse("/x '/srv/a b.py' process-group=g application-group=%{GLOBAL}")
            .unwrap();
        assert_eq!(a.script, "/srv/a b.py");
        assert_eq!(a.process_group.as_deref(), Some("g"));
        assert!(ScriptAlias::parse("/x")
            .unwrap_err()
            .contains("WSGIScriptAlias"));
        assert!(ScriptAlias::parse("x /a.py").is_err());
        assert!(ScriptAlias::parse("/x /a.py bogus=1")
            .unwrap_err()
            .contains("bogus"));
        assert!(ScriptAlias::parse("/x /a.py process-group=").is_err());
    }
}
