//! Real frameworks through real Apache: a Flask app and a Django project (created by the test
//! with `django startproject`) serving forms, JSON, cookies, redirects, a file upload and a
//! streamed response.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::http::Response;
use common::raw::{head, RawConn};
use common::semantics::pseudo_random;
use common::{sha256_hex, test_venv, Stage, TestServer};

/// The JSON string, number, `true`/`false`/`null` or list after `"key":` in compact JSON.
fn json_field(text: &str, key: &str) -> Option<String> {
    let at = text.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        return Some(s[..s.find('"')?].to_owned());
    }
    if rest.starts_with('[') {
        return Some(rest[..=rest.find(']')?].to_owned());
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_owned())
}

/// The `name=value` pairs of a response's Set-Cookie headers.
fn set_cookies(resp: &Response) -> Vec<(String, String)> {
    resp.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Set-Cookie"))
        .filter_map(|(_, v)| {
            let pair = v.split(';').next()?;
            let (n, v) = pair.split_once('=')?;
            Some((n.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn cookie_header(cookies: &[(String, String)]) -> String {
    cookies
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

const BOUNDARY: &str = "rswsgi-boundary-7MA4YWxkTrZu0gW";

/// A multipart/form-data body with text `fields` and one file.
fn multipart(fields: &[(&str, &str)], file_field: &str, filename: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.extend(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    out.extend(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend(data);
    out.extend(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    out
}

fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// Reads a chunked streamed response and returns its chunks.
fn streamed_chunks(srv: &TestServer, path: &str) -> Vec<String> {
    let mut c = RawConn::connect(srv.addr);
    c.send(&head("GET", path, &[("Connection", "close")]))
        .unwrap();
    let resp = c.read_head().unwrap();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(
        resp.is_chunked(),
        "a streamed response is chunked: {resp:?}"
    );
    let mut chunks = Vec::new();
    while let Some(chunk) = c.read_chunk().unwrap() {
        chunks.push(String::from_utf8_lossy(&chunk).into_owned());
    }
    chunks
}

#[test]
fn flask_forms_json_cookies_redirects_upload_and_streaming() {
    require!(venv);
    let srv = TestServer::builder("tests/apps/flask_app.py")
        .ready_path("/form")
        .start();
    let form = "application/x-www-form-urlencoded";

    let resp = srv.get("/form");
    assert!(resp.text().contains("<form"), "{resp:?}");
    let resp = srv.request(
        "POST",
        "/form",
        &[("Content-Type", form)],
        Some(b"name=J%C3%BCrgen+M&colour=red&colour=blue"),
    );
    assert_eq!(resp.status, 200, "{resp:?}");
    let text = resp.text();
    assert_eq!(
        json_field(&text, "name").as_deref(),
        Some("J\\u00fcrgen M"),
        "{text}"
    );
    assert_eq!(
        json_field(&text, "colours").as_deref(),
        Some("[\"red\",\"blue\"]"),
        "{text}"
    );

    let resp = srv.request(
        "POST",
        "/json",
        &[("Content-Type", "application/json")],
        Some(br#"{"numbers": [1, 2, 3], "tag": "x"}"#),
    );
    assert_eq!(resp.status, 201, "{resp:?}");
    assert!(resp
        .header("Content-Type")
        .is_some_and(|v| v.starts_with("application/json")));
    assert_eq!(
        json_field(&resp.text(), "doubled").as_deref(),
        Some("[2,4,6]")
    );

    // Cookies: two Set-Cookie headers, sent back in one Cookie header.
    let resp = srv.get("/cookies/set");
    let cookies = set_cookies(&resp);
    assert_eq!(cookies.len(), 2, "{resp:?}");
    let resp = srv.request(
        "GET",
        "/cookies/get",
        &[("Cookie", &cookie_header(&cookies))],
        None,
    );
    let text = resp.text();
    assert_eq!(
        json_field(&text, "flavour").as_deref(),
        Some("oatmeal"),
        "{text}"
    );
    assert_eq!(json_field(&text, "count").as_deref(), Some("3"), "{text}");

    // The signed session cookie, via a redirect after a form POST.
    let resp = srv.request(
        "POST",
        "/login",
        &[("Content-Type", form)],
        Some(b"user=alice"),
    );
    assert_eq!(resp.status, 302, "{resp:?}");
    assert_eq!(resp.header("Location"), Some("/whoami"));
    let session = set_cookies(&resp);
    assert!(session.iter().any(|(n, _)| n == "session"), "{resp:?}");
    let resp = srv.request(
        "GET",
        "/whoami",
        &[("Cookie", &cookie_header(&session))],
        None,
    );
    assert_eq!(json_field(&resp.text(), "user").as_deref(), Some("alice"));
    let resp = srv.get("/old");
    assert_eq!(resp.status, 301);
    assert_eq!(resp.header("Location"), Some("/new?from=old"));

    // A 3 MB file upload.
    let data = pseudo_random(3 << 20, 11);
    let body = multipart(&[("note", "hello")], "file", "data.bin", &data);
    let resp = srv.request(
        "POST",
        "/upload",
        &[("Content-Type", &multipart_type())],
        Some(&body),
    );
    assert_eq!(resp.status, 200, "{resp:?}");
    let text = resp.text();
    assert_eq!(json_field(&text, "filename").as_deref(), Some("data.bin"));
    assert_eq!(json_field(&text, "size"), Some(data.len().to_string()));
    assert_eq!(json_field(&text, "sha256"), Some(sha256_hex(&data)));
    assert_eq!(json_field(&text, "note").as_deref(), Some("hello"));

    // A streamed response arrives line by line.
    let chunks = streamed_chunks(&srv, "/stream?n=5");
    assert_eq!(chunks.len(), 5, "{chunks:?}");
    assert_eq!(chunks[4], "line 4 from /stream\n");
    srv.stop();
}

/// Creates a Django project with `django startproject` in `stage` and adds the test views.
/// Returns the project directory (for python-path) and its wsgi.py.
fn django_project(stage: &Stage) -> (PathBuf, PathBuf) {
    let proj = stage.subdir("proj");
    let python = test_venv().join("bin/python");
    let out = Command::new(&python)
        .args(["-m", "django", "startproject", "mysite"])
        .arg(&proj)
        .output()
        .expect("run python -m django");
    assert!(
        out.status.success(),
        "django startproject failed (is Django in RSWSGI_TEST_VENV? run `make setup`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let site = proj.join("mysite");
    let mut settings = std::fs::read_to_string(site.join("settings.py")).unwrap();
    settings.push_str("\nALLOWED_HOSTS = ['*']\nDEBUG = False\n");
    stage.write("proj/mysite/settings.py", &settings);
    stage.write("proj/mysite/views.py", DJANGO_VIEWS);
    stage.write(
        "proj/mysite/urls.py",
        "from django.urls import path\nfrom . import views\n\nurlpatterns = [\n\
         path('form/', views.form),\n path('json/', views.json_echo),\n\
         path('cookies/set/', views.set_cookies),\n path('cookies/get/', views.get_cookies),\n\
         path('old/', views.old),\n path('upload/', views.upload),\n\
         path('stream/', views.stream),\n]\n",
    );
    // Everything readable by the daemon's user.
    let status = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&proj)
        .status()
        .unwrap();
    assert!(status.success());
    (proj, site.join("wsgi.py"))
}

const DJANGO_VIEWS: &str = r#"import hashlib
import json
import time

from django.http import HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.views.decorators.csrf import csrf_exempt


def form(request):
    if request.method == "GET":
        return HttpResponse(get_token(request), content_type="text/plain")
    return JsonResponse({"name": request.POST.get("name"), "colours": request.POST.getlist("colour")})


@csrf_exempt
def json_echo(request):
    data = json.loads(request.body)
    return JsonResponse({"received": data, "doubled": [2 * x for x in data["numbers"]]}, status=201)


def set_cookies(request):
    resp = JsonResponse({"ok": True})
    resp.set_cookie("flavour", "oatmeal")
    resp.set_cookie("count", "3", httponly=True)
    return resp


def get_cookies(request):
    return JsonResponse({k: v for k, v in request.COOKIES.items() if k != "csrftoken"})


def old(request):
    return HttpResponseRedirect("/new/?from=old")


def upload(request):
    f = request.FILES["file"]
    data = f.read()
    return JsonResponse({"filename": f.name, "size": len(data),
                         "sha256": hashlib.sha256(data).hexdigest(), "note": request.POST.get("note")})


def stream(request):
    def generate():
        for i in range(int(request.GET.get("n", "5"))):
            yield "line %d from %s\n" % (i, request.path)
            time.sleep(0.05)
    return StreamingHttpResponse(generate(), content_type="text/plain")
"#;

#[test]
fn django_forms_json_cookies_redirects_upload_and_streaming() {
    require!(venv);
    let stage = Stage::new("django");
    let (proj, wsgi) = django_project(&stage);
    let srv = TestServer::builder(wsgi.to_str().unwrap())
        .python_path(&proj)
        .ready_path("/form/")
        .start();
    let form = "application/x-www-form-urlencoded";

    // A form POST with Django's CSRF protection: the token from GET (and its cookie).
    let resp = srv.get("/form/");
    assert_eq!(resp.status, 200, "{resp:?}\n{}", srv.logs());
    let token = resp.text();
    let csrf = set_cookies(&resp);
    assert!(csrf.iter().any(|(n, _)| n == "csrftoken"), "{resp:?}");
    let cookie = cookie_header(&csrf);
    let resp = srv.request(
        "POST",
        "/form/",
        &[("Content-Type", form), ("Cookie", &cookie)],
        Some(format!("csrfmiddlewaretoken={token}&name=Ada&colour=red&colour=green").as_bytes()),
    );
    assert_eq!(resp.status, 200, "{resp:?}");
    let text = resp.text();
    assert_eq!(json_field(&text, "name").as_deref(), Some("Ada"), "{text}");
    assert_eq!(
        json_field(&text, "colours").as_deref(),
        Some("[\"red\", \"green\"]"),
        "{text}"
    );
    // Without the token: refused.
    let resp = srv.request(
        "POST",
        "/form/",
        &[("Content-Type", form)],
        Some(b"name=Eve"),
    );
    assert_eq!(resp.status, 403, "{resp:?}");

    let resp = srv.request(
        "POST",
        "/json/",
        &[("Content-Type", "application/json")],
        Some(br#"{"numbers": [1, 2, 3]}"#),
    );
    assert_eq!(resp.status, 201, "{resp:?}");
    assert_eq!(
        json_field(&resp.text(), "doubled").as_deref(),
        Some("[2, 4, 6]")
    );

    let resp = srv.get("/cookies/set/");
    let cookies = set_cookies(&resp);
    assert_eq!(cookies.len(), 2, "{resp:?}");
    let resp = srv.request(
        "GET",
        "/cookies/get/",
        &[("Cookie", &cookie_header(&cookies))],
        None,
    );
    let text = resp.text();
    assert_eq!(
        json_field(&text, "flavour").as_deref(),
        Some("oatmeal"),
        "{text}"
    );
    assert_eq!(json_field(&text, "count").as_deref(), Some("3"), "{text}");

    let resp = srv.get("/old/");
    assert_eq!(resp.status, 302);
    assert_eq!(resp.header("Location"), Some("/new/?from=old"));
    // Django's APPEND_SLASH redirect, built from the request's environ.
    let resp = srv.get("/form");
    assert_eq!(resp.status, 301, "{resp:?}");
    assert_eq!(resp.header("Location"), Some("/form/"));

    // A 3 MB upload (over Django's in-memory limit, so it goes through a temporary file).
    let data = pseudo_random(3 << 20, 12);
    let mut fields = vec![("note", "hi")];
    fields.push(("csrfmiddlewaretoken", token.as_str()));
    let body = multipart(&fields, "file", "blob.bin", &data);
    let resp = srv.request(
        "POST",
        "/upload/",
        &[("Content-Type", &multipart_type()), ("Cookie", &cookie)],
        Some(&body),
    );
    assert_eq!(resp.status, 200, "{resp:?}");
    let text = resp.text();
    assert_eq!(json_field(&text, "filename").as_deref(), Some("blob.bin"));
    assert_eq!(json_field(&text, "size"), Some(data.len().to_string()));
    assert_eq!(json_field(&text, "sha256"), Some(sha256_hex(&data)));
    assert_eq!(json_field(&text, "note").as_deref(), Some("hi"));

    let chunks = streamed_chunks(&srv, "/stream/?n=4");
    assert_eq!(chunks.len(), 4, "{chunks:?}");
    assert_eq!(chunks[3], "line 3 from /stream/\n");
    srv.stop();
    drop(stage);
}
