/*
 * embed.c - build-time helper: write a file's bytes as a C array, so that
 * the binary carries it (src/docs.html). Only a C compiler is needed.
 *
 * Usage: embed NAME INPUT OUTPUT.c
 * Output: const unsigned char NAME[] = {...bytes..., 0};
 *         const size_t NAME_len = <bytes, without the added NUL>;
 */
#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
    FILE *in, *out;
    size_t n = 0;
    int c;

    if (argc != 4) {
        fprintf(stderr, "usage: embed NAME INPUT OUTPUT.c\n");
        return 2;
    }
    if ((in = fopen(argv[2], "rb")) == NULL) {
        perror(argv[2]);
        return 1;
    }
    if ((out = fopen(argv[3], "w")) == NULL) {
        perror(argv[3]);
        fclose(in);
        return 1;
    }
    fprintf(out, "/* Generated from %s by tools/embed.c. */\n"
                 "#include <stddef.h>\n"
                 "extern const unsigned char %s[];\n"
                 "extern const size_t %s_len;\n"
                 "const unsigned char %s[] = {\n",
            argv[2], argv[1], argv[1], argv[1]);
    while ((c = getc(in)) != EOF) {
        fprintf(out, "%d,%s", c, ++n % 20 == 0 ? "\n" : "");
    }
    fprintf(out, "0};\nconst size_t %s_len = %zu;\n", argv[1], n);
    if (ferror(in) || fclose(out) != 0) {
        fprintf(stderr, "embed: I/O error\n");
        fclose(in);
        return 1;
    }
    fclose(in);
    return 0;
}
