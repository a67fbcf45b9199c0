//! Access control for the whole site, as mod_wsgi-express 6 writes it: `--host-access-script`
//! (`WSGIAccessScript`), `--auth-user-script` with `--auth-type` (`WSGIAuthUserScript`, the
//! `wsgi` auth provider) and `--auth-group-script` with `--auth-group`
//! (`WSGIAuthGroupScript`, `Require wsgi-group`). The scripts run in the site's daemon
//! group, never inside Apache.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::config::{absolute, ServerConfig};
use crate::render::{conf_path, conf_word};
use crate::site::load_module;

/// The authentication scheme `--auth-type` names.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthType {
    /// HTTP Basic: the script's `check_password(environ, user, password)`.
    #[default]
    #[value(name = "Basic", alias = "basic")]
    Basic,
    /// HTTP Digest: the script's `get_realm_hash(environ, user, realm)`.
    #[value(name = "Digest", alias = "digest")]
    Digest,
}

impl AuthType {
    fn word(self) -> &'static str {
        match self {
            AuthType::Basic => "Basic",
            AuthType::Digest => "Digest",
        }
    }
}

/// The access-control options of `express start-server`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct AuthOptions {
    /// Python script whose allow_access(environ, host) decides which clients may use the site.
    #[arg(long, value_name = "SCRIPT-PATH")]
    pub host_access_script: Option<PathBuf>,
    /// Python script that authenticates users: check_password(environ, user, password) for Basic, get_realm_hash(environ, user, realm) for Digest.
    #[arg(long, value_name = "SCRIPT-PATH")]
    pub auth_user_script: Option<PathBuf>,
    /// The authentication scheme of --auth-user-script.
    #[arg(long, value_name = "TYPE", default_value = "Basic")]
    pub auth_type: AuthType,
    /// Python script whose groups_for_user(environ, user) gives a user's groups (with --auth-user-script).
    #[arg(long, value_name = "SCRIPT-PATH")]
    pub auth_group_script: Option<PathBuf>,
    /// The group a user must be in, with --auth-group-script.
    #[arg(long, value_name = "NAME", default_value = "wsgi")]
    pub auth_group: String,
}

impl Default for AuthOptions {
    fn default() -> Self {
        crate::options::clap_defaults()
    }
}

impl AuthOptions {
    /// Checks the options and makes the scripts' paths absolute; each script must exist.
    pub fn resolve(&self) -> Result<AuthOptions> {
        let mut out = self.clone();
        let scripts = [
            ("--host-access-script", &mut out.host_access_script),
            ("--auth-user-script", &mut out.auth_user_script),
            ("--auth-group-script", &mut out.auth_group_script),
        ];
        for (option, script) in scripts {
            if let Some(path) = script.as_mut() {
                let abs = absolute(path)?;
                if !abs.is_file() {
                    bail!("{option} {}: no such file", abs.display());
                }
                *path = abs;
            }
        }
        if out.auth_group_script.is_some() && out.auth_user_script.is_none() {
            bail!("--auth-group-script checks the groups of an authenticated user: it needs --auth-user-script");
        }
        if out.auth_group.is_empty() {
            bail!("--auth-group: a group name");
        }
        Ok(out)
    }
}

/// The `<Location />` sections of the access and auth scripts (server level).
pub fn render(c: &ServerConfig) -> Result<String> {
    let a = &c.site.auth;
    let group = conf_word(&c.process_group())?;
    let mut out = String::new();
    if let Some(script) = &a.host_access_script {
        writeln!(
            out,
            "<Location />\n  WSGIAccessScript {} process-group={group}\n</Location>",
            conf_path(script)?
        )?;
    }
    let Some(user_script) = &a.auth_user_script else {
        return Ok(out);
    };
    let kind = a.auth_type.word();
    if a.auth_type == AuthType::Digest {
        out.push_str(&load_module(c, "auth_digest")?);
    }
    writeln!(out, "<Location />\n  AuthType {kind}")?;
    writeln!(
        out,
        "  AuthName {}",
        conf_word(&format!("{}:{}", c.host, c.port))?
    )?;
    writeln!(out, "  Auth{kind}Provider wsgi")?;
    writeln!(
        out,
        "  WSGIAuthUserScript {} process-group={group}",
        conf_path(user_script)?
    )?;
    if let Some(group_script) = &a.auth_group_script {
        writeln!(
            out,
            "  WSGIAuthGroupScript {} process-group={group}",
            conf_path(group_script)?
        )?;
    }
    out.push_str("  <RequireAll>\n    Require valid-user\n");
    if a.auth_group_script.is_some() {
        writeln!(out, "    Require wsgi-group {}", conf_word(&a.auth_group)?)?;
    }
    out.push_str("  </RequireAll>\n</Location>\n");
    Ok(out)
}
