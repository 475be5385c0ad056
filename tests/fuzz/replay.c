/*
 * replay.c - a libFuzzer-compatible driver for compilers without libFuzzer.
 *
 * Usage: fuzz_X [-runs=N] [-seed=S] [-max_len=L] DIR|FILE...
 * Runs every file given (directories: every regular file in them), then
 * N - files more inputs, each a deterministic mutation (bit flips, byte
 * insertions and deletions, interesting bytes, splices of two seeds) of a
 * seed or of an earlier mutation. No coverage guidance: this keeps the
 * harnesses' checks running under gcc, ASan and Valgrind; the real search
 * is libFuzzer's (tests/fuzz/run-short.sh, bench/fuzz.sh).
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

struct input {
    uint8_t *d;
    size_t n;
};

static struct input *pool;
static const uint8_t *cur;     /* the input being run, for crash dumps */
static size_t curlen;

/* On a crash: keep the input as ./replay-crash.bin and die again. */
static void
on_crash(int sig)
{
    int fd = open("replay-crash.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (fd >= 0) {
        (void)!write(fd, cur, curlen);
        close(fd);
    }
    (void)!write(2, "replay: crash input in ./replay-crash.bin\n", 43);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void
run_one(const uint8_t *d, size_t n)
{
    cur = d;
    curlen = n;
    LLVMFuzzerTestOneInput(d, n);
}

static size_t npool, cappool;
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t
rnd(void)
{
    uint64_t x = rng_state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static void
pool_add(const uint8_t *d, size_t n)
{
    if (npool == cappool) {
        cappool = cappool ? cappool * 2 : 64;
        pool = realloc(pool, cappool * sizeof(*pool));
        if (pool == NULL)
            abort();
    }
    pool[npool].d = malloc(n ? n : 1);
    if (pool[npool].d == NULL)
        abort();
    memcpy(pool[npool].d, d, n);
    pool[npool].n = n;
    npool++;
}

static void
run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0) {
        perror(path);
        exit(2);
    }
    rewind(f);
    if ((buf = malloc((size_t)n + 1)) == NULL ||
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        exit(2);
    }
    fclose(f);
    run_one(buf, (size_t)n);
    pool_add(buf, (size_t)n);
    free(buf);
}

static void
run_path(const char *path)
{
    struct stat sb;
    DIR *d;
    struct dirent *e;

    if (stat(path, &sb) < 0) {
        perror(path);
        exit(2);
    }
    if (!S_ISDIR(sb.st_mode)) {
        run_file(path);
        return;
    }
    if ((d = opendir(path)) == NULL) {
        perror(path);
        exit(2);
    }
    while ((e = readdir(d)) != NULL) {
        char p[4096];

        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        run_path(p);
    }
    closedir(d);
}

static const uint8_t interesting[] = {
    0, 1, 0x7f, 0x80, 0xff, 0xc0, 0xe0, 0xed, 0xf0, 0xf4, 0xfe,
    '"', '\\', '{', '}', '[', ']', ':', ',', '<', '>', '&', '/', '0',
    '9', '-', 'e', '.', '\n', '\r', ' ', 'u',
};

static size_t
mutate(uint8_t *b, size_t n, size_t max)
{
    int k, steps = 1 + (int)(rnd() % 4);

    for (k = 0; k < steps; k++) {
        size_t at = n ? (size_t)(rnd() % n) : 0;

        switch (rnd() % 6) {
        case 0:     /* flip a bit */
            if (n)
                b[at] ^= (uint8_t)(1u << (rnd() % 8));
            break;
        case 1:     /* an interesting byte */
            if (n)
                b[at] = interesting[rnd() % sizeof(interesting)];
            break;
        case 2:     /* insert */
            if (n < max) {
                memmove(b + at + 1, b + at, n - at);
                b[at] = interesting[rnd() % sizeof(interesting)];
                n++;
            }
            break;
        case 3: {   /* delete a run */
            size_t len = n ? 1 + (size_t)(rnd() % 8) : 0;

            if (at + len > n)
                len = n - at;
            memmove(b + at, b + at + len, n - at - len);
            n -= len;
            break;
        }
        case 4: {   /* duplicate a run */
            size_t len = 1 + (size_t)(rnd() % 16);

            if (at + len > n || n + len > max)
                break;
            memmove(b + at + len, b + at, n - at);
            n += len;
            break;
        }
        default: {  /* splice in a piece of another input */
            const struct input *o = &pool[rnd() % npool];
            size_t from, len;

            if (o->n == 0)
                break;
            from = (size_t)(rnd() % o->n);
            len = 1 + (size_t)(rnd() % (o->n - from));
            if (n + len > max)
                break;
            memmove(b + at + len, b + at, n - at);
            memcpy(b + at, o->d + from, len);
            n += len;
            break;
        }
        }
    }
    return n;
}

int
main(int argc, char **argv)
{
    long runs = 0, done = 0;
    size_t max = 4096;
    uint8_t *buf;
    int i;

    signal(SIGABRT, on_crash);
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    for (i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-runs=", 6) == 0)
            runs = atol(argv[i] + 6);
        else if (strncmp(argv[i], "-seed=", 6) == 0)
            rng_state = strtoull(argv[i] + 6, NULL, 10) | 1;
        else if (strncmp(argv[i], "-max_len=", 9) == 0)
            max = (size_t)atol(argv[i] + 9);
        else if (argv[i][0] == '-')
            continue;       /* other libFuzzer flags: ignored */
        else
            run_path(argv[i]);
    }
    if (npool == 0) {
        uint8_t z = 0;

        run_one(&z, 0);
        pool_add(&z, 0);
    }
    done = (long)npool;
    if ((buf = malloc(max + 1)) == NULL)
        return 2;
    for (; done < runs; done++) {
        const struct input *s = &pool[rnd() % npool];
        size_t n = s->n < max ? s->n : max;

        memcpy(buf, s->d, n);
        n = mutate(buf, n, max);
        run_one(buf, n);
        if (rnd() % 16 == 0 && npool < 4096)
            pool_add(buf, n);
    }
    printf("replay: %ld inputs (%zu seeds and kept mutations), 0 crashes\n",
           done, npool);
    free(buf);
    for (i = 0; (size_t)i < npool; i++)
        free(pool[i].d);
    free(pool);
    return 0;
}
