/* The Apache httpd 2.4 and APR API that mod_rswsgi uses; build.rs runs bindgen over this file
 * against the system's headers (found with apxs and apr-1-config). */

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_main.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>
#include <util_script.h>
#include <unixd.h>
#include <apr_strings.h>
#include <apr_buckets.h>
#include <apr_thread_proc.h>

/* Macro-only APIs, implemented in shim.c. */

/* Ends a response whose backend failed after the headers went out: passes an error bucket
 * (so the chunk filter omits the final chunk) and EOS, and closes the client connection. */
void rswsgi_abort_response(request_rec *r);
