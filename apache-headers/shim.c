/* The few Apache/APR operations that exist only as C macros (the bucket brigade ring). */
#include "wrapper.h"

void rswsgi_abort_response(request_rec *r)
{
    conn_rec *c = r->connection;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, c->bucket_alloc);
    apr_bucket *e = ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL, r->pool, c->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(bb, e);
    e = apr_bucket_eos_create(c->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(bb, e);
    c->keepalive = AP_CONN_CLOSE;
    (void)ap_pass_brigade(r->output_filters, bb);
    c->aborted = 1;
}
