//! mod_wsgi's server-wide Python settings, applied to every daemon's interpreter through the
//! environment CPython reads as it starts (`PYTHONOPTIMIZE`, `PYTHONDONTWRITEBYTECODE`,
//! `PYTHONHASHSEED`, `PYTHONWARNINGS`): `WSGIPythonOptimize`, `WSGIDontWriteBytecode`,
//! `WSGIPythonHashSeed` and `WSGIPythonWarnings`.

/// The settings (main server).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PythonFlags {
    /// `WSGIPythonOptimize 0|1|2`.
    pub optimize: Option<u8>,
    /// `WSGIDontWriteBytecode On|Off`.
    pub dont_write_bytecode: Option<bool>,
    /// `WSGIPythonHashSeed random|N`.
    pub hash_seed: Option<String>,
    /// `WSGIPythonWarnings SPEC`, once per line, in order.
    pub warnings: Vec<String>,
    /// `WSGISwitchInterval SECS`: under mod_wsgi it applies to embedded mode only, so here
    /// to the implicit daemon groups that stand in for it (not part of [`Self::environment`]).
    pub switch_interval: Option<String>,
}

impl PythonFlags {
    /// Parses `WSGIPythonOptimize`'s argument.
    pub fn parse_optimize(arg: &str) -> Result<u8, String> {
        match arg.trim().parse::<u8>() {
            Ok(n @ 0..=2) => Ok(n),
            _ => Err(format!("WSGIPythonOptimize {arg}: 0, 1 or 2")),
        }
    }

    /// Parses `WSGIDontWriteBytecode`'s argument.
    pub fn parse_on_off(directive: &str, arg: &str) -> Result<bool, String> {
        match arg.trim().to_ascii_lowercase().as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err(format!("{directive} {arg}: On or Off")),
        }
    }

    /// Parses `WSGIPythonHashSeed`'s argument: `random` or 0 to 4294967295, as CPython takes.
    pub fn parse_hash_seed(arg: &str) -> Result<String, String> {
        let arg = arg.trim();
        if arg == "random" || arg.parse::<u32>().is_ok() {
            return Ok(arg.to_owned());
        }
        Err(format!(
            "WSGIPythonHashSeed {arg}: random or a number from 0 to 4294967295"
        ))
    }

    /// Checks a `WSGIPythonWarnings` filter (`action:message:category:module:lineno`).
    pub fn parse_warning(arg: &str) -> Result<String, String> {
        let arg = arg.trim();
        let action = arg.split(':').next().unwrap_or_default();
        let actions = [
            "default", "error", "ignore", "always", "all", "module", "once",
        ];
        if arg.is_empty() || arg.contains(',') || !actions.contains(&action) {
            return Err(format!(
                "WSGIPythonWarnings {arg}: one filter, action:message:category:module:lineno \
                 (action one of {})",
                actions.join(", ")
            ));
        }
        Ok(arg.to_owned())
    }

    /// Parses `WSGISwitchInterval`'s argument.
    pub fn parse_switch_interval(arg: &str) -> Result<String, String> {
        super::daemon_options::check_switch_interval(arg)
            .map_err(|why| format!("WSGISwitchInterval {arg}: {why}"))
    }

    /// The `NAME=value` environment entries for a daemon.
    pub fn environment(&self) -> Vec<String> {
        let mut env = Vec::new();
        if let Some(n) = self.optimize.filter(|&n| n > 0) {
            env.push(format!("PYTHONOPTIMIZE={n}"));
        }
        if self.dont_write_bytecode == Some(true) {
            env.push("PYTHONDONTWRITEBYTECODE=1".to_owned());
        }
        if let Some(seed) = &self.hash_seed {
            env.push(format!("PYTHONHASHSEED={seed}"));
        }
        if !self.warnings.is_empty() {
            env.push(format!("PYTHONWARNINGS={}", self.warnings.join(",")));
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_interval() {
        assert_eq!(
            PythonFlags::parse_switch_interval(" 0.002 ").unwrap(),
            "0.002"
        );
        for bad in ["0", "-1", "soon", "inf", ""] {
            let e = PythonFlags::parse_switch_interval(bad).unwrap_err();
            assert!(e.starts_with("WSGISwitchInterval"), "{e}");
        }
    }

    #[test]
    fn parse_and_environment() {
        let flags = PythonFlags {
            optimize: Some(PythonFlags::parse_optimize("2").unwrap()),
            dont_write_bytecode: Some(PythonFlags::parse_on_off("D", "On").unwrap()),
            hash_seed: Some(PythonFlags::parse_hash_seed("123").unwrap()),
            warnings: vec![
                PythonFlags::parse_warning("ignore::DeprecationWarning").unwrap(),
                PythonFlags::parse_warning("error").unwrap(),
            ],
            switch_interval: Some("0.01".into()),
        };
        assert_eq!(
            flags.environment(),
            [
                "PYTHONOPTIMIZE=2",
                "PYTHONDONTWRITEBYTECODE=1",
                "PYTHONHASHSEED=123",
                "PYTHONWARNINGS=ignore::DeprecationWarning,error"
            ]
        );
        assert!(PythonFlags::parse_optimize("3").is_err());
        assert!(PythonFlags::parse_hash_seed("-1").is_err());
        assert!(PythonFlags::parse_warning("shout").is_err());
        assert!(PythonFlags::parse_on_off("D", "yes").is_err());
        assert!(PythonFlags::default().environment().is_empty());
    }
}
