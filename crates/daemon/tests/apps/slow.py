import time
def application(environ, start_response):
    time.sleep(1)
    start_response("200 OK", [])
    return [b"slow"]
