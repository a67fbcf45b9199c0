//! Checking a WSGI script before starting anything: it exists, it parses, and it
//! binds the callable at module level.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The Python that parses scripts: Debian's, the one the daemon is built against.
pub const CHECK_PYTHON: &str = "/usr/bin/python3";

/// Reads the script with `ast` and reports whether NAME is bound at module level
/// (def, class, assignment, import, for/with targets, also inside top-level
/// if/try/with/for/while blocks, or `global NAME` anywhere). A `from x import *`
/// or a module-level `__getattr__` may bind anything, so they count as yes.
/// Exit status: 0 bound, 1 not bound, 2 syntax error, 3 unreadable.
const AST_CHECK: &str = r#"
import ast, sys
path, name = sys.argv[1], sys.argv[2]
try:
    with open(path, 'rb') as f:
        tree = ast.parse(f.read(), path)
except SyntaxError as e:
    print('line %s: %s' % (e.lineno, e.msg))
    sys.exit(2)
except (OSError, ValueError) as e:
    print(getattr(e, 'strerror', None) or str(e))
    sys.exit(3)
names = set()
star = [False]
def bind(t):
    if isinstance(t, ast.Name):
        names.add(t.id)
    elif isinstance(t, (ast.Tuple, ast.List)):
        for e in t.elts:
            bind(e)
    elif isinstance(t, ast.Starred):
        bind(t.value)
def walk(body):
    for s in body:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(s.name)
        elif isinstance(s, ast.Assign):
            for t in s.targets:
                bind(t)
        elif isinstance(s, (ast.AnnAssign, ast.AugAssign)):
            bind(s.target)
        elif isinstance(s, ast.Import):
            for a in s.names:
                names.add(a.asname or a.name.split('.')[0])
        elif isinstance(s, ast.ImportFrom):
            for a in s.names:
                if a.name == '*':
                    star[0] = True
                else:
                    names.add(a.asname or a.name)
        elif isinstance(s, (ast.For, ast.AsyncFor)):
            bind(s.target)
            walk(s.body)
            walk(s.orelse)
        elif isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                if item.optional_vars is not None:
                    bind(item.optional_vars)
            walk(s.body)
        elif isinstance(s, (ast.If, ast.While)):
            walk(s.body)
            walk(s.orelse)
        elif isinstance(s, (ast.Try, getattr(ast, 'TryStar', ast.Try))):
            walk(s.body)
            for h in s.handlers:
                if h.name:
                    names.add(h.name)
                walk(h.body)
            walk(s.orelse)
            walk(s.finalbody)
        elif isinstance(s, getattr(ast, 'Match', ())):
            for case in s.cases:
                walk(case.body)
walk(tree.body)
for n in ast.walk(tree):
    if isinstance(n, ast.Global) and name in n.names:
        names.add(name)
    elif isinstance(n, ast.NamedExpr):
        bind(n.target)
sys.exit(0 if (name in names or '__getattr__' in names or star[0]) else 1)
"#;

/// Checks that `script` exists and is a file, and for Python scripts (`.py`, `.wsgi`)
/// that it parses and binds `callable` at module level. Skipped (Ok) when Debian's
/// Python is not installed: the daemon would then report the problem itself.
pub fn check_script(script: &Path, callable: &str) -> Result<()> {
    let meta = script
        .metadata()
        .with_context(|| format!("WSGI script {}", script.display()))?;
    if !meta.is_file() {
        bail!("WSGI script {} is not a file", script.display());
    }
    let is_python = matches!(
        script.extension().and_then(|e| e.to_str()),
        Some("py" | "wsgi")
    );
    if !is_python || !Path::new(CHECK_PYTHON).is_file() {
        return Ok(());
    }
    let out = Command::new(CHECK_PYTHON)
        .arg("-I")
        .arg("-c")
        .arg(AST_CHECK)
        .arg(script)
        .arg(callable)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {CHECK_PYTHON} to check {}", script.display()))?;
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => bail!(
            "WSGI script {} has no callable named '{callable}' at module level \
             (define it, or name it with --callable-object)",
            script.display()
        ),
        Some(2) => bail!(
            "WSGI script {} has a syntax error at {said}",
            script.display()
        ),
        Some(3) => bail!("cannot read WSGI script {}: {said}", script.display()),
        _ => bail!(
            "checking WSGI script {} with {CHECK_PYTHON} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// The file `--application-type module` mounts: `<root>/handler.wsgi`.
pub const MODULE_HANDLER_FILE: &str = "handler.wsgi";

/// Checks that `entry` is a module's dotted name (`mysite.wsgi`): identifiers joined by dots.
pub fn check_module_name(entry: &str) -> Result<()> {
    let identifier = |part: &str| {
        let mut chars = part.chars();
        chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && chars.all(|c| c.is_alphanumeric() || c == '_')
    };
    if entry.split('.').all(identifier) {
        return Ok(());
    }
    bail!("--application-type module: {entry:?} is not a module name (such as mysite.wsgi)")
}

/// The script that imports module `entry` and binds its callable under the same name, as
/// mod_wsgi-express's handler does for `--application-type module`.
pub fn module_handler(entry: &str, callable: &str) -> String {
    format!(
        "# Generated by rswsgi express for --application-type module: imports {entry} with\n\
         # the working directory on sys.path and serves its {callable}.\n\
         import importlib\n\n\
         globals()[{callable:?}] = getattr(importlib.import_module({entry:?}), {callable:?})\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str, callable: &str) -> Result<()> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("rswsgi-script-{}-{n}.py", std::process::id()));
        std::fs::write(&path, src).unwrap();
        let result = check_script(&path, callable);
        std::fs::remove_file(&path).unwrap();
        result
    }

    #[test]
    fn finds_bindings() {
        if !Path::new(CHECK_PYTHON).is_file() {
            return;
        }
        check("def application(e, s): pass\n", "application").unwrap();
        check(
            "from flask import Flask\napp = Flask(__name__)\napplication = app\n",
            "application",
        )
        .unwrap();
        check("from app import app as application\n", "application").unwrap();
        check("from app import *\n", "application").unwrap();
        check(
            "try:\n    from a import b as app\nexcept ImportError:\n    app = None\n",
            "app",
        )
        .unwrap();
        check("class application: pass\n", "application").unwrap();
        check("a, (b, application) = 1, (2, 3)\n", "application").unwrap();
        let err = check("def app(e, s): pass\n", "application").unwrap_err();
        assert!(
            err.to_string().contains("no callable named 'application'"),
            "{err}"
        );
        let err = check("def f():\n    application = 1\n", "application").unwrap_err();
        assert!(err.to_string().contains("no callable"), "{err}");
        let err = check("def application(:\n", "application").unwrap_err();
        assert!(err.to_string().contains("syntax error at line 1"), "{err}");
    }

    #[test]
    fn missing_script() {
        let err = check_script(Path::new("/nonexistent/wsgi.py"), "application").unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/wsgi.py"),
            "{err:#}"
        );
    }
}
