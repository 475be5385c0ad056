/*
 * fsync_ceiling.c - the write ceiling of the benchmark: how many 512-byte
 * pwrite + fdatasync pairs one thread completes per second in DIR (the
 * disk of the database).
 * Usage: fsync_ceiling DIR SECONDS
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    char path[4096], buf[512];
    struct timespec t0, t;
    double secs = argc > 2 ? atof(argv[2]) : 3, el = 0;
    long n = 0;
    int fd;

    snprintf(path, sizeof(path), "%s/fsync-ceiling.tmp",
             argc > 1 ? argv[1] : ".");
    if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) < 0)
        return perror(path), 1;
    memset(buf, 'x', sizeof(buf));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (el < secs) {
        if (pwrite(fd, buf, sizeof(buf), (off_t)(n % 64) * 512) < 0 ||
            fdatasync(fd) < 0)
            return perror("write"), 1;
        n++;
        clock_gettime(CLOCK_MONOTONIC, &t);
        el = (double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
    }
    close(fd);
    unlink(path);
    printf("%.0f\n", n / el);
    return 0;
}
