//! Which scripts each daemon group preloads and which it may load: derived from every
//! server's mounts, handler scripts, `<Directory>` sections, import and hook scripts. Pure, so
//! the rule the daemons enforce (`--script`, `--allow-script`, `--allow-dir`) is unit-tested.

use super::ServerConfig;

/// The scripts of one daemon group.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GroupScripts {
    /// Preloaded at start-up: the mounts naming the group, its `WSGIImportScript`s.
    pub scripts: Vec<String>,
    /// Other scripts Apache may route to the group.
    pub allowed_scripts: Vec<String>,
    /// Directories whose scripts Apache may route to the group.
    pub allowed_dirs: Vec<String>,
}

/// The scripts of daemon group `group`, given every server's configuration.
pub fn group_scripts(configs: &[&ServerConfig], group: &str) -> GroupScripts {
    // A directory mount's files are loaded on first use, from under the directory.
    let mut scripts: Vec<String> = configs
        .iter()
        .flat_map(|c| c.aliases.iter())
        .filter(|a| a.process_group.as_deref() == Some(group))
        .filter(|a| !a.directory && !a.is_template())
        .map(|a| a.script.clone())
        .collect();
    // WSGIImportScript: its group's, or (process-group=%{GLOBAL}, embedded mode under
    // mod_wsgi) its server's implicit group's.
    for other in configs {
        let implicit = other.implicit_group.as_deref() == Some(group);
        scripts.extend(
            other
                .import_scripts
                .iter()
                .filter(|(_, g, _)| g == group || implicit && g == super::EMBEDDED_GROUP)
                .map(|(file, _, _)| file.clone()),
        );
    }
    // Once each, in order (a virtual host's record repeats the main server's imports).
    let mut seen = std::collections::HashSet::new();
    scripts.retain(|s| seen.insert(s.clone()));
    // Mounts without process-group= go wherever WSGIProcessGroup sends them.
    let mut allowed_scripts: Vec<String> = configs
        .iter()
        .flat_map(|c| c.aliases.iter())
        .filter(|a| a.process_group.is_none() && !a.directory && !a.is_template())
        .map(|a| a.script.clone())
        .collect();
    // Handler scripts are loaded on first use, by the group they name (any group,
    // when they name none: WSGIProcessGroup decides).
    for other in configs {
        let implicit = other.implicit_group.as_deref() == Some(group);
        allowed_scripts.extend(
            other
                .handler_scripts
                .iter()
                .filter(|h| match h.process_group.as_deref() {
                    None => true,
                    Some(super::EMBEDDED_GROUP) => implicit,
                    Some(p) => p == group,
                })
                .map(|h| h.script.clone()),
        );
    }
    // Auth, access and dispatch scripts run in the group they name, else wherever the
    // request's group is.
    for other in configs {
        let implicit = other.implicit_group.as_deref() == Some(group);
        allowed_scripts.extend(
            other
                .hook_scripts
                .iter()
                .filter(|(h, _)| match h.process_group.as_deref() {
                    None => true,
                    Some(super::EMBEDDED_GROUP) => implicit,
                    Some(p) => p == group,
                })
                .map(|(h, _)| h.script.clone()),
        );
    }
    allowed_scripts.sort();
    allowed_scripts.dedup();
    let mut allowed_dirs: Vec<String> = configs
        .iter()
        .flat_map(|c| {
            let implicit = c.implicit_group.as_deref() == Some(group);
            c.group_dirs
                .iter()
                .filter(move |(_, g)| g == group || implicit && g == super::EMBEDDED_GROUP)
        })
        .map(|(dir, _)| dir.clone())
        .collect();
    allowed_dirs.extend(
        configs
            .iter()
            .flat_map(|c| c.aliases.iter())
            .filter(|a| a.directory || a.is_template())
            .filter(|a| a.process_group.as_deref().is_none_or(|p| p == group))
            .map(|a| match a.is_template() {
                true => a.template_directory().to_owned(),
                false => a.script.trim_end_matches('/').to_owned(),
            }),
    );
    // Files given the wsgi-script handler where no group is in force: the implicit group's,
    // under the <Directory> of the line (anywhere, for a line outside one; that group runs as
    // Apache's User, so this lets Apache reach nothing it could not run itself).
    for other in configs {
        if other.implicit_group.as_deref() == Some(group) {
            allowed_dirs.extend(
                other
                    .wsgi_handler_lines
                    .iter()
                    .map(|(_, dir)| dir.clone().unwrap_or_else(|| "/".to_owned())),
            );
        }
    }
    allowed_dirs.sort();
    allowed_dirs.dedup();
    GroupScripts {
        scripts,
        allowed_scripts,
        allowed_dirs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HookKind, HookScript};

    fn hook(script: &str, group: Option<&str>) -> (HookScript, String) {
        let mut h = HookScript::parse(HookKind::AuthUser, script).unwrap();
        h.process_group = group.map(str::to_owned);
        (h, "test".into())
    }

    #[test]
    fn an_import_repeated_by_a_virtual_host_is_loaded_once() {
        let import = ("/srv/preload.py".to_owned(), "a".to_owned(), None);
        let main = ServerConfig {
            import_scripts: vec![import.clone()],
            ..ServerConfig::default()
        };
        let vhost = ServerConfig {
            import_scripts: vec![import.clone(), import],
            ..ServerConfig::default()
        };
        assert_eq!(
            group_scripts(&[&main, &vhost], "a").scripts,
            ["/srv/preload.py"]
        );
    }

    #[test]
    fn hook_scripts_are_loadable_where_they_run_and_never_preloaded() {
        let mut main = ServerConfig::default();
        main.hook_scripts.push(hook("/srv/any.wsgi", None));
        main.hook_scripts.push(hook("/srv/only-a.wsgi", Some("a")));
        main.hook_scripts
            .push(hook("/srv/embedded.wsgi", Some("%{GLOBAL}")));
        main.implicit_group = Some("embedded:x:80".into());
        let configs = [&main];
        let a = group_scripts(&configs, "a");
        assert_eq!(a.allowed_scripts, ["/srv/any.wsgi", "/srv/only-a.wsgi"]);
        assert!(a.scripts.is_empty());
        let b = group_scripts(&configs, "b");
        assert_eq!(b.allowed_scripts, ["/srv/any.wsgi"]);
        let implicit = group_scripts(&configs, "embedded:x:80");
        assert_eq!(
            implicit.allowed_scripts,
            ["/srv/any.wsgi", "/srv/embedded.wsgi"]
        );
    }
}
