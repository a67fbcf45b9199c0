def application(environ, start_response):
    write = start_response("201 Created", [("X-A", "1"), ("X-A", "2")])
    write(b"a")
    write(b"")
    write(b"bc")
    return [b"d"]
