//! `express`: the command line. Parsing only; the work is in the `rswsgi_express` library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use rswsgi_express::banner;
use rswsgi_express::handler::install_library;
use rswsgi_express::install::{config_lines, install_module, ModuleOptions};
use rswsgi_express::ServerRoot;
use rswsgi_express::{build_handler, check_port, resolve, run_foreground};
use rswsgi_express::{errln, outln};
use rswsgi_express::{write_server_root, BuildOptions, ServerOptions};

#[derive(Parser)]
#[command(
    name = "express",
    version,
    about = "Run a WSGI application under Apache httpd with mod_rswsgi daemon processes"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write the server root and run httpd in the foreground until Ctrl-C or SIGTERM.
    StartServer(Args),
    /// Write the server root only; start it later with `<root>/apachectl`.
    SetupServer(Args),
    /// Compile a native handler (wsgi.rs) into a library, cached by content hash.
    BuildHandler(BuildArgs),
    /// Print the path of mod_rswsgi.so.
    ModuleLocation(ModuleOptions),
    /// Print the lines that load rswsgi into an existing Apache (LoadModule, and RSWSGIDaemonExecutable where needed).
    ModuleConfig(ModuleOptions),
    /// Copy mod_rswsgi.so and rswsgi-daemon into Apache's modules directory (--modules-directory) and print the lines that load them.
    InstallModule(ModuleOptions),
    /// Rewrite Apache's json access log lines from standard input as valid JSON on standard output (the generated configuration pipes the log through it).
    #[command(hide = true)]
    LogFilter {
        /// The format: json.
        #[arg(value_parser = ["json"])]
        format: String,
    },
}

#[derive(clap::Args)]
struct BuildArgs {
    /// The handler's Rust source (for example wsgi.rs).
    script: PathBuf,
    /// Copy the built library here [default: print the cached library's path].
    #[arg(short = 'o', long, value_name = "OUT.so")]
    output: Option<PathBuf>,
    /// The rswsgi SDK source [default: $RSWSGI_SDK, else next to express].
    #[arg(long, value_name = "DIR")]
    sdk_path: Option<PathBuf>,
    /// Build cache [default: $XDG_CACHE_HOME/rswsgi/handlers or ~/.cache/rswsgi/handlers].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct Args {
    /// The WSGI script to serve (wsgi.py), or a native handler (wsgi.rs, built and cached; or a built .so); with --application-type module, a module name.
    script: Option<PathBuf>,
    /// The entry point, instead of SCRIPT (it wins when both are given).
    #[arg(long, value_name = "FILE-PATH|MODULE")]
    entry_point: Option<PathBuf>,
    #[command(flatten)]
    server: ServerOptions,
    /// Write the server root only, as setup-server does.
    #[arg(long)]
    setup_only: bool,
    /// Accepted for mod_wsgi-express compatibility: express always enables sendfile.
    #[arg(long)]
    enable_sendfile: bool,
    /// Write the server root, check it with httpd -t, and exit 0 if it is good or 1 if not (starts nothing).
    #[arg(long)]
    check_config: bool,
    /// Print the options as resolved (paths found, defaults filled in) and exit (writes nothing).
    #[arg(long)]
    print_config: bool,
}

impl Args {
    fn into_options(self) -> anyhow::Result<ServerOptions> {
        let Some(entry) = self.entry_point.or(self.script) else {
            anyhow::bail!("no application given: pass SCRIPT (or --entry-point)");
        };
        // --enable-sendfile asks for what express always does (EnableSendfile On).
        let _ = self.enable_sendfile;
        let mut o = self.server;
        o.script = entry;
        o.python_home = o.python_home.or_else(|| {
            std::env::var_os("VIRTUAL_ENV")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        Ok(o)
    }
}

fn describe(root: &ServerRoot) {
    for (label, value) in banner::banner(root) {
        outln!("{label:<19}: {value}");
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Cmd::BuildHandler(args) => {
            let opts = BuildOptions {
                sdk_path: args.sdk_path,
                cache_dir: args.cache_dir,
                cargo: None,
            };
            let built = build_handler(&args.script, &opts)?;
            let library = match args.output {
                Some(out) => {
                    install_library(&built.library, &out, 0o755)?;
                    out
                }
                None => built.library,
            };
            outln!("{}", library.display());
            Ok(0)
        }
        Cmd::LogFilter { format: _ } => {
            rswsgi_express::jsonlog::filter(std::io::stdin().lock(), std::io::stdout().lock())?;
            Ok(0)
        }
        Cmd::ModuleLocation(opts) => {
            outln!("{}", opts.locate()?.module.display());
            Ok(0)
        }
        Cmd::ModuleConfig(opts) => {
            for line in config_lines(&opts.locate()?)? {
                outln!("{line}");
            }
            Ok(0)
        }
        Cmd::InstallModule(opts) => {
            let located = opts.locate()?;
            let installed = install_module(&located, &located.modules_dir)?;
            for line in config_lines(&installed)? {
                outln!("{line}");
            }
            Ok(0)
        }
        Cmd::SetupServer(args) | Cmd::StartServer(args) if args.print_config => {
            let config = resolve(&args.into_options()?)?;
            outln!("{config:#?}");
            Ok(0)
        }
        Cmd::SetupServer(args) | Cmd::StartServer(args) if args.check_config => check_config(args),
        Cmd::SetupServer(args) => setup(args),
        Cmd::StartServer(args) if args.setup_only => setup(args),
        Cmd::StartServer(args) => {
            let config = resolve(&args.into_options()?)?;
            check_port(&config.host, config.port)?;
            let root = write_server_root(&config)?;
            describe(&root);
            Ok(run_foreground(&root)?.exit_code())
        }
    }
}

/// `--check-config`: writes the server root, runs `httpd -t` on it and passes on its
/// verdict (its output to standard error).
fn check_config(args: Args) -> Result<i32> {
    let root = write_server_root(&resolve(&args.into_options()?)?)?;
    let out = root.config_test()?;
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    for line in said.lines() {
        errln!("{line}");
    }
    if out.status.success() {
        outln!("Configuration OK: {}", root.httpd_conf.display());
        Ok(0)
    } else {
        errln!(
            "express: {} -t found errors in {}",
            root.httpd.display(),
            root.httpd_conf.display()
        );
        Ok(1)
    }
}

/// `setup-server`, and `start-server --setup-only`: writes the server root and lists what
/// it wrote.
fn setup(args: Args) -> Result<i32> {
    let root = write_server_root(&resolve(&args.into_options()?)?)?;
    describe(&root);
    for file in &root.written {
        outln!("Wrote              : {}", file.display());
    }
    outln!(
        "Server root written to {}; run `{} start` (or `foreground`) to start it.",
        root.dir.display(),
        root.apachectl.display()
    );
    Ok(0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            errln!("express: {e:#}");
            ExitCode::FAILURE
        }
    }
}
