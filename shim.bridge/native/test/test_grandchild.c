/*
 * The loader test. "parent" scrubs LD_PRELOAD and LD_LIBRARY_PATH from its environment and starts
 * "child", which starts "grandchild"; the grandchild dlopen()s libcuda.so.1 by soname, as cudart
 * does, and reaches the service. It prints the path the dynamic loader chose and the device name.
 * Built without -lcuda and without an rpath: only ld.so.cache can find the library.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int run(const char *self, const char *role)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, role, (char *)NULL);
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
    if (getenv("LD_PRELOAD") != NULL || getenv("LD_LIBRARY_PATH") != NULL) {
        printf("grandchild: environment not scrubbed\n");
        return 3;
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
        unsetenv("LD_PRELOAD");
        unsetenv("LD_LIBRARY_PATH");
        return run("/proc/self/exe", "child");
    }
    if (strcmp(role, "child") == 0)
        return run("/proc/self/exe", "grandchild");
    return grandchild();
}
