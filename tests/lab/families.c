/* Escape-family probes for the escape lab (issue 20). Written for this lab; each writes back exactly what it read, so
 * it changes nothing in its target:
 *   families inject PID   ptrace attach, PEEKDATA + POKEDATA of the same word, process_vm_writev of the same bytes,
 *                         detach (host process injection when PID is outside the container)
 *   families trace-self   the same on a child of its own (a debugger inside its container: the benign twin)
 *   families bpf          bpf(BPF_PROG_LOAD) of a two-instruction socket filter (r0 = 0; exit)
 *   families module       finit_module and init_module of nothing (ENOSYS on kernels without module support) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/bpf.h>

static unsigned long writable_address(pid_t pid) {
    char path[64], line[512];
    unsigned long start = 0, end = 0;
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *maps = fopen(path, "r");
    if (!maps) { perror("maps"); return 0; }
    while (fgets(line, sizeof line, maps)) {
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3 && perms[0] == 'r' && perms[1] == 'w') break;
        start = 0;
    }
    fclose(maps);
    return start;
}

static int inject(pid_t pid) {
    if (ptrace(PTRACE_ATTACH, pid, 0, 0) < 0) { perror("ptrace attach"); return 1; }
    waitpid(pid, NULL, __WALL);
    unsigned long address = writable_address(pid);
    errno = 0;
    long word = ptrace(PTRACE_PEEKDATA, pid, (void *)address, 0);
    if (errno) { perror("peek"); ptrace(PTRACE_DETACH, pid, 0, 0); return 1; }
    if (ptrace(PTRACE_POKEDATA, pid, (void *)address, (void *)word) < 0) perror("poke");
    struct iovec local = { &word, sizeof word }, remote = { (void *)address, sizeof word };
    if (syscall(SYS_process_vm_writev, pid, &local, 1UL, &remote, 1UL, 0UL) < 0) perror("process_vm_writev");
    ptrace(PTRACE_DETACH, pid, 0, 0);
    printf("pid %d: wrote back the same word at %#lx\n", (int)pid, address);
    return 0;
}

static int bpf_load(void) {
    struct bpf_insn program[2];
    memset(program, 0, sizeof program);
    program[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  /* r0 = 0 */
    program[1].code = BPF_JMP | BPF_EXIT;
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = (unsigned long)program;
    attr.insn_cnt = 2;
    attr.license = (unsigned long)"GPL";
    long fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
    if (fd < 0) { perror("bpf prog load"); return 1; }
    printf("bpf program loaded: fd %ld\n", fd);
    close((int)fd);
    return 0;
}

static int module_load(void) {
    int fd = open("/dev/null", O_RDONLY);
    if (syscall(SYS_finit_module, fd, "", 0) < 0) perror("finit_module");
    char image[16] = { 0 };
    if (syscall(SYS_init_module, image, sizeof image, "") < 0) perror("init_module");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "inject")) return inject((pid_t)atoi(argv[2]));
    if (argc == 2 && !strcmp(argv[1], "trace-self")) {
        pid_t child = fork();
        if (child == 0) { pause(); _exit(0); }
        usleep(100000);
        int rc = inject(child);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        return rc;
    }
    if (argc == 2 && !strcmp(argv[1], "bpf")) return bpf_load();
    if (argc == 2 && !strcmp(argv[1], "module")) return module_load();
    fprintf(stderr, "usage: families inject PID | trace-self | bpf | module\n");
    return 2;
}
