//! rswsgi express: generate an Apache configuration for a WSGI script and run httpd
//! with `mod_rswsgi` in the foreground, like mod_wsgi-express.
//!
//! The flow is [`ServerOptions`] → [`resolve`] (find httpd, the module, the daemon;
//! check the script, the user and what the user can read) → [`ServerConfig`] →
//! [`write_server_root`] (renders `conf/httpd.conf.in` and `conf/apachectl.in`) →
//! [`ServerRoot`] → [`start_httpd`] or [`run_foreground`] (which also waits for the daemons'
//! first load of the script, [`startup`]). [`setup_server`] does the
//! first two steps at once. The end-to-end tests drive servers through this library.
//!
//! A native handler source (`wsgi.rs`) is built by [`build_handler`] (cached by content
//! hash); [`write_server_root`] does it for a `.rs` script and mounts the library.

pub mod access;
pub mod app;
pub mod auth;
pub mod banner;
pub mod config;
pub mod daemon;
pub mod handler;
pub mod hosts;
pub mod install;
pub mod jsonlog;
pub mod limits;
pub mod locate;
pub mod logs;
pub mod options;
pub mod out;
pub mod proxy;
pub mod pyhome;
pub mod reload;
pub mod render;
pub mod root;
pub mod run;
pub mod script;
pub mod site;
pub mod startup;
pub mod status;

pub use access::{check_access, Identity, Need};
pub use config::{resolve, ServerConfig};
pub use handler::{build_handler, BuildOptions, BuiltHandler};
pub use locate::{find_daemon, find_httpd, find_module, find_modules_dir};
pub use options::{ApplicationType, ServerOptions, Timeouts};
pub use render::{render_apachectl, render_httpd_conf};
pub use root::{setup_server, write_server_root, ServerRoot};
pub use run::{check_port, exit_code, httpd_command, run_foreground, start_httpd, Finished};
pub use script::check_script;
pub use startup::LoadOutcome;
