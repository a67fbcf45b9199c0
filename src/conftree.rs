//! httpd's parsed configuration tree (`ap_conftree`), walked at `check_config` for what this
//! module's own directives cannot see: the lines of other modules that give files mod_wsgi's
//! handler (`AddHandler wsgi-script .wsgi`).

use crate::config::gives_wsgi_handler;
use crate::ffi;
use crate::httpd::cstr;

/// A `<VirtualHost>` section, as httpd names the server it defines (`defn_name`,
/// `defn_line_number`).
pub type VhostKey = (String, u32);

/// One line that gives files the `wsgi-script` handler.
pub struct HandlerLine {
    /// The `<VirtualHost>` it is in (`None`: the main server's part of the files).
    pub vhost: Option<VhostKey>,
    /// `DIRECTIVE ARGS (at FILE:LINE)`.
    pub text: String,
    /// The `<Directory /path>` it is in, if any (not a regex one).
    pub directory: Option<String>,
}

/// Every active line of the configuration files that gives files the `wsgi-script` handler.
pub fn wsgi_handler_lines() -> Vec<HandlerLine> {
    let mut out = Vec::new();
    // SAFETY: ap_conftree is the tree httpd built from the configuration files; it lives in
    // the configuration pool and does not change while the configuration is checked.
    walk(unsafe { ffi::ap_conftree }, None, None, &mut out);
    out
}

fn walk(
    mut node: *mut ffi::ap_directive_t,
    vhost: Option<&VhostKey>,
    directory: Option<&str>,
    out: &mut Vec<HandlerLine>,
) {
    while let Some(d) = {
        // SAFETY: NULL or a live node of the tree (see wsgi_handler_lines).
        unsafe { node.as_ref() }
    } {
        // SAFETY: the node's strings are NULL or NUL-terminated pool strings.
        let (name, args, file) = unsafe { (cstr(d.directive), cstr(d.args), cstr(d.filename)) };
        let (name, args, file) = (name.unwrap_or(""), args.unwrap_or(""), file.unwrap_or("?"));
        let line = u32::try_from(d.line_num).unwrap_or(0);
        if gives_wsgi_handler(name, args) {
            out.push(HandlerLine {
                vhost: vhost.cloned(),
                text: format!("{name} {args} (at {file}:{line})"),
                directory: directory.map(str::to_owned),
            });
        }
        if !d.first_child.is_null() {
            let here = name
                .eq_ignore_ascii_case("<VirtualHost")
                .then(|| (file.to_owned(), line));
            let section = args.trim_end_matches('>').trim().trim_matches('"');
            let dir = match name.eq_ignore_ascii_case("<Directory") {
                true if section.starts_with('/') => Some(section),
                // A regex or relative section: no one directory.
                true => None,
                false => directory,
            };
            walk(d.first_child, here.as_ref().or(vhost), dir, out);
        }
        node = d.next;
    }
}
