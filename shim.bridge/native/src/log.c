/* One log variable, VGPU_LOG; every line carries pid and tid so interleaved processes can be told apart. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vgpu.h"

static atomic_int cached_level = -1;

static int parse_level(const char *v)
{
    if (v == NULL || *v == '\0')
        return VGPU_LOG_WARN;
    if (v[0] >= '0' && v[0] <= '9')
        return atoi(v) > VGPU_LOG_TRACE ? VGPU_LOG_TRACE : atoi(v);
    static const char *names[] = {"off", "error", "warn", "info", "debug", "trace"};
    for (int i = 0; i <= VGPU_LOG_TRACE; i++)
        if (strcasecmp(v, names[i]) == 0)
            return i;
    /* Said once, directly: the logger is what is being configured. */
    fprintf(stderr, "vgpu[%d]: VGPU_LOG=%s is not a level (off, error, warn, info, debug, trace or 0-5); using warn\n",
            (int)getpid(), v);
    return VGPU_LOG_WARN;
}

int vgpu_log_level(void)
{
    int level = atomic_load_explicit(&cached_level, memory_order_relaxed);
    if (level < 0) {
        level = parse_level(getenv("VGPU_LOG"));
        atomic_store(&cached_level, level);
    }
    return level;
}

void vgpu_log(int level, const char *file, int line, const char *fmt, ...)
{
    static const char *tags[] = {"", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *base = strrchr(file, '/');
    /* One write per line, so lines of concurrent threads and processes do not interleave. */
    char out[1200];
    int n = snprintf(out, sizeof out, "vgpu[%d:%ld] %s %s:%d: %s\n", (int)getpid(), (long)syscall(SYS_gettid),
                     tags[level], base ? base + 1 : file, line, msg);
    if (n > 0) {
        ssize_t ignored = write(STDERR_FILENO, out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1);
        (void)ignored;
    }
}
