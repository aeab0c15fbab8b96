/*
 * The connection to the vgpu service: framing, the spin-then-block reply wait, queued
 * asynchronous requests, and the shared-memory ring for bulk copies (docs/PROTOCOL.md).
 *
 * One connection per process, one lock. Asynchronous requests are queued in an output buffer and
 * leave with the next synchronous request (or when the buffer fills), so a burst of launches costs
 * one write, and a blocking wake-up of the service is paid once per synchronizing call.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vgpu.h"

#define OUT_CAP (256 * 1024)
#define SHM_HEADER 4096
#define SHM_MAGIC 0x4d48535550475600ull
#define MAX_REGIONS 1024
#define MAX_DELIVERIES 1024

/* CONTROL: a management connection without a CUDA session (HELLO caps bit 1). */
#define CAPS_CONTROL 0x2

/*
 * How long connecting and the HELLO exchange may take before cuInit gives up. A healthy bridge
 * answers HELLO within milliseconds (it opens a session and maps the region, nothing slower), so
 * seconds of silence mean whatever listens on the socket is wedged or is not the service, and the
 * application must get an error instead of hanging in cuInit. Five seconds leave room for a
 * service JVM starved of CPU on a loaded machine. Only the handshake has a deadline: a later
 * reply may legitimately take as long as the work it waits for (a long kernel before a
 * synchronize), and a service that dies closes the socket, which every call sees at once.
 */
#define HELLO_TIMEOUT_MS 5000

struct region {
    uint64_t offset; /* from the start of the data area */
    uint64_t length;
    uint32_t seq;    /* the request that uses it */
    int delivered;   /* for deferred device-to-host copies: copied out to the application */
};

struct delivery {
    uint64_t offset;
    void *dst;
    size_t length;
};

static struct {
    pthread_mutex_t lock;
    int fd;
    pid_t owner;           /* the process that opened fd; a forked child must not use it */
    int lost;              /* the service went away: every call fails until a new process connects */
    CUresult deferred;     /* an async error an internal round trip collected, for the next API call */
    CUresult sticky;       /* a kernel fault: every later call of this process returns it */
    uint32_t seq;
    struct vgpu_session_info info;
    uint8_t *out;
    size_t out_len;
    /* shared memory */
    uint8_t *shm;
    size_t shm_size;
    struct region regions[MAX_REGIONS]; /* ring allocations, oldest first */
    int region_head, region_count;
    uint64_t ring_head;                 /* next free offset in the data area */
    struct delivery deliveries[MAX_DELIVERIES];
    int delivery_count;
} conn = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

void vgpu_conn_lock(void)
{
    pthread_mutex_lock(&conn.lock);
}

void vgpu_conn_unlock(void)
{
    pthread_mutex_unlock(&conn.lock);
}

const struct vgpu_session_info *vgpu_session(void)
{
    return &conn.info;
}

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void drop_shm(void)
{
    if (conn.shm != NULL)
        munmap(conn.shm, conn.shm_size);
    conn.shm = NULL;
    conn.shm_size = 0;
    conn.region_count = 0;
    conn.region_head = 0;
    conn.ring_head = 0;
    conn.delivery_count = 0;
}

static void close_conn(void)
{
    if (conn.fd >= 0)
        close(conn.fd);
    conn.fd = -1;
    conn.out_len = 0;
    drop_shm();
}

static CUresult lose(const char *why)
{
    if (!conn.lost)
        LOG_ERROR("lost the connection to the vgpu service (%s): CUDA calls now fail with CUDA_ERROR_DEVICE_UNAVAILABLE", why);
    conn.lost = 1;
    close_conn();
    return CUDA_ERROR_DEVICE_UNAVAILABLE;
}

/* A forked child starts over: it gets its own connection and session on next use. */
void vgpu_conn_after_fork_child(void)
{
    pthread_mutex_init(&conn.lock, NULL);
    if (conn.fd >= 0)
        close(conn.fd);
    conn.fd = -1;
    conn.out_len = 0;
    /* The parent's mapping is shared; unmap it without touching what the parent's requests use. */
    drop_shm();
    conn.lost = 0;
    conn.seq = 0;
    conn.deferred = CUDA_SUCCESS;
    conn.sticky = CUDA_SUCCESS;
    memset(&conn.info, 0, sizeof conn.info);
}

static int send_iov(struct iovec *iov, int n)
{
    while (n > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(conn.fd, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Reads exactly n bytes: polls without blocking for spin_ns, then sleeps in poll(). */
static int recv_full(void *buf, size_t n, long spin_ns)
{
    char *p = buf;
    long deadline = 0;
    while (n > 0) {
        ssize_t r = recv(conn.fd, p, n, MSG_DONTWAIT);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r == 0)
            return -1;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (spin_ns > 0) {
            long t = now_ns();
            if (deadline == 0)
                deadline = t + spin_ns;
            if (t < deadline) {
                __builtin_ia32_pause();
                continue;
            }
        }
        struct pollfd pfd = {.fd = conn.fd, .events = POLLIN};
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return -1;
    }
    return 0;
}

CUresult vgpu_flush_locked(void)
{
    if (conn.out_len == 0)
        return CUDA_SUCCESS;
    if (conn.fd < 0)
        return CUDA_ERROR_DEVICE_UNAVAILABLE;
    struct iovec iov = {conn.out, conn.out_len};
    conn.out_len = 0;
    if (send_iov(&iov, 1) < 0)
        return lose(strerror(errno));
    return CUDA_SUCCESS;
}

static void header(struct vgpu_req_header *h, uint16_t op, uint16_t flags, size_t length)
{
    h->length = (uint32_t)length;
    h->op = op;
    h->flags = flags;
    h->seq = ++conn.seq;
    h->reserved = 0;
}

/* Deferred device-to-host copies: every request before the reply just read has completed. */
static void deliver_all(void)
{
    for (int i = 0; i < conn.delivery_count; i++) {
        struct delivery *d = &conn.deliveries[i];
        memcpy(d->dst, conn.shm + SHM_HEADER + d->offset, d->length);
    }
    conn.delivery_count = 0;
    for (int i = 0; i < conn.region_count; i++)
        conn.regions[(conn.region_head + i) % MAX_REGIONS].delivered = 1;
}

size_t vgpu_frame_limit(void);

static CUresult read_reply(uint16_t op, uint32_t seq, void *rep, size_t rep_len, void *rep_tail, size_t rep_tail_cap,
                           size_t *rep_tail_len)
{
    struct vgpu_rep_header h;
    if (recv_full(&h, sizeof h, vgpu_cfg.spin_ns) < 0)
        return lose("the service closed the connection");
    if (h.seq != seq || h.op != op)
        return lose("reply out of order");
    size_t len = h.length;
    if (len > vgpu_frame_limit())
        return lose("oversized reply");
    size_t fixed = len < rep_len ? len : rep_len;
    if (rep_len > 0)
        memset(rep, 0, rep_len);
    if (fixed > 0 && recv_full(rep, fixed, 0) < 0)
        return lose("short reply");
    size_t tail = len - fixed;
    size_t keep = tail < rep_tail_cap ? tail : rep_tail_cap;
    if (keep > 0 && recv_full(rep_tail, keep, 0) < 0)
        return lose("short reply");
    for (size_t left = tail - keep; left > 0;) {
        char sink[4096];
        size_t k = left < sizeof sink ? left : sizeof sink;
        if (recv_full(sink, k, 0) < 0)
            return lose("short reply");
        left -= k;
    }
    if (rep_tail_len != NULL)
        *rep_tail_len = keep;
    deliver_all();
    return (CUresult)h.result;
}

static CUresult hello(uint32_t caps);
size_t vgpu_frame_limit(void);

static const char *socket_path(void)
{
    return vgpu_cfg.socket_path;
}

static int dial(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path());
    /* A listener whose backlog is full blocks connect() for as long as the send timeout allows;
       cleared again once HELLO is answered. */
    struct timeval tv = {.tv_sec = HELLO_TIMEOUT_MS / 1000, .tv_usec = (HELLO_TIMEOUT_MS % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static CUresult open_conn(uint32_t caps)
{
    if (conn.fd >= 0 && conn.owner == getpid())
        return CUDA_SUCCESS;
    if (conn.lost)
        return CUDA_ERROR_DEVICE_UNAVAILABLE;
    if (conn.out == NULL && (conn.out = malloc(OUT_CAP)) == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    conn.fd = dial();
    if (conn.fd < 0) {
        /* Said once per attempt: cuInit may be retried by a client waiting for the service. */
        if (errno == EAGAIN)
            LOG_ERROR("the vgpu service at %s did not accept the connection within %d ms", socket_path(), HELLO_TIMEOUT_MS);
        else
            LOG_ERROR("the vgpu service is not running: cannot connect to %s (%s)", socket_path(), strerror(errno));
        return CUDA_ERROR_DEVICE_UNAVAILABLE;
    }
    conn.owner = getpid();
    conn.seq = 0;
    CUresult rc = hello(caps);
    if (rc != CUDA_SUCCESS) {
        close_conn();
        if (rc == CUDA_ERROR_DEVICE_UNAVAILABLE)
            conn.lost = 0; /* a failed handshake is not a lost session: a later cuInit may retry */
    }
    return rc;
}

CUresult vgpu_conn_ensure_locked(void)
{
    return open_conn(0);
}

CUresult vgpu_conn_open_control_locked(void)
{
    return open_conn(CAPS_CONTROL);
}

/* Creates the shared-memory file the service will map, readable by the socket's group. */
static int create_shm(char *path, size_t path_cap)
{
    if (vgpu_cfg.shm_size <= SHM_HEADER)
        return -1;
    for (int attempt = 0; attempt < 8; attempt++) {
        unsigned r = (unsigned)now_ns() ^ ((unsigned)getpid() << 12) ^ (unsigned)attempt * 2654435761u;
        snprintf(path, path_cap, "/dev/shm/vgpu-%d-%08x", (int)getpid(), r);
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            if (errno == EEXIST)
                continue;
            return -1;
        }
        struct stat st;
        /* A service running as another user reaches the file through the socket's group. */
        if (stat(socket_path(), &st) == 0 && st.st_gid != getegid() && fchown(fd, (uid_t)-1, st.st_gid) == 0)
            fchmod(fd, 0660);
        if (ftruncate(fd, (off_t)vgpu_cfg.shm_size) < 0) {
            close(fd);
            unlink(path);
            return -1;
        }
        void *m = mmap(NULL, vgpu_cfg.shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (m == MAP_FAILED) {
            unlink(path);
            return -1;
        }
        conn.shm = m;
        conn.shm_size = vgpu_cfg.shm_size;
        return 0;
    }
    return -1;
}

static void process_name(char *out, size_t cap)
{
    /*
     * For humans in `vgpu smi` and `vgpu sessions` only; nothing decides anything by it. glibc's
     * copy of argv[0]'s basename, so the shim reads no procfs file to find it.
     */
    memset(out, 0, cap);
    snprintf(out, cap, "%s", program_invocation_short_name);
}

/* Reads exactly n bytes before deadline (CLOCK_MONOTONIC ns): 0, -1 when the peer closed or failed, -2 at the deadline. */
static int recv_by(void *buf, size_t n, long deadline)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = recv(conn.fd, p, n, MSG_DONTWAIT);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r == 0)
            return -1;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        long left = deadline - now_ns();
        if (left <= 0)
            return -2;
        struct pollfd pfd = {.fd = conn.fd, .events = POLLIN};
        struct timespec ts = {.tv_sec = left / 1000000000L, .tv_nsec = left % 1000000000L};
        if (ppoll(&pfd, 1, &ts, NULL) < 0 && errno != EINTR)
            return -1;
    }
    return 0;
}

/*
 * Waits until the peer has read every byte sent so far (the socket's unread output, SIOCOUTQ,
 * drops to zero). 1: it has, a live service is reading our HELLO; 0: not by the deadline; -1: it
 * answered or closed early, so there is no point offering it a region.
 */
static int wait_read_by_peer(long deadline)
{
    long pause = 20000; /* ns; a reading service takes one wake-up, tens of microseconds */
    for (;;) {
        int unread = 0;
        if (ioctl(conn.fd, SIOCOUTQ, &unread) < 0 || unread == 0)
            return 1; /* a kernel that cannot tell gets the region at once, as before */
        long left = deadline - now_ns();
        if (left <= 0)
            return 0;
        long wait = pause < left ? pause : left;
        struct pollfd pfd = {.fd = conn.fd, .events = POLLIN};
        struct timespec ts = {.tv_sec = wait / 1000000000L, .tv_nsec = wait % 1000000000L};
        int r = ppoll(&pfd, 1, &ts, NULL);
        if (r > 0 || (r < 0 && errno != EINTR))
            return -1;
        if (pause < 1000000)
            pause *= 2;
    }
}

/*
 * HELLO, bounded by HELLO_TIMEOUT_MS. The shared-memory file is the one thing here that can
 * outlive this process: it has a name in /dev/shm from its creation until the service has opened
 * it (the bridge opens it by the path in HELLO; Java cannot receive a descriptor over the
 * socket). So the name exists only while a live service is known to be reading: HELLO goes out
 * without its last field, the region's path; the file is created once the service has read that
 * much, and the path follows. A listener that never reads never gets a file, and the name is
 * removed as soon as the reply arrives or the deadline passes.
 */
static CUresult hello(uint32_t caps)
{
    long deadline = now_ns() + HELLO_TIMEOUT_MS * 1000000L;
    struct vgpu_hello_req req = {.magic = VGPU_PROTOCOL_MAGIC,
                                 .major = VGPU_PROTOCOL_MAJOR,
                                 .minor = VGPU_PROTOCOL_MINOR,
                                 .pid = (uint32_t)getpid(),
                                 .caps = caps};
    process_name(req.process, sizeof req.process);
    int offer_shm = !(caps & CAPS_CONTROL) && vgpu_cfg.shm_size > SHM_HEADER;
    if (offer_shm)
        req.shm_size = vgpu_cfg.shm_size; /* without a path the service maps nothing */
    size_t first = offer_shm ? offsetof(struct vgpu_hello_req, shm_path) : sizeof req;
    struct vgpu_req_header h;
    header(&h, VGPU_OP_HELLO, 0, sizeof req);
    char path[sizeof req.shm_path] = "";
    struct vgpu_hello_rep rep;
    memset(&rep, 0, sizeof rep);
    struct vgpu_rep_header rh;
    int got = -1; /* 0 answered, -1 closed, -2 timed out */
    struct iovec iov[2] = {{&h, sizeof h}, {&req, first}};
    if (send_iov(iov, 2) == 0) {
        int sent = 1;
        if (offer_shm) {
            LOG_DEBUG("waiting for the vgpu service at %s to read the handshake", socket_path());
            int r = wait_read_by_peer(deadline);
            if (r == 0) {
                sent = 0;
                got = -2;
            } else {
                if (r > 0 && create_shm(path, sizeof path) == 0)
                    snprintf(req.shm_path, sizeof req.shm_path, "%s", path);
                struct iovec rest = {req.shm_path, sizeof req.shm_path};
                /* A peer that already answered may have closed: its answer is still read below. */
                send_iov(&rest, 1);
            }
        }
        if (sent && (got = recv_by(&rh, sizeof rh, deadline)) == 0 && (rh.op != VGPU_OP_HELLO || rh.seq != h.seq))
            got = -1;
        if (got == 0) {
            size_t want = rh.length < sizeof rep ? rh.length : sizeof rep;
            got = recv_by(&rep, want, deadline);
            /* A newer service's longer reply: the fields we do not know are skipped. */
            for (size_t left = rh.length - want; got == 0 && left > 0;) {
                char sink[256];
                size_t k = left < sizeof sink ? left : sizeof sink;
                got = recv_by(sink, k, deadline);
                left -= k;
            }
        }
    }
    if (path[0] != '\0')
        unlink(path); /* the service unlinks it too; whoever is second gets ENOENT */
    struct timeval no_limit = {0};
    setsockopt(conn.fd, SOL_SOCKET, SO_SNDTIMEO, &no_limit, sizeof no_limit);
    CUresult rc = got == 0 ? (CUresult)rh.result : CUDA_ERROR_DEVICE_UNAVAILABLE;
    if (got == -2)
        LOG_ERROR("the vgpu service at %s did not answer the handshake within %d ms", socket_path(), HELLO_TIMEOUT_MS);
    else if (got == -1)
        LOG_ERROR("the vgpu service at %s closed the connection during the handshake", socket_path());
    else if (rc == CUDA_ERROR_SYSTEM_DRIVER_MISMATCH)
        LOG_ERROR("the vgpu service at %s speaks another protocol version; update the shim or the service", socket_path());
    if (rc != CUDA_SUCCESS) {
        drop_shm();
        return rc;
    }
    conn.info.minor = rep.minor;
    conn.info.driver_version = rep.driver_version;
    conn.info.status = rep.status;
    conn.info.session = rep.session;
    conn.info.window_base = rep.window_base;
    conn.info.window_size = rep.window_size;
    conn.info.max_frame = rep.max_frame;
    conn.info.shm_ok = conn.shm != NULL && rep.shm_ok;
    if (!conn.info.shm_ok)
        drop_shm();
    LOG_INFO("connected to %s: session %llu, driver %u, status %d, shared memory %s", socket_path(),
             (unsigned long long)rep.session, rep.driver_version, rep.status, conn.info.shm_ok ? "on" : "off");
    return CUDA_SUCCESS;
}

size_t vgpu_frame_limit(void)
{
    return conn.info.max_frame ? conn.info.max_frame : 64u << 20;
}

/*
 * Errors after which, on a real GPU, "the process is in an inconsistent state and any further CUDA
 * work will return the same error" (a kernel faulted). Only the handshake and goodbye still go out.
 */
static int is_sticky(CUresult rc)
{
    return rc == CUDA_ERROR_ILLEGAL_ADDRESS || rc == CUDA_ERROR_LAUNCH_TIMEOUT || rc == CUDA_ERROR_HARDWARE_STACK_ERROR ||
           rc == CUDA_ERROR_ILLEGAL_INSTRUCTION || rc == CUDA_ERROR_MISALIGNED_ADDRESS ||
           rc == CUDA_ERROR_INVALID_ADDRESS_SPACE || rc == CUDA_ERROR_INVALID_PC || rc == CUDA_ERROR_LAUNCH_FAILED;
}

static CUresult stick(CUresult rc)
{
    if (is_sticky(rc) && conn.sticky == CUDA_SUCCESS) {
        conn.sticky = rc;
        LOG_WARN("CUDA error %d: a kernel faulted; as on a GPU, every further CUDA call of this process returns it",
                 (int)rc);
    }
    return rc;
}

CUresult vgpu_call_locked(uint16_t op, const void *req, size_t req_len, const void *tail, size_t tail_len, void *rep,
                          size_t rep_len, void *rep_tail, size_t rep_tail_cap, size_t *rep_tail_len)
{
    if (conn.sticky != CUDA_SUCCESS && op != VGPU_OP_GOODBYE)
        return conn.sticky;
    CUresult rc = vgpu_conn_ensure_locked();
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vgpu_req_header h;
    header(&h, op, 0, req_len + tail_len);
    uint32_t seq = h.seq;
    /* Queued async requests and this one leave in a single write. */
    struct iovec iov[4];
    int n = 0;
    if (conn.out_len > 0)
        iov[n++] = (struct iovec){conn.out, conn.out_len};
    iov[n++] = (struct iovec){&h, sizeof h};
    if (req_len > 0)
        iov[n++] = (struct iovec){(void *)req, req_len};
    if (tail_len > 0)
        iov[n++] = (struct iovec){(void *)tail, tail_len};
    conn.out_len = 0;
    if (send_iov(iov, n) < 0)
        return lose(strerror(errno));
    rc = read_reply(op, seq, rep, rep_len, rep_tail, rep_tail_cap, rep_tail_len);
    /* As on the service: only a synchronizing call reports an async error collected earlier. The
       one this client already holds is older than any in this reply, so it goes first and, as on
       the service, the first pending error wins. */
    if (rc != CUDA_ERROR_DEVICE_UNAVAILABLE && conn.deferred != CUDA_SUCCESS && vgpu_op_delivers_pending(op)) {
        rc = conn.deferred;
        conn.deferred = CUDA_SUCCESS;
    }
    return stick(rc);
}

/* A round trip made on the application's behalf: an async error it returns is kept for the next call. */
static CUresult internal_ping(void)
{
    CUresult rc = vgpu_call_locked(VGPU_OP_PING, NULL, 0, NULL, 0, NULL, 0, NULL, 0, NULL);
    if (rc != CUDA_SUCCESS && conn.fd >= 0) {
        if (conn.deferred == CUDA_SUCCESS)
            conn.deferred = rc;
        return CUDA_SUCCESS;
    }
    return rc;
}

CUresult vgpu_call(uint16_t op, const void *req, size_t req_len, const void *tail, size_t tail_len, void *rep,
                   size_t rep_len, void *rep_tail, size_t rep_tail_cap, size_t *rep_tail_len)
{
    vgpu_conn_lock();
    CUresult rc = vgpu_call_locked(op, req, req_len, tail, tail_len, rep, rep_len, rep_tail, rep_tail_cap, rep_tail_len);
    vgpu_conn_unlock();
    return rc;
}

CUresult vgpu_post_locked(uint16_t op, const void *req, size_t req_len, const void *tail, size_t tail_len)
{
    if (conn.sticky != CUDA_SUCCESS)
        return conn.sticky;
    CUresult rc = vgpu_conn_ensure_locked();
    if (rc != CUDA_SUCCESS)
        return rc;
    size_t total = sizeof(struct vgpu_req_header) + req_len + tail_len;
    if (conn.out_len + total > OUT_CAP && (rc = vgpu_flush_locked()) != CUDA_SUCCESS)
        return rc;
    if (total > OUT_CAP) {
        struct vgpu_req_header h;
        header(&h, op, VGPU_FLAG_ASYNC, req_len + tail_len);
        struct iovec iov[3] = {{&h, sizeof h}, {(void *)req, req_len}, {(void *)tail, tail_len}};
        return send_iov(iov, 3) < 0 ? lose(strerror(errno)) : CUDA_SUCCESS;
    }
    struct vgpu_req_header *h = (struct vgpu_req_header *)(conn.out + conn.out_len);
    header(h, op, VGPU_FLAG_ASYNC, req_len + tail_len);
    memcpy(conn.out + conn.out_len + sizeof *h, req, req_len);
    if (tail_len > 0)
        memcpy(conn.out + conn.out_len + sizeof *h + req_len, tail, tail_len);
    conn.out_len += total;
    return CUDA_SUCCESS;
}

CUresult vgpu_post(uint16_t op, const void *req, size_t req_len, const void *tail, size_t tail_len)
{
    vgpu_conn_lock();
    CUresult rc = vgpu_post_locked(op, req, req_len, tail, tail_len);
    vgpu_conn_unlock();
    return rc;
}

/* ---------------------------------------------------------------- shared memory ring */

uint8_t *vgpu_shm_data(void)
{
    return conn.shm != NULL ? conn.shm + SHM_HEADER : NULL;
}

size_t vgpu_shm_capacity(void)
{
    return conn.shm != NULL ? conn.shm_size - SHM_HEADER : 0;
}

static uint32_t completed_seq(void)
{
    return (uint32_t)__atomic_load_n((uint64_t *)(conn.shm + 8), __ATOMIC_ACQUIRE);
}

/* Frees the oldest regions whose requests completed (and whose data reached the application). */
static void reclaim(void)
{
    uint32_t done = completed_seq();
    while (conn.region_count > 0) {
        struct region *r = &conn.regions[conn.region_head];
        /* seq comparison modulo 2^32 */
        if ((int32_t)(done - r->seq) < 0 || !r->delivered)
            break;
        conn.region_head = (conn.region_head + 1) % MAX_REGIONS;
        conn.region_count--;
    }
    if (conn.region_count == 0)
        conn.ring_head = 0;
}

static int place(size_t n, uint64_t *offset)
{
    size_t cap = vgpu_shm_capacity();
    if (conn.region_count == MAX_REGIONS)
        return -1;
    if (conn.region_count == 0) {
        *offset = 0;
        return n <= cap ? 0 : -1;
    }
    uint64_t tail = conn.regions[conn.region_head].offset;
    if (conn.ring_head >= tail) {
        if (conn.ring_head + n <= cap) {
            *offset = conn.ring_head;
            return 0;
        }
        if (n <= tail) {
            *offset = 0;
            return 0;
        }
        return -1;
    }
    if (conn.ring_head + n <= tail) {
        *offset = conn.ring_head;
        return 0;
    }
    return -1;
}

CUresult vgpu_shm_reserve_locked(size_t n, uint64_t *offset)
{
    if (conn.shm == NULL || n == 0 || n > vgpu_shm_capacity())
        return CUDA_ERROR_INVALID_VALUE;
    n = (n + 63) & ~(size_t)63;
    if (n > vgpu_shm_capacity())
        n = vgpu_shm_capacity();
    reclaim();
    if (place(n, offset) < 0) {
        CUresult rc = vgpu_flush_locked();
        if (rc != CUDA_SUCCESS)
            return rc;
        long deadline = now_ns() + vgpu_cfg.spin_ns;
        do {
            reclaim();
        } while (place(n, offset) < 0 && now_ns() < deadline);
        if (place(n, offset) < 0) {
            /* The service is behind: a round trip waits for everything queued before it. */
            if ((rc = internal_ping()) != CUDA_SUCCESS)
                return rc;
            reclaim();
            if (place(n, offset) < 0)
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    int slot = (conn.region_head + conn.region_count) % MAX_REGIONS;
    conn.regions[slot] = (struct region){.offset = *offset, .length = n, .seq = conn.seq + 1, .delivered = 1};
    conn.region_count++;
    conn.ring_head = *offset + n;
    *offset += SHM_HEADER;
    return CUDA_SUCCESS;
}

CUresult vgpu_shm_deliver_later_locked(uint64_t offset, void *host_dst, size_t n)
{
    if (conn.delivery_count == MAX_DELIVERIES) {
        CUresult rc = internal_ping();
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    int last = (conn.region_head + conn.region_count - 1) % MAX_REGIONS;
    conn.regions[last].delivered = 0;
    conn.deliveries[conn.delivery_count++] = (struct delivery){.offset = offset - SHM_HEADER, .dst = host_dst, .length = n};
    return CUDA_SUCCESS;
}

/* Ends this process's session (NVML's last nvmlShutdown): the next call connects anew. */
void vgpu_conn_close(void)
{
    vgpu_conn_lock();
    if (conn.fd >= 0 && conn.owner == getpid())
        vgpu_flush_locked();
    close_conn();
    conn.lost = 0;
    conn.seq = 0;
    conn.deferred = CUDA_SUCCESS;
    memset(&conn.info, 0, sizeof conn.info);
    vgpu_conn_unlock();
}

/* Called by the library destructor: queued work still reaches the service. */
void vgpu_conn_shutdown(void)
{
    if (pthread_mutex_trylock(&conn.lock) != 0)
        return;
    if (conn.fd >= 0 && conn.owner == getpid())
        vgpu_flush_locked();
    pthread_mutex_unlock(&conn.lock);
}
