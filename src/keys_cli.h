/*
 * keys_cli.h - "patriot-api keys ...": add, disable, enable and list the
 * entries of keys.json from the command line.
 *
 * Every change is checked by the server's own loader (keys_load_buffer())
 * before it is written, and written atomically (a temporary file in the same
 * directory, fsync, rename) with the file's mode and owner kept, under an
 * exclusive lock so that two changes at once do not lose one. "add" makes a
 * random 256-bit key, prints it once on stdout and stores only its
 * key_sha256. Nothing this module prints holds a secret, except that one
 * new key.
 */
#pragma once

#include <stdio.h>

/*
 * Run the keys command. argv[0] is "keys" and the rest its arguments, as
 * given after "patriot-api" (argv is borrowed; getopt may permute it).
 * Normal output goes to out, messages to err (neither may be NULL).
 * Returns the exit status: 0 done, 1 refused or failed (one message on err
 * says why, and keys.json is unchanged), 2 bad usage.
 */
int keys_cli_main(int argc, char **argv, FILE *out, FILE *err);
