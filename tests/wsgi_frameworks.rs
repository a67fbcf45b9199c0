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

/// What differs between the frameworks in the one scenario [`run_scenario`] drives.
struct Framework {
    /// What the views' URL paths end in: `/` for Django, nothing for Flask.
    trailing: &'static str,
    /// Django's CSRF protection: the form's GET gives a token and its cookie, which every POST
    /// of a form must carry; one without them is refused with a 403.
    csrf: bool,
    /// The form POST's fields (after the token, with CSRF protection).
    form_body: &'static str,
    /// The name and the colours the form view answers with (its JSON's spacing too).
    form_answer: (&'static str, &'static str),
    /// The doubled numbers the JSON view answers with.
    doubled: &'static str,
    /// `/old`'s redirect: its status and Location.
    old_redirect: (u16, &'static str),
    /// The upload's random seed, file name and note.
    upload: (u64, &'static str, &'static str),
    /// How many lines the streamed response is asked for.
    stream_lines: usize,
    /// The framework's own steps.
    own_steps: fn(&TestServer),
}

const FLASK: Framework = Framework {
    trailing: "",
    csrf: false,
    form_body: "name=J%C3%BCrgen+M&colour=red&colour=blue",
    form_answer: ("J\\u00fcrgen M", "[\"red\",\"blue\"]"),
    doubled: "[2,4,6]",
    old_redirect: (301, "/new?from=old"),
    upload: (11, "data.bin", "hello"),
    stream_lines: 5,
    own_steps: flask_session,
};

const DJANGO: Framework = Framework {
    trailing: "/",
    csrf: true,
    form_body: "name=Ada&colour=red&colour=green",
    form_answer: ("Ada", "[\"red\", \"green\"]"),
    doubled: "[2, 4, 6]",
    old_redirect: (302, "/new/?from=old"),
    upload: (12, "blob.bin", "hi"),
    stream_lines: 4,
    own_steps: django_append_slash,
};

impl Framework {
    /// The URL path of a view (`/form`, or `/form/` for Django).
    fn path(&self, view: &str) -> String {
        format!("{view}{}", self.trailing)
    }
}

/// A CSRF token and the cookie that goes with it.
struct Csrf {
    token: String,
    cookie: String,
}

/// Forms, JSON, cookies, redirects, a 3 MB upload and a streamed response, through `srv`.
fn run_scenario(fw: &Framework, srv: &TestServer) {
    let csrf = form_step(fw, srv);
    json_step(fw, srv);
    cookies_step(fw, srv);
    (fw.own_steps)(srv);
    let resp = srv.get(&fw.path("/old"));
    assert_eq!(resp.status, fw.old_redirect.0, "{resp:?}");
    assert_eq!(resp.header("Location"), Some(fw.old_redirect.1));
    upload_step(fw, srv, csrf.as_ref());
    // A streamed response arrives line by line.
    let n = fw.stream_lines;
    let chunks = streamed_chunks(srv, &format!("{}?n={n}", fw.path("/stream")));
    assert_eq!(chunks.len(), n, "{chunks:?}");
    let last = format!("line {} from {}\n", n - 1, fw.path("/stream"));
    assert_eq!(chunks[n - 1], last);
}

/// The form: GET it (with CSRF protection, its token and cookie), POST it (with them), and
/// with CSRF protection see a POST without them refused.
fn form_step(fw: &Framework, srv: &TestServer) -> Option<Csrf> {
    let form = "application/x-www-form-urlencoded";
    let path = fw.path("/form");
    let resp = srv.get(&path);
    assert_eq!(resp.status, 200, "{resp:?}\n{}", srv.logs());
    let csrf = fw.csrf.then(|| {
        let cookies = set_cookies(&resp);
        assert!(cookies.iter().any(|(n, _)| n == "csrftoken"), "{resp:?}");
        Csrf {
            token: resp.text(),
            cookie: cookie_header(&cookies),
        }
    });
    if csrf.is_none() {
        assert!(resp.text().contains("<form"), "{resp:?}");
    }
    let mut headers = vec![("Content-Type", form)];
    let body = match &csrf {
        Some(c) => {
            headers.push(("Cookie", &c.cookie));
            format!("csrfmiddlewaretoken={}&{}", c.token, fw.form_body)
        }
        None => fw.form_body.to_owned(),
    };
    let resp = srv.request("POST", &path, &headers, Some(body.as_bytes()));
    assert_eq!(resp.status, 200, "{resp:?}");
    let text = resp.text();
    let (name, colours) = fw.form_answer;
    assert_eq!(json_field(&text, "name").as_deref(), Some(name), "{text}");
    assert_eq!(
        json_field(&text, "colours").as_deref(),
        Some(colours),
        "{text}"
    );
    if fw.csrf {
        // Without the token: refused.
        let resp = srv.request("POST", &path, &[("Content-Type", form)], Some(b"name=Eve"));
        assert_eq!(resp.status, 403, "{resp:?}");
    }
    csrf
}

/// A JSON POST, answered with a 201 in JSON.
fn json_step(fw: &Framework, srv: &TestServer) {
    let resp = srv.request(
        "POST",
        &fw.path("/json"),
        &[("Content-Type", "application/json")],
        Some(br#"{"numbers": [1, 2, 3], "tag": "x"}"#),
    );
    assert_eq!(resp.status, 201, "{resp:?}");
    assert!(resp
        .header("Content-Type")
        .is_some_and(|v| v.starts_with("application/json")));
    assert_eq!(
        json_field(&resp.text(), "doubled").as_deref(),
        Some(fw.doubled)
    );
}

/// Cookies: two Set-Cookie headers, sent back in one Cookie header.
fn cookies_step(fw: &Framework, srv: &TestServer) {
    let resp = srv.get(&fw.path("/cookies/set"));
    let cookies = set_cookies(&resp);
    assert_eq!(cookies.len(), 2, "{resp:?}");
    let resp = srv.request(
        "GET",
        &fw.path("/cookies/get"),
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
}

/// A 3 MB file upload (over Django's in-memory limit, so there it goes through a temporary
/// file), with a note and, with CSRF protection, the token.
fn upload_step(fw: &Framework, srv: &TestServer, csrf: Option<&Csrf>) {
    let (seed, filename, note) = fw.upload;
    let data = pseudo_random(3 << 20, seed);
    let mut fields = vec![("note", note)];
    let content_type = multipart_type();
    let mut headers = vec![("Content-Type", content_type.as_str())];
    if let Some(c) = csrf {
        fields.push(("csrfmiddlewaretoken", c.token.as_str()));
        headers.push(("Cookie", &c.cookie));
    }
    let body = multipart(&fields, "file", filename, &data);
    let resp = srv.request("POST", &fw.path("/upload"), &headers, Some(&body));
    assert_eq!(resp.status, 200, "{resp:?}");
    let text = resp.text();
    assert_eq!(json_field(&text, "filename").as_deref(), Some(filename));
    assert_eq!(json_field(&text, "size"), Some(data.len().to_string()));
    assert_eq!(json_field(&text, "sha256"), Some(sha256_hex(&data)));
    assert_eq!(json_field(&text, "note").as_deref(), Some(note));
}

/// Flask's signed session cookie, via a redirect after a form POST.
fn flask_session(srv: &TestServer) {
    let resp = srv.request(
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
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
}

/// Django's APPEND_SLASH redirect, built from the request's environ.
fn django_append_slash(srv: &TestServer) {
    let resp = srv.get("/form");
    assert_eq!(resp.status, 301, "{resp:?}");
    assert_eq!(resp.header("Location"), Some("/form/"));
}

#[test]
fn flask_forms_json_cookies_redirects_upload_and_streaming() {
    require!(venv);
    let srv = TestServer::builder("tests/apps/flask_app.py")
        .ready_path(&FLASK.path("/form"))
        .start();
    run_scenario(&FLASK, &srv);
    srv.stop();
}

#[test]
fn django_forms_json_cookies_redirects_upload_and_streaming() {
    require!(venv);
    let stage = Stage::new("django");
    let (proj, wsgi) = django_project(&stage);
    let srv = TestServer::builder(wsgi.to_str().unwrap())
        .python_path(&proj)
        .ready_path(&DJANGO.path("/form"))
        .start();
    run_scenario(&DJANGO, &srv);
    srv.stop();
    drop(stage);
}
