/*
 * Fault injection for the end-to-end tests (tests/fault_injection.rs), in the manner of
 * libfiu: loaded with LD_PRELOAD into httpd and (through the environment httpd passes on)
 * the daemons, it makes one named libc call fail with a chosen errno, so that the error paths
 * of docs/errors.md that need a failing system call run for real. Nothing in the module or
 * the daemon knows about it.
 *
 * RSWSGI_FAULT holds rules separated by ';', each `CALL:ERRNO` followed by `,KEY=VALUE`
 * conditions, all of which must hold for a call to fail:
 *   exe=NAME    only in a process whose /proc/self/exe is named NAME (apache2, rswsgi-daemon)
 *   name=P      memfd_create: the name starts with P; mmap: the mapped descriptor is a memfd
 *               whose name starts with P
 *   arg=N       the first integer argument is N (prctl's option, epoll_ctl's op,
 *               setsockopt's option name)
 *   after=N     the first N calls that match the above succeed (counted per process)
 *   times=N     at most N calls fail (per process)
 *   when=PATH   only while PATH exists
 *   once=PATH   only if PATH can be created (O_EXCL): exactly one failure across processes
 * CALL is one of memfd_create, mmap, epoll_ctl, epoll_wait, accept4, setsockopt, prctl, fork.
 * ERRNO is a name (ENOMEM, EMFILE, ...) or a number.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_RULES 8

struct rule {
    char call[32];
    int err;
    char exe[64];
    char name[64];
    long arg;
    int has_arg;
    long after;
    long times;
    char when[256];
    char once[256];
    long seen;
    long failed;
};

static struct rule rules[MAX_RULES];
static int nrules;
static char self_exe[64];

static const struct {
    const char *name;
    int value;
} errnos[] = {
    {"ENOMEM", ENOMEM}, {"EMFILE", EMFILE}, {"ENFILE", ENFILE}, {"EAGAIN", EAGAIN},
    {"EBADF", EBADF},   {"EINVAL", EINVAL}, {"EPERM", EPERM},   {"ENOBUFS", ENOBUFS},
    {"ENOSPC", ENOSPC}, {"EACCES", EACCES}, {"ENOTSOCK", ENOTSOCK},
};

static int parse_errno(const char *s) {
    for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
        if (strcmp(s, errnos[i].name) == 0)
            return errnos[i].value;
    return atoi(s);
}

static void copy(char *dst, size_t n, const char *src) {
    snprintf(dst, n, "%s", src);
}

static void parse_rule(char *text) {
    if (nrules == MAX_RULES)
        return;
    struct rule *r = &rules[nrules];
    memset(r, 0, sizeof *r);
    r->times = -1;
    char *save = NULL;
    char *head = strtok_r(text, ",", &save);
    char *colon = head ? strchr(head, ':') : NULL;
    if (!colon)
        return;
    *colon = 0;
    copy(r->call, sizeof r->call, head);
    r->err = parse_errno(colon + 1);
    for (char *kv = strtok_r(NULL, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        *eq = 0;
        const char *v = eq + 1;
        if (strcmp(kv, "exe") == 0)
            copy(r->exe, sizeof r->exe, v);
        else if (strcmp(kv, "name") == 0)
            copy(r->name, sizeof r->name, v);
        else if (strcmp(kv, "arg") == 0)
            r->arg = atol(v), r->has_arg = 1;
        else if (strcmp(kv, "after") == 0)
            r->after = atol(v);
        else if (strcmp(kv, "times") == 0)
            r->times = atol(v);
        else if (strcmp(kv, "when") == 0)
            copy(r->when, sizeof r->when, v);
        else if (strcmp(kv, "once") == 0)
            copy(r->once, sizeof r->once, v);
    }
    nrules++;
}

__attribute__((constructor)) static void fault_init(void) {
    char path[512];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n > 0) {
        path[n] = 0;
        const char *base = strrchr(path, '/');
        copy(self_exe, sizeof self_exe, base ? base + 1 : path);
    }
    const char *spec = getenv("RSWSGI_FAULT");
    if (!spec)
        return;
    char buf[2048];
    copy(buf, sizeof buf, spec);
    char *save = NULL;
    for (char *t = strtok_r(buf, ";", &save); t; t = strtok_r(NULL, ";", &save))
        parse_rule(t);
}

/* Whether the memfd `fd` has a name starting with `prefix`. */
static int memfd_named(int fd, const char *prefix) {
    char link[64], target[256];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return 0;
    target[n] = 0;
    return strncmp(target, "/memfd:", 7) == 0 && strncmp(target + 7, prefix, strlen(prefix)) == 0;
}

/*
 * Whether this call of `call` is to fail; sets errno when it is. `name` is the memfd name (or
 * NULL), `fd` the descriptor whose memfd name `name=` checks (or -1), `arg` the first integer
 * argument.
 */
static int should_fail(const char *call, const char *name, int fd, long arg) {
    for (int i = 0; i < nrules; i++) {
        struct rule *r = &rules[i];
        if (strcmp(r->call, call) != 0)
            continue;
        if (r->exe[0] && strcmp(r->exe, self_exe) != 0)
            continue;
        if (r->has_arg && r->arg != arg)
            continue;
        if (r->name[0]) {
            if (name && strncmp(name, r->name, strlen(r->name)) != 0)
                continue;
            if (!name && (fd < 0 || !memfd_named(fd, r->name)))
                continue;
        }
        if (__atomic_add_fetch(&r->seen, 1, __ATOMIC_RELAXED) <= r->after)
            continue;
        if (r->when[0] && access(r->when, F_OK) != 0)
            continue;
        if (r->times >= 0 && __atomic_add_fetch(&r->failed, 1, __ATOMIC_RELAXED) > r->times)
            continue;
        if (r->once[0]) {
            int f = open(r->once, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
            if (f < 0)
                continue;
            close(f);
        }
        errno = r->err;
        return 1;
    }
    return 0;
}

#define REAL(ret, fn, ...)                                                                 \
    static ret (*real)(__VA_ARGS__);                                                       \
    if (!real)                                                                             \
        real = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, fn)

int memfd_create(const char *name, unsigned int flags) {
    REAL(int, "memfd_create", const char *, unsigned int);
    if (should_fail("memfd_create", name, -1, 0))
        return -1;
    return real(name, flags);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    REAL(void *, "mmap", void *, size_t, int, int, int, off_t);
    if (nrules && fd >= 0 && (flags & MAP_SHARED) && should_fail("mmap", NULL, fd, 0))
        return MAP_FAILED;
    return real(addr, len, prot, flags, fd, off);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
    REAL(int, "epoll_ctl", int, int, int, struct epoll_event *);
    if (should_fail("epoll_ctl", NULL, -1, op))
        return -1;
    return real(epfd, op, fd, ev);
}

int epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout) {
    REAL(int, "epoll_wait", int, struct epoll_event *, int, int);
    if (should_fail("epoll_wait", NULL, -1, 0))
        return -1;
    return real(epfd, evs, max, timeout);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    REAL(int, "accept4", int, struct sockaddr *, socklen_t *, int);
    if (should_fail("accept4", NULL, -1, 0))
        return -1;
    return real(fd, addr, len, flags);
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len) {
    REAL(int, "setsockopt", int, int, int, const void *, socklen_t);
    if (should_fail("setsockopt", NULL, -1, name))
        return -1;
    return real(fd, level, name, val, len);
}

int prctl(int option, ...) {
    REAL(int, "prctl", int, unsigned long, unsigned long, unsigned long, unsigned long);
    va_list ap;
    va_start(ap, option);
    unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long);
    unsigned long a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
    va_end(ap);
    if (should_fail("prctl", NULL, -1, option))
        return -1;
    return real(option, a2, a3, a4, a5);
}

pid_t fork(void) {
    REAL(pid_t, "fork", void);
    if (should_fail("fork", NULL, -1, 0))
        return -1;
    return real();
}
