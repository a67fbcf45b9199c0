"""A Flask application served by rswsgi.

    express start-server examples/flask/wsgi.py --python-home VENV_WITH_FLASK
"""

import hashlib

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello from Flask on rswsgi!\n"


@app.route("/json")
def json_route():
    return jsonify(message="hello", server="rswsgi", path=request.path)


@app.route("/hash", methods=["POST"])
def hash_body():
    # Read the body in pieces from wsgi.input: the request is streamed, never buffered whole.
    digest = hashlib.sha256()
    total = 0
    while True:
        chunk = request.stream.read(65536)
        if not chunk:
            break
        digest.update(chunk)
        total += len(chunk)
    return jsonify(sha256=digest.hexdigest(), length=total)


application = app
