//! Generates the Apache/APR bindings with bindgen and compiles the C shim for macro-only APIs.
//!
//! Headers come from the system: `apxs -q INCLUDEDIR` and `apr-1-config --includes` (Debian's
//! paths as fallback). `APACHE_INCLUDE_DIRS` (colon-separated) overrides both.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const FUNCTIONS: &[&str] = &[
    "ap_hook_check_config",
    "ap_hook_post_config",
    "ap_hook_pre_config",
    "ap_hook_translate_name",
    "ap_hook_handler",
    "ap_hook_child_init",
    "ap_hook_monitor",
    "ap_log_error_",
    "ap_log_rerror_",
    "ap_add_common_vars",
    "ap_setup_client_block",
    "ap_should_client_block",
    "ap_get_client_block",
    "ap_rwrite",
    "ap_rflush",
    "ap_set_content_type",
    "ap_set_content_length",
    "ap_run_http_scheme",
    "ap_run_generate_log_id",
    "ap_runtime_dir_relative",
    "ap_server_root_relative",
    "ap_soak_end_container",
    "ap_allow_options",
    "ap_pregcomp",
    "ap_regexec",
    "ap_pregsub",
    "ap_get_server_port",
    "ap_get_server_description",
    "ap_state_query",
    "apr_pstrdup",
    "apr_pstrmemdup",
    "apr_table_add",
    "apr_table_addn",
    "apr_table_set",
    "apr_table_setn",
    "apr_table_get",
    "apr_table_unset",
    "apr_table_clear",
    "apr_pool_cleanup_register",
    "apr_pool_cleanup_null",
    "apr_pool_userdata_get",
    "apr_pool_userdata_set",
    "apr_proc_other_child_register",
    "apr_proc_other_child_unregister",
    "rswsgi_abort_response",
    "rswsgi_register_status_hook",
    "rswsgi_write_flush",
    "rswsgi_out_brigade",
    "rswsgi_body_brigade",
    "rswsgi_read_body",
    "rswsgi_first_filter_is_content",
    "rswsgi_client_fd",
    "rswsgi_swap_client_timeout",
    "rswsgi_send_file",
    "rswsgi_core_sendfile",
    "ap_map_http_request_error",
    "apr_strerror",
    "ap_register_auth_provider",
    "ap_hook_access_checker",
    "ap_get_remote_host",
    "ap_check_cmd_context",
];

const TYPES: &[&str] = &[
    "module",
    "command_rec",
    "cmd_parms",
    "request_rec",
    "server_rec",
    "conn_rec",
    "process_rec",
    "unixd_config_rec",
    "apr_array_header_t",
    "apr_table_entry_t",
    "apr_proc_t",
    "ap_regex_t",
    "ap_regmatch_t",
    "authn_provider",
    "authz_provider",
    "ap_directive_t",
];

const VARS: &[&str] = &[
    "ap_unixd_config",
    "ap_server_conf",
    "ap_top_module",
    "ap_conftree",
];

const CONSTANTS: &str = "MODULE_MAGIC_NUMBER_MAJOR|MODULE_MAGIC_NUMBER_MINOR|MODULE_MAGIC_COOKIE|\
APR_HOOK_.*|OK|DECLINED|DONE|HTTP_.*|APLOG_.*|RSRC_CONF|ACCESS_CONF|OR_.*|REQUEST_CHUNKED_.*|\
APR_OC_REASON_.*|APR_SUCCESS|EXEC_ON_READ|OPT_EXECCGI|AP_MODULE_FLAG_.*|M_GET|M_POST|M_PUT|M_DELETE|M_OPTIONS|M_PATCH|AP_FILTER_ERROR|APR_INCOMPLETE|APR_TIMEUP|AP_SQ_.*|\
AP_AUTH_INTERNAL_PER_CONF|REMOTE_HOST|GLOBAL_ONLY|NOT_IN_.*";

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn include_dirs() -> Vec<String> {
    println!("cargo:rerun-if-env-changed=APACHE_INCLUDE_DIRS");
    if let Ok(dirs) = env::var("APACHE_INCLUDE_DIRS") {
        return dirs
            .split(':')
            .filter(|d| !d.is_empty())
            .map(String::from)
            .collect();
    }
    let mut dirs = Vec::new();
    let apxs = ["apxs", "apxs2", "/usr/bin/apxs"];
    match apxs.iter().find_map(|a| run(a, &["-q", "INCLUDEDIR"])) {
        Some(d) if !d.is_empty() => dirs.push(d),
        _ => dirs.push("/usr/include/apache2".into()),
    }
    match run("apr-1-config", &["--includes"]) {
        Some(flags) => dirs.extend(
            flags
                .split_whitespace()
                .filter_map(|f| f.strip_prefix("-I"))
                .map(String::from),
        ),
        None => dirs.push("/usr/include/apr-1.0".into()),
    }
    for d in &dirs {
        if !PathBuf::from(d)
            .join(if d.contains("apr") {
                "apr.h"
            } else {
                "httpd.h"
            })
            .exists()
        {
            println!("cargo:warning=Apache/APR header directory {d} looks incomplete");
        }
    }
    dirs
}

fn main() {
    println!("cargo:rerun-if-changed=apache-headers/wrapper.h");
    println!("cargo:rerun-if-changed=apache-headers/shim.c");
    println!("cargo:rerun-if-env-changed=RSWSGI_DAEMON_DEFAULT");
    let dirs = include_dirs();

    let mut builder = bindgen::Builder::default()
        .header("apache-headers/wrapper.h")
        .clang_args(dirs.iter().map(|d| format!("-I{d}")))
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .allowlist_var(CONSTANTS)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for f in FUNCTIONS {
        builder = builder.allowlist_function(f);
    }
    for t in TYPES {
        builder = builder.allowlist_type(t);
    }
    for v in VARS {
        builder = builder.allowlist_var(v);
    }
    let bindings = builder.generate().expect(
        "bindgen failed on apache-headers/wrapper.h: are apache2-dev and libclang-dev installed?",
    );
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("bindings.rs");
    bindings.write_to_file(&out).expect("writing bindings");

    let mut cc = cc::Build::new();
    cc.file("apache-headers/shim.c").include("apache-headers");
    for d in &dirs {
        cc.include(d);
    }
    cc.warnings(true).compile("rswsgi_shim");
}
