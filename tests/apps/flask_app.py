"""A Flask application exercising what real sites do: forms, JSON, cookies (plain and the
signed session), redirects, file upload and a streamed response."""

import hashlib
import time

from flask import Flask, Response, jsonify, redirect, request, session, stream_with_context, url_for

app = Flask(__name__)
app.secret_key = "rswsgi-test-secret"


@app.route("/form", methods=["GET", "POST"])
def form():
    if request.method == "GET":
        return '<form method="post"><input name="name"><input name="colour"></form>'
    return jsonify(
        name=request.form.get("name"),
        colours=request.form.getlist("colour"),
        content_type=request.mimetype,
    )


@app.route("/json", methods=["POST"])
def json_echo():
    data = request.get_json()
    return jsonify(received=data, doubled=[2 * x for x in data.get("numbers", [])]), 201


@app.route("/cookies/set")
def set_cookies():
    resp = jsonify(ok=True)
    resp.set_cookie("flavour", "oatmeal")
    resp.set_cookie("count", "3", httponly=True)
    return resp


@app.route("/cookies/get")
def get_cookies():
    return jsonify(dict(request.cookies))


@app.route("/login", methods=["POST"])
def login():
    session["user"] = request.form["user"]
    return redirect(url_for("whoami"))


@app.route("/whoami")
def whoami():
    return jsonify(user=session.get("user"))


@app.route("/old")
def old():
    return redirect("/new?from=old", code=301)


@app.route("/upload", methods=["POST"])
def upload():
    f = request.files["file"]
    data = f.read()
    return jsonify(
        filename=f.filename,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        note=request.form.get("note"),
    )


@app.route("/stream")
def stream():
    n = int(request.args.get("n", "5"))

    def generate():
        for i in range(n):
            yield "line %d from %s\n" % (i, request.path)
            time.sleep(0.05)

    return Response(stream_with_context(generate()), mimetype="text/plain")


application = app
