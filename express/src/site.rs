//! Serving a site, not only an application: the document root's static files, URL aliases,
//! error documents, MIME types, compression, rewrite rules and CGI scripts, under
//! mod_wsgi-express's option names and defaults. [`SiteOptions`] is the option table (the
//! command line flattens it); [`SiteOptions::resolve`] checks it and [`render`] writes its
//! directives.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::config::{absolute, ServerConfig};
use crate::render::{conf_path, conf_word};

/// The content types `--compress-responses` compresses (mod_wsgi-express's list).
pub const COMPRESSED_TYPES: &[&str] = &[
    "text/plain",
    "text/html",
    "text/xml",
    "text/css",
    "text/javascript",
    "application/xhtml+xml",
    "application/javascript",
    "application/json",
];

/// The site-serving options of `express start-server`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct SiteOptions {
    /// Access control: host access, user and group scripts.
    #[command(flatten)]
    pub auth: crate::auth::AuthOptions,
    /// Directory of static files: a file there is served by Apache, every other URL goes to the application [default: <root>/htdocs].
    #[arg(long, value_name = "DIR")]
    // The doc comment is the --help text, shown as written (not markdown).
    #[allow(rustdoc::invalid_html_tags)]
    pub document_root: Option<PathBuf>,
    /// Index file of a document-root directory; directories are then served by Apache, not the application.
    #[arg(long, value_name = "FILE-NAME")]
    pub directory_index: Option<String>,
    /// List a document-root directory that has no index file (directories are then Apache's).
    #[arg(long)]
    pub directory_listing: bool,
    /// Directive types .htaccess files in the document root may override (repeatable) [default: None].
    #[arg(long, value_name = "DIRECTIVE-TYPE")]
    pub allow_override: Vec<String>,
    /// Serve a static file or directory at a URL path (repeatable).
    #[arg(long, num_args = 2, value_names = ["URL-PATH", "PATH"])]
    pub url_alias: Vec<String>,
    /// The URL (or text) Apache answers with for an error status it generates (repeatable).
    #[arg(long, num_args = 2, value_names = ["STATUS", "URL-PATH"])]
    pub error_document: Vec<String>,
    /// Answer an error status from the application (400-599) with Apache's error document (WSGIErrorOverride).
    #[arg(long)]
    pub error_override: bool,
    /// The MIME types file [default: /etc/mime.types].
    #[arg(long, value_name = "FILE")]
    pub mime_types: Option<PathBuf>,
    /// Pass a HEAD request to the application as GET: Off, On, or Auto (when an output filter may need the whole body).
    #[arg(long, value_name = "OFF|ON|AUTO", default_value = "Auto")]
    pub map_head_to_get: String,
    /// Compress text responses (HTML, CSS, JavaScript, JSON, XML, plain text) with mod_deflate.
    #[arg(long)]
    pub compress_responses: bool,
    /// Apache rewrite rules to apply before the document root and the application (server context).
    #[arg(long, value_name = "FILE")]
    pub rewrite_rules: Option<PathBuf>,
    /// Serve the files with this extension (.md) with a script's handle_request (or application), given the file as SCRIPT_FILENAME (repeatable).
    #[arg(long, num_args = 2, value_names = ["EXTENSION", "SCRIPT-PATH"])]
    pub add_handler: Vec<String>,
    /// Run executable .cgi files in the document root as CGI scripts (mod_cgid).
    #[arg(long)]
    pub with_cgi: bool,
    /// Whether the document root was given (set by [`SiteOptions::resolve`]): only then are
    /// its files looked for ahead of the application, so a plain `express start-server
    /// wsgi.py` serves every URL from the application without a `stat` per request.
    #[arg(skip)]
    pub serves_document_root: bool,
}

impl Default for SiteOptions {
    fn default() -> Self {
        crate::options::clap_defaults()
    }
}

/// One `--url-alias`: a URL path and the file or directory it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlAlias {
    /// The URL path (`/static`).
    pub url: String,
    /// The absolute file or directory.
    pub target: PathBuf,
}

impl SiteOptions {
    /// The `--url-alias` pairs.
    pub fn url_aliases(&self) -> Vec<UrlAlias> {
        self.url_alias
            .chunks_exact(2)
            .map(|p| UrlAlias {
                url: p[0].clone(),
                target: PathBuf::from(&p[1]),
            })
            .collect()
    }

    /// The `--error-document` pairs.
    fn error_documents(&self) -> impl Iterator<Item = (&str, &str)> {
        self.error_document
            .chunks_exact(2)
            .map(|p| (p[0].as_str(), p[1].as_str()))
    }

    /// `AllowOverride`'s argument: the `--allow-override` types, else `None`.
    fn allow_override_word(&self) -> String {
        match self.allow_override.is_empty() {
            true => "None".to_owned(),
            false => self.allow_override.join(" "),
        }
    }

    /// Whether the document root's files are served ahead of the application.
    fn serves_files(&self) -> bool {
        self.serves_document_root
    }

    /// Whether directories of the document root are Apache's (index or listing).
    fn serves_directories(&self) -> bool {
        self.directory_index.is_some() || self.directory_listing
    }

    /// Checks the options and makes every path absolute; `default_root` is the document root
    /// when none is given. Every file named must exist (the rewrite rules, the MIME types).
    pub fn resolve(&self, default_root: &Path) -> Result<SiteOptions> {
        let mut out = self.clone();
        out.auth = self.auth.resolve()?;
        out.serves_document_root = self.document_root.is_some()
            || self.directory_index.is_some()
            || self.directory_listing;
        out.document_root = Some(match &self.document_root {
            Some(dir) => {
                let dir = absolute(dir)?;
                if !dir.is_dir() {
                    bail!("--document-root {}: not a directory", dir.display());
                }
                dir
            }
            None => default_root.to_path_buf(),
        });
        if let Some(index) = &self.directory_index {
            if index.is_empty() || index.contains('/') {
                bail!("--directory-index {index:?}: a file name, without a directory");
            }
        }
        let mut aliases = Vec::new();
        for alias in self.url_aliases() {
            if !alias.url.starts_with('/') {
                bail!(
                    "--url-alias {} {}: the URL path must start with /",
                    alias.url,
                    alias.target.display()
                );
            }
            let target = absolute(&alias.target)?;
            if !target.exists() {
                bail!(
                    "--url-alias {} {}: no such file or directory",
                    alias.url,
                    target.display()
                );
            }
            aliases.extend([alias.url, path_string(&target)?]);
        }
        out.url_alias = aliases;
        for (status, document) in self.error_documents() {
            match status.parse::<u16>() {
                Ok(400..=599) => {}
                _ => bail!("--error-document {status} {document}: the status must be 400 to 599"),
            }
        }
        out.map_head_to_get = match self.map_head_to_get.to_ascii_lowercase().as_str() {
            "off" => "Off",
            "on" => "On",
            "auto" => "Auto",
            _ => bail!(
                "--map-head-to-get {}: Off, On or Auto",
                self.map_head_to_get
            ),
        }
        .to_owned();
        out.mime_types = match &self.mime_types {
            Some(file) => Some(existing_file(file, "--mime-types")?),
            None => Some(PathBuf::from("/etc/mime.types")).filter(|p| p.is_file()),
        };
        let mut handlers = Vec::new();
        for pair in self.add_handler.chunks_exact(2) {
            let (ext, script) = (&pair[0], Path::new(&pair[1]));
            let plain = ext.len() > 1
                && ext[1..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ext.starts_with('.') || !plain {
                bail!("--add-handler {ext}: an extension such as .md");
            }
            let script = existing_file(script, &format!("--add-handler {ext}"))?;
            handlers.extend([ext.clone(), path_string(&script)?]);
        }
        out.add_handler = handlers;
        out.rewrite_rules = self
            .rewrite_rules
            .as_deref()
            .map(|f| existing_file(f, "--rewrite-rules"))
            .transpose()?;
        Ok(out)
    }

    /// The document root (after [`SiteOptions::resolve`]).
    pub fn document_root(&self) -> &Path {
        self.document_root.as_deref().unwrap_or(Path::new("/"))
    }
}

/// One `--add-handler`: the extension, the user's script, and the handler script express
/// writes into the server root to load it (`<root>/resource-N.wsgi`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceHandler {
    /// The Apache handler name (`wsgi-resource-N`).
    pub name: String,
    /// `.md`.
    pub extension: String,
    /// The user's script.
    pub script: PathBuf,
    /// The generated handler script.
    pub wrapper: PathBuf,
}

impl ResourceHandler {
    /// The generated handler script's source: mod_wsgi-express's resource handler, which
    /// serves with the script's `handle_request`, else its `application`.
    pub fn wrapper_source(&self) -> String {
        let module = format!("__wsgi_resource_{}__", &self.extension[1..]);
        format!(
            "# Generated by rswsgi express for --add-handler {ext} {script}:\n\
             # serves those files with its handle_request (else its application).\n\
             import importlib.machinery, importlib.util, sys\n\n\
             _loader = importlib.machinery.SourceFileLoader({module:?}, {script:?})\n\
             _module = importlib.util.module_from_spec(importlib.util.spec_from_loader({module:?}, _loader))\n\
             sys.modules[{module:?}] = _module\n\
             _loader.exec_module(_module)\n\
             handle_request = getattr(_module, 'handle_request', None) or _module.application\n",
            ext = self.extension,
            script = self.script.display().to_string(),
        )
    }
}

/// The `--add-handler`s of a resolved configuration.
pub fn resource_handlers(c: &ServerConfig) -> Vec<ResourceHandler> {
    c.site
        .add_handler
        .chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| ResourceHandler {
            name: format!("wsgi-resource-{}", i + 1),
            extension: pair[0].clone(),
            script: PathBuf::from(&pair[1]),
            wrapper: c.server_root.join(format!("resource-{}.wsgi", i + 1)),
        })
        .collect()
}

/// `file` made absolute; it must be a regular file.
pub fn existing_file(file: &Path, option: &str) -> Result<PathBuf> {
    let path = absolute(file)?;
    if !path.is_file() {
        bail!("{option} {}: no such file", path.display());
    }
    Ok(path)
}

/// A word for mod_rewrite's own parser (`parseargline`): backslashes stay as they are and a
/// quote cannot be escaped, so a word with blanks goes in double quotes and one with a double
/// quote is refused.
fn rewrite_word(word: &str) -> Result<String> {
    if word.contains(['"', '\n', '\r', '\0']) {
        bail!("{word:?}: a double quote or line break cannot go into a rewrite rule");
    }
    Ok(match word.contains(char::is_whitespace) {
        true => format!("\"{word}\""),
        false => word.to_owned(),
    })
}

fn path_string(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{}: path is not UTF-8", path.display()))
}

/// `text` with the characters mod_rewrite gives a meaning (`$` and `%` references, regex
/// metacharacters when `regex`) escaped with a backslash.
pub(crate) fn rewrite_escape(text: &str, regex: bool) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        let special = matches!(c, '$' | '%' | '\\') || (regex && ".^*+?()[]{}|".contains(c));
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The server-level directives of the site: modules it needs, MIME types, the document
/// root with its fallback to the application, aliases, error documents, compression.
pub fn render(c: &ServerConfig) -> Result<String> {
    let s = &c.site;
    let mut out = String::new();
    if s.directory_listing {
        out.push_str(&load_module(c, "autoindex")?);
    }
    if s.with_cgi {
        let cgid = c.modules_dir.join("mod_cgid.so").exists();
        out.push_str(&load_module(c, if cgid { "cgid" } else { "cgi" })?);
        out.push_str("AddHandler cgi-script .cgi\n");
    }
    for h in resource_handlers(c) {
        writeln!(
            out,
            "WSGIHandlerScript {} {} process-group={}\nAddHandler {} {}",
            h.name,
            conf_path(&h.wrapper)?,
            conf_word(&c.process_group())?,
            h.name,
            h.extension
        )?;
    }
    if let Some(types) = &s.mime_types {
        writeln!(out, "TypesConfig {}", conf_path(types)?)?;
    }
    writeln!(out, "WSGIMapHEADToGET {}", s.map_head_to_get)?;
    if s.error_override {
        out.push_str("WSGIErrorOverride On\n");
    }
    render_document_root(c, &mut out)?;
    render_aliases(s, &mut out)?;
    for (status, document) in s.error_documents() {
        writeln!(out, "ErrorDocument {status} {}", conf_word(document)?)?;
    }
    if s.compress_responses {
        for t in COMPRESSED_TYPES {
            writeln!(out, "AddOutputFilterByType DEFLATE {t}")?;
        }
    }
    out.push_str(&crate::auth::render(c)?);
    Ok(out)
}

/// A guarded `LoadModule` for Apache's module `name`.
pub fn load_module(c: &ServerConfig, name: &str) -> Result<String> {
    Ok(format!(
        "<IfModule !{name}_module>\n  LoadModule {name}_module {}\n</IfModule>\n",
        conf_path(&c.modules_dir.join(format!("mod_{name}.so")))?
    ))
}

/// `DocumentRoot`, its `<Directory>`, and the rewrite rules that give Apache every URL naming
/// a file there (and a directory, with an index or listing); the rest falls through to the
/// `WSGIScriptAlias`. The rules run in server context, before any alias (mod_rewrite's
/// translate hook runs first), and virtual hosts inherit them.
fn render_document_root(c: &ServerConfig, out: &mut String) -> Result<()> {
    let s = &c.site;
    let root = s.document_root();
    let word = conf_path(root)?;
    let override_ = s.allow_override_word();
    writeln!(out, "DocumentRoot {word}\nAccessFileName .htaccess")?;
    writeln!(out, "<Directory {word}>\n  AllowOverride {override_}")?;
    if let Some(index) = &s.directory_index {
        writeln!(out, "  DirectoryIndex {}", conf_word(index)?)?;
    }
    if s.directory_listing {
        out.push_str("  Options +Indexes\n");
        if s.directory_index.is_none() {
            out.push_str("  DirectoryIndex disabled\n");
        }
    }
    if s.with_cgi {
        out.push_str("  Options +ExecCGI\n");
    }
    out.push_str("  Require all granted\n</Directory>\n");
    if s.serves_files() || s.rewrite_rules.is_some() {
        out.push_str("RewriteEngine On\nRewriteOptions InheritDown\n");
    }
    if let Some(rules) = &s.rewrite_rules {
        writeln!(out, "Include {}", conf_path(rules)?)?;
    }
    if s.serves_files() {
        let mut excluded: Vec<String> = s.url_aliases().into_iter().map(|a| a.url).collect();
        excluded.extend(c.proxy.mount_points().into_iter().map(|(path, _)| path));
        out.push_str(&fallback_rules(s, root, &excluded)?);
    }
    Ok(())
}

/// The rules that hand a URL naming a file of the document root (or a directory, with an
/// index or listing) to Apache; every other URL falls through to the `WSGIScriptAlias`.
/// `excluded` are the URL paths that are not the document root's (aliases, proxies).
fn fallback_rules(s: &SiteOptions, root: &Path, excluded: &[String]) -> Result<String> {
    let mut out = String::new();
    let file = rewrite_word(&format!(
        "{}%{{REQUEST_URI}}",
        rewrite_escape(root.to_str().unwrap_or("/"), false)
    ))?;
    if let Some(index) = &s.directory_index {
        // mod_dir looks the index up with a subrequest; a missing one must not be taken for
        // the application's (the script is a regular file), or a directory without an index
        // would be handed to the application instead of refused (or listed).
        writeln!(
            out,
            "RewriteCond %{{IS_SUBREQ}} true\nRewriteCond %{{REQUEST_URI}} {}\n\
             RewriteCond {file} !-f\nRewriteRule ^ {file} [L]",
            rewrite_word(&format!("/{}$", rewrite_escape(index, true)))?
        )?;
    }
    // A decoded `?` would end the substitution's path; such a URL is the application's.
    out.push_str("RewriteCond %{REQUEST_URI} !\\?\n");
    for url in excluded {
        let url = url.trim_end_matches('/');
        writeln!(
            out,
            "RewriteCond %{{REQUEST_URI}} {}",
            rewrite_word(&format!("!^{}(/|$)", rewrite_escape(url, true)))?
        )?;
    }
    if s.serves_directories() {
        writeln!(out, "RewriteCond {file} -f [OR]\nRewriteCond {file} -d")?;
    } else {
        writeln!(out, "RewriteCond {file} -f")?;
    }
    writeln!(out, "RewriteRule ^ {file} [L]")?;
    Ok(out)
}

/// `Alias` and `<Directory>` (or `<Files>`) for each `--url-alias`, longest URL first (as
/// mod_wsgi-express sorts them, so `/static/img` wins over `/static`).
fn render_aliases(s: &SiteOptions, out: &mut String) -> Result<()> {
    let mut aliases = s.url_aliases();
    aliases.sort_by(|a, b| b.url.cmp(&a.url));
    for alias in aliases {
        let target = &alias.target;
        writeln!(
            out,
            "Alias {} {}",
            conf_word(&alias.url)?,
            conf_path(target)?
        )?;
        if target.is_dir() {
            let override_ = s.allow_override_word();
            writeln!(
                out,
                "<Directory {}>\n  AllowOverride {override_}\n  Require all granted\n</Directory>",
                conf_path(target)?
            )?;
        } else {
            let dir = target.parent().unwrap_or(Path::new("/"));
            let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("");
            writeln!(
                out,
                "<Directory {}>\n  <Files {}>\n    Require all granted\n  </Files>\n</Directory>",
                conf_path(dir)?,
                conf_word(name)?
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_for_mod_rewrite() {
        assert_eq!(rewrite_escape("/srv/50%$x", false), "/srv/50\\%\\$x");
        assert_eq!(rewrite_escape("/a.b+(c)", true), "/a\\.b\\+\\(c\\)");
        assert_eq!(rewrite_word("/my site/x").unwrap(), "\"/my site/x\"");
        assert!(rewrite_word("/a\"b").is_err());
    }

    #[test]
    fn defaults_follow_mod_wsgi_express() {
        let s = SiteOptions::default();
        assert_eq!(s.map_head_to_get, "Auto");
        assert!(s.document_root.is_none() && !s.compress_responses && !s.with_cgi);
    }

    #[test]
    fn bad_values_are_refused_in_one_line() {
        let root = std::env::temp_dir();
        let bad = |f: fn(&mut SiteOptions)| {
            let mut s = SiteOptions::default();
            f(&mut s);
            s.resolve(&root).unwrap_err().to_string()
        };
        assert!(bad(|s| s.map_head_to_get = "maybe".into()).contains("Off, On or Auto"));
        assert!(bad(|s| s.error_document = vec!["200".into(), "/x".into()]).contains("400 to 599"));
        assert!(bad(|s| s.url_alias = vec!["static".into(), "/".into()]).contains("start with /"));
        assert!(bad(|s| s.url_alias = vec!["/s".into(), "/no/such".into()]).contains("no such"));
        assert!(bad(|s| s.document_root = Some("/no/such/dir".into())).contains("not a directory"));
        assert!(bad(|s| s.mime_types = Some("/no/such.types".into())).contains("--mime-types"));
    }
}
