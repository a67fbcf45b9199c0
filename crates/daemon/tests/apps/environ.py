def application(environ, start_response):
    keys = ["wsgi.version", "wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess",
            "wsgi.run_once", "wsgi.input_terminated", "HTTP_X_NAME", "PATH_INFO",
            "mod_wsgi.request_id"]
    lines = ["%s=%r" % (k, environ.get(k)) for k in keys]
    lines.append("dict=%r" % (type(environ) is dict))
    # CGI values are str; mod_wsgi's own keys have mod_wsgi's types (tuples, floats, ints).
    lines.append("str_keys=%r" % all(type(k) is str and type(v) is str
                                      for k, v in environ.items()
                                      if not k.startswith(("wsgi.", "mod_wsgi.", "apache."))))
    lines.append("errors=%r" % hasattr(environ["wsgi.errors"], "write"))
    lines.append("file=%r" % (type(__file__) is str and __file__.endswith("/app.py")))
    print("hello from print", file=environ["wsgi.errors"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["\n".join(lines).encode("utf-8")]
