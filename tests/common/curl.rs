//! Requests made with curl, the client users have: HTTPS, HTTP/2, custom `Host` headers.

use std::path::Path;
use std::process::Command;

/// What one `curl` run got.
#[derive(Debug)]
pub struct Curl {
    /// The status (0 when no response came).
    pub status: u16,
    /// `1.1`, `2`, ...
    pub http_version: String,
    /// The last response's header lines, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// curl's standard error.
    pub stderr: String,
}

impl Curl {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of `KEY=VALUE` line `key` of the body.
    pub fn kv(&self, key: &str) -> Option<String> {
        self.text()
            .lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_owned())
    }
}

/// Runs `curl -sS [args] URL` (no redirects followed), keeping the headers and body in files
/// under `dir`.
pub fn curl(dir: &Path, url: &str, args: &[&str]) -> Curl {
    let (head, body) = (dir.join("curl.head"), dir.join("curl.body"));
    let _ = std::fs::remove_file(&head);
    let _ = std::fs::remove_file(&body);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "120", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&head)
        .args(["-w", "%{http_code} %{http_version}"])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    let written = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = written.split_whitespace();
    let status = words.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let http_version = words.next().unwrap_or_default().to_owned();
    let head = std::fs::read_to_string(&head).unwrap_or_default();
    // With `100 Continue` or a redirect, several heads: the last one counts.
    let last = head
        .split("\r\n\r\n")
        .filter(|h| !h.trim().is_empty())
        .last()
        .unwrap_or("");
    let headers = last
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Curl {
        status,
        http_version,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
