/*
 * fuzz.h - what every harness in tests/fuzz/ shares.
 *
 * Each harness defines LLVMFuzzerTestOneInput(). Built with clang and
 * -fsanitize=fuzzer it is a libFuzzer target; built with any other compiler
 * it links replay.c, a plain driver that runs the seed corpus and a fixed
 * number of deterministic mutations of it (see replay.c).
 *
 * FUZZ_CHECK aborts with the failed condition: libFuzzer (and the replay
 * driver) report an abort as a crash and keep the input.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(c)                                                   \
    do {                                                                \
        if (!(c)) {                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,      \
                    __LINE__, #c);                                      \
            abort();                                                    \
        }                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
