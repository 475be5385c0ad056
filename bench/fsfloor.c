/*
 * fsfloor.c - the floor of patriot-combine's file work on a disk: the file
 * operations a run must do per client, and nothing else (no XML, no
 * SQLite), timed phase by phase, wall and CPU:
 *   read    open, read, close each outbox file (one thread: what `cat`
 *           costs, the ceiling of the benchmark);
 *   rename  each file to its in-flight name in the same folder, as a run
 *           takes it (one thread, then THREADS threads on a fresh set:
 *           combine.c's pool uses two);
 *   unlink  each in-flight name once the batch is recorded (48 threads,
 *           as combine.c's removal).
 * Files of SIZE bytes (default 3800, the API's rendering of the
 * benchmark's clients) in FOLDERS folders (default 1: DB mode keeps a
 * key's clients in one folder; --from-dir's benchmark has 20), written
 * and synced before the clock starts.
 * Usage: fsfloor DIR N [FOLDERS [SIZE [THREADS]]]
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define UNLINK_THREADS 48

enum op { OP_READ, OP_RENAME, OP_UNLINK };

struct job {
    int j_dirs[64];
    long j_n;
    int j_folders;
    enum op j_op;
    atomic_long j_next;
    atomic_long j_errors;
};

static void *
work(void *arg)
{
    struct job *j = arg;
    char a[64], b[80], buf[65536];
    ssize_t got;
    long i;
    int d, fd;

    while ((i = atomic_fetch_add(&j->j_next, 1)) < j->j_n) {
        d = j->j_dirs[i % j->j_folders];
        snprintf(a, sizeof(a), "%ld.xml", i);
        snprintf(b, sizeof(b), ".inflight.%ld.xml", i);
        switch (j->j_op) {
        case OP_READ:
            if ((fd = openat(d, a, O_RDONLY | O_CLOEXEC)) < 0) {
                atomic_fetch_add(&j->j_errors, 1);
                break;
            }
            while ((got = read(fd, buf, sizeof(buf))) > 0)
                ;
            if (got < 0)
                atomic_fetch_add(&j->j_errors, 1);
            close(fd);
            break;
        case OP_RENAME:
            if (renameat(d, a, d, b) < 0)
                atomic_fetch_add(&j->j_errors, 1);
            break;
        case OP_UNLINK:
            if (unlinkat(d, b, 0) < 0)
                atomic_fetch_add(&j->j_errors, 1);
            break;
        }
    }
    return NULL;
}

static double
now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double
cpu(void)
{
    struct rusage r;

    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

/* Run op on nthreads threads; print and return its wall seconds. */
static double
phase(struct job *j, enum op op, int nthreads, const char *label)
{
    pthread_t t[UNLINK_THREADS];
    double w0, c0, w;
    int i, started = 0;

    j->j_op = op;
    atomic_store(&j->j_next, 0);
    atomic_store(&j->j_errors, 0);
    w0 = now();
    c0 = cpu();
    for (i = 0; i < nthreads && i < UNLINK_THREADS; i++)
        if (pthread_create(&t[started], NULL, work, j) == 0)
            started++;
    if (started == 0)
        work(j);
    for (i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    w = now() - w0;
    printf("%-28s %6.2f s wall %6.2f s CPU  (%.1f us a file)%s\n", label, w,
           cpu() - c0, w / (double)j->j_n * 1e6,
           atomic_load(&j->j_errors) ? "  ERRORS" : "");
    return w;
}

/* Write the n files of j, synced. 0 or -1. */
static int
make_files(struct job *j, size_t size)
{
    char name[64], *buf = malloc(size);
    long i;
    int fd;

    if (buf == NULL)
        return -1;
    memset(buf, 'x', size);
    for (i = 0; i < j->j_n; i++) {
        snprintf(name, sizeof(name), "%ld.xml", i);
        if ((fd = openat(j->j_dirs[i % j->j_folders], name,
                         O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) <
                0 ||
            write(fd, buf, size) != (ssize_t)size) {
            perror(name);
            free(buf);
            return -1;
        }
        close(fd);
    }
    free(buf);
    syncfs(j->j_dirs[0]);
    return 0;
}

int
main(int argc, char **argv)
{
    static struct job j;
    char path[4096];
    size_t size;
    double rn, rm;
    int i, threads;

    if (argc < 3) {
        fprintf(stderr, "usage: fsfloor DIR N [FOLDERS [SIZE [THREADS]]]\n");
        return 2;
    }
    j.j_n = atol(argv[2]);
    j.j_folders = argc > 3 ? atoi(argv[3]) : 1;
    size = argc > 4 ? (size_t)atol(argv[4]) : 3800;
    threads = argc > 5 ? atoi(argv[5]) : 2;
    if (j.j_n <= 0 || j.j_folders < 1 || j.j_folders > 64 || size == 0 ||
        threads < 1) {
        fprintf(stderr, "fsfloor: bad arguments\n");
        return 2;
    }
    for (i = 0; i < j.j_folders; i++) {
        snprintf(path, sizeof(path), "%s/fsfloor.%d", argv[1], i);
        if ((mkdir(path, 0755) < 0 && errno != EEXIST) ||
            (j.j_dirs[i] = open(path, O_DIRECTORY | O_CLOEXEC)) < 0) {
            perror(path);
            return 1;
        }
    }
    printf("%ld files of %zu bytes in %d folder(s) under %s\n", j.j_n, size,
           j.j_folders, argv[1]);
    if (make_files(&j, size) < 0)
        return 1;
    phase(&j, OP_READ, 1, "read (1 thread)");
    rn = phase(&j, OP_RENAME, 1, "rename (1 thread)");
    rm = phase(&j, OP_UNLINK, UNLINK_THREADS, "unlink (48 threads)");
    printf("%-28s %6.2f s wall\n", "rename + unlink", rn + rm);
    if (threads > 1) {
        if (make_files(&j, size) < 0)
            return 1;
        snprintf(path, sizeof(path), "rename (%d threads)", threads);
        phase(&j, OP_RENAME, threads, path);
        phase(&j, OP_UNLINK, UNLINK_THREADS, "unlink (48 threads)");
    }
    for (i = 0; i < j.j_folders; i++) {
        snprintf(path, sizeof(path), "%s/fsfloor.%d", argv[1], i);
        close(j.j_dirs[i]);
        rmdir(path);
    }
    return 0;
}
