/*
 * The loader test. "parent" starts "child" with a scrubbed environment (only PATH and VGPU_SOCKET,
 * so no dynamic-loader variable survives), and the child starts "grandchild"; the grandchild
 * dlopen()s libcuda.so.1 by soname, as cudart does, and reaches the service. It prints the path
 * the dynamic loader chose and the device name. Built without -lcuda and without an rpath: only
 * ld.so.cache can find the library.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int run(const char *self, const char *role, char **env)
{
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)self, (char *)role, NULL};
        execve(self, argv, env);
        _exit(127);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

typedef int (*init_fn)(unsigned);
typedef int (*count_fn)(int *);
typedef int (*name_fn)(char *, int, int);

static int grandchild(void)
{
    for (char **e = environ; *e != NULL; e++) {
        if (strncmp(*e, "LD_", 3) == 0) {
            printf("grandchild: environment not scrubbed: %s\n", *e);
            return 3;
        }
    }
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    if (h == NULL) {
        printf("grandchild: dlopen failed: %s\n", dlerror());
        return 4;
    }
    struct link_map *map = NULL;
    dlinfo(h, RTLD_DI_LINKMAP, &map);
    init_fn cu_init = (init_fn)dlsym(h, "cuInit");
    count_fn cu_count = (count_fn)dlsym(h, "cuDeviceGetCount");
    name_fn cu_name = (name_fn)dlsym(h, "cuDeviceGetName");
    int count = -1;
    char name[256] = "";
    int rc = cu_init ? cu_init(0) : -1;
    if (rc == 0)
        rc = cu_count(&count);
    if (rc == 0 && count > 0)
        rc = cu_name(name, sizeof name, 0);
    printf("grandchild: loaded %s, cuInit and queries -> %d, %d device(s): %s\n", map ? map->l_name : "?", rc, count, name);
    return rc == 0 && count > 0 ? 0 : 5;
}

int main(int argc, char **argv)
{
    const char *role = argc > 1 ? argv[1] : "parent";
    if (strcmp(role, "parent") == 0) {
        static char path[4096], socket_var[4096];
        snprintf(path, sizeof path, "PATH=%s", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
        snprintf(socket_var, sizeof socket_var, "VGPU_SOCKET=%s", getenv("VGPU_SOCKET") ? getenv("VGPU_SOCKET") : "");
        char *scrubbed[] = {path, socket_var, NULL};
        return run("/proc/self/exe", "child", scrubbed);
    }
    if (strcmp(role, "child") == 0)
        return run("/proc/self/exe", "grandchild", environ);
    return grandchild();
}
