import sys
import venvmod, ppmod
def application(environ, start_response):
    start_response("200 OK", [])
    sp = [i for i, p in enumerate(sys.path) if p.endswith("site-packages") and "venv" in p]
    pp = sys.path.index(ppmod.DIR)
    lines = ["venv=" + venvmod.VALUE, "pth=" + str(any(p.endswith("pth-extra") for p in sys.path)),
             "prefix=" + sys.prefix, "order=" + str(bool(sp) and pp < sp[0] and sp[0] < 5)]
    return ["\n".join(lines).encode()]
