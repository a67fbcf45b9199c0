import os
def application(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise ValueError("kaboom")
    if environ["PATH_INFO"] == "/bad-header":
        start_response("200 OK", [("X-Bad", "a\r\nInjected: 1")])
        return [b"never"]
    if environ["PATH_INFO"] == "/str-item":
        start_response("200 OK", [])
        return ["text"]
    start_response("200 OK", [])
    return [b"fine"]
