/*
 * ceiling.c - the read ceiling of the benchmark: a minimal libmicrohttpd
 * server with the same threading as patriot-api (epoll, pool of 2), that
 * answers every request on the second call with a fixed body of N bytes.
 * Usage: ceiling BODY_BYTES   (prints the port it listens on)
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *body;
static size_t body_len;

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
        const char *method, const char *version, const char *upload,
        size_t *upload_size, void **req_cls)
{
    static int first;
    struct MHD_Response *r;
    enum MHD_Result ret;

    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    if (*req_cls == NULL) {
        *req_cls = &first;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        *upload_size = 0;
        return MHD_YES;
    }
    r = MHD_create_response_from_buffer(body_len, body,
                                        MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

int
main(int argc, char **argv)
{
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    sigset_t s;
    int sig;

    body_len = argc > 1 ? (size_t)atol(argv[1]) : 1300;
    body = malloc(body_len);
    memset(body, 'x', body_len);
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0,
                         NULL, NULL, handler, NULL,
                         MHD_OPTION_THREAD_POOL_SIZE, 2u,
                         MHD_OPTION_CONNECTION_LIMIT, 200u, MHD_OPTION_END);
    if (d == NULL)
        return 1;
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("%u\n", info->port);
    fflush(stdout);
    sigwait(&s, &sig);
    MHD_stop_daemon(d);
    free(body);
    return 0;
}
