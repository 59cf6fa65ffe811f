/* Lab-only runc wrapper for VMs whose capability bounding set lacks CAP_SYS_RESOURCE (tests/lab/README.md).
 *
 * Deletes CAP_SYS_RESOURCE from every capability list of the bundle's config.json (create/run) or of the --process
 * JSON (exec), then execs the real /usr/sbin/runc with the same arguments. Installed only when CapBnd lacks bit 24.
 * A compiled program, not a script: a script's exec names its interpreter as the executable, and the Linux analytic
 * (rightly) takes an interpreter started by a container shim for a container process. The runtime writes these files
 * as compact JSON (Go's encoding/json), so removing the quoted name with one adjacent comma keeps them valid. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REAL "/usr/sbin/runc"
static const char NAME[] = "\"CAP_SYS_RESOURCE\"";

static void strip(const char *path) {
    FILE *in = fopen(path, "r");
    if (!in) return;
    if (fseek(in, 0, SEEK_END) != 0) { fclose(in); return; }
    long size = ftell(in);
    rewind(in);
    char *text = malloc((size_t)size + 1);
    if (!text || fread(text, 1, (size_t)size, in) != (size_t)size) { fclose(in); free(text); return; }
    fclose(in);
    text[size] = 0;
    size_t length = (size_t)size, name = sizeof NAME - 1;
    char *hit;
    while ((hit = strstr(text, NAME)) != NULL) {
        char *from = hit, *to = hit + name;
        if (*to == ',') to++;                          /* "A","CAP_SYS_RESOURCE","B" -> "A","B" */
        else if (from > text && from[-1] == ',') from--; /* "A","CAP_SYS_RESOURCE"]  -> "A"]    */
        memmove(from, to, length - (size_t)(to - text) + 1);
        length -= (size_t)(to - from);
    }
    FILE *out = fopen(path, "w");
    if (out) { fwrite(text, 1, length, out); fclose(out); }
    free(text);
}

int main(int argc, char **argv) {
    int create = 0;
    const char *bundle = NULL, *process = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "create") || !strcmp(argv[i], "run")) create = 1;
        if (!strcmp(argv[i], "--bundle") && i + 1 < argc) bundle = argv[i + 1];
        if (!strcmp(argv[i], "--process") && i + 1 < argc) process = argv[i + 1];
    }
    if (create) {
        char path[4096];
        char cwd[4096];
        if (!bundle) bundle = getcwd(cwd, sizeof cwd);
        if (bundle && snprintf(path, sizeof path, "%s/config.json", bundle) < (int)sizeof path) strip(path);
    }
    if (process) strip(process);
    argv[0] = REAL;
    execv(REAL, argv);
    perror("execv " REAL);
    return 127;
}
