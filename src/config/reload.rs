//! The `WSGIDaemonProcess` options of the change monitor (`reload-on-changes=On`,
//! `reload-files=FILE[:FILE]`): the daemons watch the file of every module the application
//! imported, its scripts and the reload files, and recycle gracefully when one changes
//! (the daemon's `--reload-on-changes` and `--reload-file`; `crates/daemon/src/reload.rs`).

const DIRECTIVE: &str = "WSGIDaemonProcess";

/// The options of this file, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadOptions {
    /// `reload-on-changes=On`: run the change monitor.
    pub on_changes: bool,
    /// `reload-files=`: more files to watch, absolute paths (repeatable, colon-separated).
    pub files: Vec<String>,
}

impl ReloadOptions {
    /// Takes `option=value` when it is one of this file's options: `Ok(true)` when taken,
    /// `Ok(false)` when the option is another one.
    pub fn parse_option(&mut self, option: &str, value: &str) -> Result<bool, String> {
        match option {
            "reload-on-changes" => {
                self.on_changes = match value.to_ascii_lowercase().as_str() {
                    "on" => true,
                    "off" => false,
                    _ => {
                        return Err(format!(
                            "{DIRECTIVE}: {option}={value} is not valid: expected On or Off"
                        ))
                    }
                }
            }
            "reload-files" => {
                for file in value.split(':').filter(|f| !f.is_empty()) {
                    if !file.starts_with('/') {
                        return Err(format!(
                            "{DIRECTIVE}: {option}={value}: {file} is not an absolute path"
                        ));
                    }
                    self.files.push(file.to_string());
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the options together once the line is read: reload files need the monitor.
    pub fn check(&self) -> Result<(), String> {
        if !self.files.is_empty() && !self.on_changes {
            return Err(format!(
                "{DIRECTIVE}: reload-files= needs reload-on-changes=On (the monitor that \
                 watches them)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[(&str, &str)]) -> Result<ReloadOptions, String> {
        let mut o = ReloadOptions::default();
        for (k, v) in words {
            assert!(o.parse_option(k, v)?, "{k} is one of these options");
        }
        o.check()?;
        Ok(o)
    }

    #[test]
    fn on_off_and_files() {
        let o = parse(&[
            ("reload-on-changes", "On"),
            ("reload-files", "/srv/a.ini:/srv/b.txt"),
            ("reload-files", "/srv/c"),
        ])
        .unwrap();
        assert!(o.on_changes);
        assert_eq!(o.files, ["/srv/a.ini", "/srv/b.txt", "/srv/c"]);
        assert_eq!(
            parse(&[("reload-on-changes", "off")]).unwrap(),
            ReloadOptions::default()
        );
        assert!(!ReloadOptions::default()
            .parse_option("threads", "2")
            .unwrap());
        for (k, v, says) in [
            ("reload-on-changes", "yes", "expected On or Off"),
            ("reload-files", "settings.ini", "not an absolute path"),
        ] {
            let e = parse(&[(k, v)]).unwrap_err();
            assert!(e.contains(&format!("{k}={v}")) && e.contains(says), "{e}");
        }
        let e = parse(&[("reload-files", "/srv/a")]).unwrap_err();
        assert!(e.contains("needs reload-on-changes=On"), "{e}");
    }
}
