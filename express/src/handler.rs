//! Building native handlers: a `wsgi.rs` written against the `rswsgi` SDK becomes a cdylib
//! (`handler.so`) that `rswsgi-daemon` loads.
//!
//! [`build_handler`] generates a tiny cargo project in the cache directory (a `cdylib` whose
//! `[lib] path` is the source itself, so compiler errors name the user's file, with a path
//! dependency on the SDK source), runs `cargo build --release --offline`, and keeps the
//! library under a key hashed from the source, the SDK's own files and express's version.
//! A cache hit never runs cargo. Every build shares one target directory, so the SDK is
//! compiled once.

use std::env;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::locate::search_path;

/// The file name of a built handler, in its cache entry and in a server root.
pub const HANDLER_FILE: &str = "handler.so";

/// Where and how to build a handler (`express build-handler` options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// The SDK source (`--sdk-path`, env `RSWSGI_SDK`); found with [`find_sdk`] otherwise.
    pub sdk_path: Option<PathBuf>,
    /// The cache directory (`--cache-dir`); [`default_cache_dir`] otherwise.
    pub cache_dir: Option<PathBuf>,
    /// The cargo binary; `$CARGO`, else `cargo` on `PATH` otherwise.
    pub cargo: Option<PathBuf>,
}

/// A built (or cached) handler library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltHandler {
    /// The source it was built from (absolute).
    pub source: PathBuf,
    /// The library in the cache: `<cache>/<key>/handler.so`.
    pub library: PathBuf,
    /// The cache key (hex).
    pub key: String,
    /// Whether it came from the cache (cargo did not run).
    pub cached: bool,
}

/// Whether `script` names a native handler source (`*.rs`).
pub fn is_native_source(script: &Path) -> bool {
    script.extension().is_some_and(|e| e == "rs")
}

/// Whether `script` names a built native handler (`*.so`).
pub fn is_native_library(script: &Path) -> bool {
    script.extension().is_some_and(|e| e == "so")
}

/// `$XDG_CACHE_HOME/rswsgi/handlers`, else `$HOME/.cache/rswsgi/handlers`; `None` when
/// neither variable is set to an absolute path.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|home| home.join(".cache")))
        .map(|cache| cache.join("rswsgi").join("handlers"))
}

/// The SDK source directory: `explicit`, else `$RSWSGI_SDK`, else `<exe dir>/../share/rswsgi/sdk`
/// (an installed express), else a `crates/sdk` found walking up from the executable (a
/// development build), else the workspace express was built from.
pub fn find_sdk(explicit: Option<&Path>) -> Result<PathBuf> {
    let given = explicit.map(Path::to_path_buf).or_else(|| {
        env::var_os("RSWSGI_SDK")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    if let Some(dir) = given {
        if is_sdk(&dir) {
            return Ok(dir.canonicalize().unwrap_or(dir));
        }
        bail!(
            "rswsgi SDK {}: no Cargo.toml and src/lib.rs of the `rswsgi` crate there",
            dir.display()
        );
    }
    let mut tried = Vec::new();
    let exe = env::current_exe()
        .ok()
        .map(|e| e.canonicalize().unwrap_or(e));
    if let Some(exe_dir) = exe.as_deref().and_then(Path::parent) {
        tried.push(exe_dir.join("../share/rswsgi/sdk"));
        tried.extend(exe_dir.ancestors().map(|d| d.join("crates/sdk")));
    }
    tried.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/sdk"));
    for dir in &tried {
        if is_sdk(dir) {
            return Ok(dir.canonicalize().unwrap_or_else(|_| dir.clone()));
        }
    }
    bail!(
        "the rswsgi SDK source was not found (looked in <express dir>/../share/rswsgi/sdk, in the \
         workspace above express, and in {}): pass --sdk-path DIR or set RSWSGI_SDK",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crates/sdk")
            .display()
    )
}

fn is_sdk(dir: &Path) -> bool {
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
    dir.join("src/lib.rs").is_file()
        && manifest
            .lines()
            .any(|l| l.replace(' ', "") == "name=\"rswsgi\"")
}

/// The cargo to run: `explicit`, else `$CARGO`, else `cargo` on `PATH`.
pub fn find_cargo(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(cargo) = explicit {
        return Ok(cargo.to_path_buf());
    }
    if let Some(cargo) = env::var_os("CARGO").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(cargo));
    }
    search_path("cargo").context(
        "cargo not found on PATH: native handlers are compiled with cargo; install Rust \
         (https://rustup.rs), or build the handler where cargo is available with \
         `express build-handler wsgi.rs -o handler.so` and serve handler.so",
    )
}

/// The cache key of `source` built against the SDK in `sdk`: sha256 over express's
/// version, the SDK's `Cargo.toml`, `build.rs` and `src/` files (path and contents) and the
/// source, as 32 hex digits.
pub fn cache_key(source: &[u8], sdk: &Path) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"rswsgi handler cache 1\0");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    let mut files = vec![sdk.join("Cargo.toml"), sdk.join("build.rs")];
    collect_files(&sdk.join("src"), &mut files)?;
    files.sort();
    for file in files.iter().filter(|f| f.is_file()) {
        let data = fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let rel = file.strip_prefix(sdk).unwrap_or(file);
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update((data.len() as u64).to_le_bytes());
        h.update(&data);
    }
    h.update(b"\0source\0");
    h.update(source);
    Ok(h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Builds `source` into a handler library, or finds it in the cache. Cargo's output goes to
/// this process's standard error as cargo prints it; express's own lines go there too.
pub fn build_handler(source: &Path, opts: &BuildOptions) -> Result<BuiltHandler> {
    let source = source
        .canonicalize()
        .with_context(|| format!("native handler source {}", source.display()))?;
    if !is_native_source(&source) || !source.is_file() {
        bail!(
            "{}: a native handler source is a Rust file ending in .rs",
            source.display()
        );
    }
    let text = fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
    let sdk = find_sdk(opts.sdk_path.as_deref())?;
    let key = cache_key(&text, &sdk)?;
    let cache = match &opts.cache_dir {
        Some(dir) => dir.clone(),
        None => default_cache_dir().context(
            "no cache directory for native handler builds: neither XDG_CACHE_HOME nor HOME \
             is set; pass --cache-dir DIR",
        )?,
    };
    let entry = cache.join(&key);
    let library = entry.join(HANDLER_FILE);
    if library.is_file() {
        crate::errln!(
            "express: using cached build {} of {}",
            library.display(),
            source.display()
        );
        return Ok(BuiltHandler {
            source,
            library,
            key,
            cached: true,
        });
    }
    let cargo = find_cargo(opts.cargo.as_deref())?;
    fs::create_dir_all(&entry)
        .with_context(|| format!("creating the build cache {}", entry.display()))?;
    let manifest = entry.join("Cargo.toml");
    write_atomic(&manifest, manifest_toml(&key, &source, &sdk)?.as_bytes())?;
    let target = cache.join("target");
    crate::errln!(
        "express: building {} (cargo build --release --offline in {})",
        source.display(),
        entry.display()
    );
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--offline",
            "--lib",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .env_remove("CARGO_BUILD_TARGET")
        .current_dir(&entry)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {}", cargo.display()))?;
    if !status.success() {
        bail!(
            "cargo could not build the native handler {} ({status}); cargo's messages are above",
            source.display()
        );
    }
    let built = target
        .join("release")
        .join(format!("lib{}.so", lib_name(&key)));
    if fs::read(&source).ok().as_deref() != Some(&text[..]) {
        bail!(
            "{} changed while it was being built: run the command again",
            source.display()
        );
    }
    install_library(&built, &library, 0o755)?;
    crate::errln!("express: built {}", library.display());
    Ok(BuiltHandler {
        source,
        library,
        key,
        cached: false,
    })
}

fn lib_name(key: &str) -> String {
    format!("rswsgi_handler_{key}")
}

/// The generated project's `Cargo.toml`.
fn manifest_toml(key: &str, source: &Path, sdk: &Path) -> Result<String> {
    Ok(format!(
        "# Generated by rswsgi express for {src}.\n\
         [package]\n\
         name = \"rswsgi-handler-{key}\"\n\
         version = \"0.0.0\"\n\
         edition = \"2021\"\n\
         publish = false\n\
         \n\
         [lib]\n\
         name = \"{lib}\"\n\
         path = {src_toml}\n\
         crate-type = [\"cdylib\"]\n\
         \n\
         [dependencies]\n\
         rswsgi = {{ path = {sdk_toml} }}\n\
         \n\
         [profile.release]\n\
         panic = \"unwind\"\n\
         \n\
         [workspace]\n",
        src = source.display(),
        lib = lib_name(key),
        src_toml = toml_string(source)?,
        sdk_toml = toml_string(sdk)?,
    ))
}

/// A TOML basic string holding `path`.
fn toml_string(path: &Path) -> Result<String> {
    let Some(s) = path.to_str() else {
        bail!("{}: path is not UTF-8", path.display());
    };
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

/// Copies `library` to `dest` with `mode` through a temporary file and a rename, so a
/// daemon that has the old file mapped keeps it intact.
pub fn install_library(library: &Path, dest: &Path, mode: u32) -> Result<()> {
    let data = fs::read(library).with_context(|| format!("reading {}", library.display()))?;
    write_atomic(dest, &data)?;
    fs::set_permissions(dest, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", dest.display()))
}

fn write_atomic(dest: &Path, data: &[u8]) -> Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dest.with_file_name(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let mut file = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(data)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, dest).with_context(|| format!("renaming to {}", dest.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_workspace_sdk() {
        let sdk = find_sdk(None).unwrap();
        assert!(sdk.join("src/abi.rs").is_file(), "{}", sdk.display());
        let err = find_sdk(Some(Path::new("/nonexistent/sdk"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/sdk"), "{err}");
    }

    #[test]
    fn key_follows_source_and_sdk() {
        let sdk = find_sdk(None).unwrap();
        let a = cache_key(b"fn a() {}", &sdk).unwrap();
        assert_eq!(a.len(), 32);
        assert_eq!(a, cache_key(b"fn a() {}", &sdk).unwrap());
        assert_ne!(a, cache_key(b"fn b() {}", &sdk).unwrap());
        let copy = env::temp_dir().join(format!("rswsgi-sdk-key-{}", std::process::id()));
        fs::create_dir_all(copy.join("src")).unwrap();
        fs::copy(sdk.join("Cargo.toml"), copy.join("Cargo.toml")).unwrap();
        fs::write(copy.join("src/lib.rs"), "// edited\n").unwrap();
        let edited = cache_key(b"fn a() {}", &copy).unwrap();
        fs::remove_dir_all(&copy).unwrap();
        assert_ne!(a, edited);
    }

    #[test]
    fn manifest_quotes_paths() {
        let toml = manifest_toml("ab", Path::new("/a \"b\"/w.rs"), Path::new("/s\\dk")).unwrap();
        assert!(toml.contains("path = \"/a \\\"b\\\"/w.rs\"\n"), "{toml}");
        assert!(toml.contains("rswsgi = { path = \"/s\\\\dk\" }"), "{toml}");
        assert!(toml.contains("crate-type = [\"cdylib\"]"));
        assert!(is_native_source(Path::new("x/wsgi.rs")));
        assert!(!is_native_source(Path::new("x/wsgi.py")));
    }
}
