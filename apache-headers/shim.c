/* The few Apache/APR operations that exist only as C macros (the bucket brigade ring). */
#include "wrapper.h"
#include <apr_portable.h>
#include <mod_status.h>
#include <stdint.h>
#include <unistd.h>

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

apr_bucket_brigade *rswsgi_body_brigade(request_rec *r)
{
    return apr_brigade_create(r->pool, r->connection->bucket_alloc);
}

apr_status_t rswsgi_read_body(request_rec *r, apr_bucket_brigade *bb, char *buf,
                              apr_size_t *len, int *eos)
{
    apr_status_t rv;
    apr_size_t want = *len;

    *len = 0;
    *eos = 0;
    apr_brigade_cleanup(bb);
    rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_BLOCK_READ,
                        (apr_off_t)want);
    if (rv != APR_SUCCESS) {
        apr_brigade_cleanup(bb);
        return rv;
    }
    if (!APR_BRIGADE_EMPTY(bb) && APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(bb))) {
        *eos = 1;
    }
    *len = want;
    rv = apr_brigade_flatten(bb, buf, len);
    apr_brigade_cleanup(bb);
    return rv;
}

int rswsgi_first_filter_is_content(request_rec *r)
{
    return r->output_filters && r->output_filters->frec
        && r->output_filters->frec->ftype < AP_FTYPE_PROTOCOL;
}

apr_interval_time_t rswsgi_swap_client_timeout(request_rec *r, apr_interval_time_t t)
{
    conn_rec *c = r->connection;
    apr_socket_t *sock;
    apr_interval_time_t old;

    if (c->master) {
        return -1;
    }
    sock = ap_get_conn_socket(c);
    if (!sock || apr_socket_timeout_get(sock, &old) != APR_SUCCESS
        || apr_socket_timeout_set(sock, t) != APR_SUCCESS) {
        return -1;
    }
    return old;
}

int rswsgi_client_fd(request_rec *r)
{
    conn_rec *c = r->connection;
    apr_socket_t *sock;
    apr_os_sock_t fd;

    if (c->master) {
        return -1;
    }
    sock = ap_get_conn_socket(c);
    if (!sock || apr_os_sock_get(&fd, sock) != APR_SUCCESS) {
        return -1;
    }
    return fd;
}

apr_bucket_brigade *rswsgi_out_brigade(request_rec *r)
{
    return apr_brigade_create(r->pool, r->connection->bucket_alloc);
}

apr_status_t rswsgi_write_flush(request_rec *r, apr_bucket_brigade *bb, const char *buf,
                                apr_size_t len)
{
    conn_rec *c = r->connection;
    apr_status_t rv;
    if (c->aborted) {
        return APR_ECONNABORTED;
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(buf, len, c->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(c->bucket_alloc));
    rv = ap_pass_brigade(r->output_filters, bb);
    apr_brigade_cleanup(bb);
    if (rv == APR_SUCCESS && c->aborted) {
        rv = APR_ECONNABORTED;
    }
    return rv;
}

static apr_status_t rswsgi_close_fd(void *data)
{
    close((int)(intptr_t)data);
    return APR_SUCCESS;
}

int rswsgi_core_sendfile(request_rec *r)
{
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    return d->enable_sendfile == ENABLE_SENDFILE_ON;
}

apr_status_t rswsgi_send_file(request_rec *r, apr_bucket_brigade *bb, int fd, apr_off_t offset,
                              apr_size_t len, int allow_mmap, int allow_sendfile)
{
    conn_rec *c = r->connection;
    apr_os_file_t os_fd = fd;
    apr_file_t *file = NULL;
    apr_bucket *e;
    apr_status_t rv;

    apr_pool_cleanup_register(r->pool, (void *)(intptr_t)fd, rswsgi_close_fd,
                              apr_pool_cleanup_null);
    if (c->aborted) {
        return APR_ECONNABORTED;
    }
    rv = apr_os_file_put(&file, &os_fd,
                         APR_FOPEN_READ | (allow_sendfile ? APR_FOPEN_SENDFILE_ENABLED : 0),
                         r->pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    apr_brigade_insert_file(bb, file, offset, len, r->pool);
    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb); e = APR_BUCKET_NEXT(e)) {
        if (APR_BUCKET_IS_FILE(e)) {
            apr_bucket_file_enable_mmap(e, allow_mmap);
        }
    }
    rv = ap_pass_brigade(r->output_filters, bb);
    apr_brigade_cleanup(bb);
    if (rv == APR_SUCCESS && c->aborted) {
        rv = APR_ECONNABORTED;
    }
    return rv;
}

void rswsgi_register_status_hook(rswsgi_status_fn f)
{
    APR_OPTIONAL_HOOK(ap, status_hook, f, NULL, NULL, APR_HOOK_MIDDLE);
}
