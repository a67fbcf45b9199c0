/* The Apache httpd 2.4 and APR API that mod_rswsgi uses; build.rs runs bindgen over this file
 * against the system's headers (found with apxs and apr-1-config). */

#include <httpd.h>
#include <http_config.h>
#include <util_cfgtree.h>
#include <http_core.h>
#include <http_log.h>
#include <http_main.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>
#include <util_script.h>
#include <unixd.h>
#include <mpm_common.h>
#include <mod_auth.h>
#include <apr_strings.h>
#include <apr_buckets.h>
#include <apr_thread_proc.h>

/* Macro-only APIs, implemented in shim.c. */

/* Ends a response whose backend failed after the headers went out: passes an error bucket
 * (so the chunk filter omits the final chunk) and EOS, and closes the client connection. */
void rswsgi_abort_response(request_rec *r);

/* Passes `len` bytes at `buf` followed by a FLUSH bucket through the output filters, using the
 * caller's brigade `bb` (emptied again before returning). With the FLUSH in the same brigade the
 * core writes the data out before returning, so the transient bucket is never copied aside. */
apr_status_t rswsgi_write_flush(request_rec *r, apr_bucket_brigade *bb, const char *buf,
                                apr_size_t len);

/* A brigade for `rswsgi_write_flush`, from the request's pool. */
apr_bucket_brigade *rswsgi_out_brigade(request_rec *r);

/* A brigade for reading the request body, allocated once per request from its pool. */
apr_bucket_brigade *rswsgi_body_brigade(request_rec *r);

/* Reads up to *len bytes of request body through the input filters into buf (what
 * ap_get_client_block does, but keeping the failure status so it can be mapped to an HTTP
 * status with ap_map_http_request_error). On success *len is the number of bytes read and
 * *eos is 1 once the end of the body has been seen. Sends nothing to the client. */
apr_status_t rswsgi_read_body(request_rec *r, apr_bucket_brigade *bb, char *buf,
                              apr_size_t *len, int *eos);

/* 1 when the request's first output filter is a content filter (one that may need the whole
 * response, such as DEFLATE): mod_wsgi's test for WSGIMapHEADToGET Auto. */
int rswsgi_first_filter_is_content(request_rec *r);

/* The client connection's socket descriptor, to notice a client that resets the connection
 * while the daemon works; -1 when there is none of its own (an HTTP/2 stream). */
int rswsgi_client_fd(request_rec *r);

/* Sets the timeout (microseconds) of the client connection's own socket, which bounds each
 * write of the response to the client, and returns the previous one; -1, changing nothing,
 * when there is no socket of its own (an HTTP/2 stream). */
apr_interval_time_t rswsgi_swap_client_timeout(request_rec *r, apr_interval_time_t t);

/* Passes `len` bytes from `offset` of the open file `fd` through the output filters as file
 * buckets (sendfile when EnableSendfile is on), using the caller's brigade `bb` (emptied again
 * before returning). Takes ownership of `fd`: it is closed with the request pool, after the
 * core has written the buckets. With `allow_mmap` 0 the core never maps the file (a file that
 * shrinks while mapped would kill the process with SIGBUS); with `allow_sendfile` 0 it reads
 * the file and writes what it read instead of calling sendfile. No FLUSH: the core may set the
 * buckets aside and finish the write after the handler returns. */
apr_status_t rswsgi_send_file(request_rec *r, apr_bucket_brigade *bb, int fd, apr_off_t offset,
                              apr_size_t len, int allow_mmap, int allow_sendfile);

/* 1 when Apache's EnableSendfile is On where the request is. */
int rswsgi_core_sendfile(request_rec *r);

/* The callback of mod_status's optional `status_hook` (`flags`: AP_STATUS_SHORT for
 * `?auto`). */
typedef int (*rswsgi_status_fn)(request_rec *r, int flags);

/* Registers `f` on mod_status's optional hook `status_hook` (APR_OPTIONAL_HOOK is a macro);
 * harmless when mod_status is not loaded. */
void rswsgi_register_status_hook(rswsgi_status_fn f);
