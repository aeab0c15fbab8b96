/*
 * vgpu-ctl: talks to the service as a management client (no CUDA session): status, sessions,
 * backends, recent launches, and moving running sessions to another backend. The `vgpu` command uses it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vgpu.h"

struct vgpu_config vgpu_cfg;

void vgpu_setup(void)
{
    const char *sock = getenv("VGPU_SOCKET");
    snprintf(vgpu_cfg.socket_path, sizeof vgpu_cfg.socket_path, "%s", sock && *sock ? sock : "/run/vgpu/vgpu.sock");
    vgpu_cfg.spin_ns = 200000;
}

static int usage(void)
{
    fprintf(stderr, "usage: vgpu-ctl status | sessions | backends | launches [n] | ping [count]\n"
                    "       vgpu-ctl migrate <session|all> <backend-id> [--stop-and-copy]\n");
    return 2;
}

static int fail(CUresult rc)
{
    fprintf(stderr, "vgpu-ctl: cannot talk to the vgpu service at %s (CUresult %d)\n", vgpu_cfg.socket_path, rc);
    return 1;
}

static char *field(const char *s, size_t n)
{
    static char buf[4][256];
    static int k;
    char *b = buf[k++ % 4];
    size_t m = strnlen(s, n);
    memcpy(b, s, m);
    b[m] = '\0';
    return b;
}

/* QUOTA_LIST (protocol 1.2): the quota records, then each session's tightest quota. */
static char quota_buf[1 << 20];
static size_t quota_len;
static struct vgpu_quota_list_rep quota_rep;

static const struct vgpu_session_quota_rec *session_quota(uint64_t session)
{
    size_t at = (size_t)quota_rep.quota_count * sizeof(struct vgpu_quota_rec);
    for (uint32_t i = 0; i < quota_rep.session_count; i++, at += sizeof(struct vgpu_session_quota_rec)) {
        if (at + sizeof(struct vgpu_session_quota_rec) > quota_len)
            break;
        const struct vgpu_session_quota_rec *q = (const struct vgpu_session_quota_rec *)(quota_buf + at);
        if (q->session == session)
            return q;
    }
    return NULL;
}

/* One MIGRATION record as a line: what moved where, how much, and how long the session waited. */
static void print_migration(const struct vgpu_migration_rec *m, const char *indent)
{
    time_t at = (time_t)(m->at_millis / 1000);
    struct tm tm;
    char when[16] = "";
    if (localtime_r(&at, &tm))
        strftime(when, sizeof when, "%H:%M:%S", &tm);
    printf("%ssession %llu %s -> %s (%s, %s): ", indent, (unsigned long long)m->session, field(m->from, sizeof m->from),
           field(m->to, sizeof m->to), field(m->reason, sizeof m->reason), when);
    if (!m->ok) {
        printf("failed: %s\n", field(m->message, sizeof m->message));
        return;
    }
    printf("%.1f MiB moved, pause %.1f ms (%.1f MiB in the pause), total %.1f ms", m->bytes_moved / 1048576.0,
           m->pause_ns / 1e6, m->bytes_paused / 1048576.0, m->total_ns / 1e6);
    if (m->precopy_rounds)
        printf(", %u pre-copy rounds", m->precopy_rounds);
    if (m->message[0])
        printf(" (%s)", field(m->message, sizeof m->message));
    printf("\n");
}

/*
 * The sessions, and with a service that has memory quotas, each session's quota (the total its
 * devices report) and a table of the quotas with what their holders use on each device.
 */
static int sessions(char *tail, size_t cap)
{
    size_t got = 0;
    CUresult rc = vgpu_call(VGPU_OP_SESSION_LIST, NULL, 0, NULL, 0, NULL, 0, tail, cap, &got);
    if (rc != CUDA_SUCCESS)
        return fail(rc);
    int quotas = vgpu_session()->minor >= 2 &&
                 vgpu_call(VGPU_OP_QUOTA_LIST, NULL, 0, NULL, 0, &quota_rep, sizeof quota_rep, quota_buf, sizeof quota_buf,
                           &quota_len) == CUDA_SUCCESS &&
                 quota_rep.quota_count > 0;
    printf("%-6s %-8s %-6s %-20s %-10s %-12s %10s %10s%s\n", "ID", "PID", "UID", "PROCESS", "BACKEND", "STATUS", "MEMORY",
           "LAUNCHES", quotas ? " QUOTA" : "");
    for (size_t off = 0; off + sizeof(struct vgpu_session_rec) <= got; off += sizeof(struct vgpu_session_rec)) {
        struct vgpu_session_rec *s = (struct vgpu_session_rec *)(tail + off);
        char quota[128] = "";
        const struct vgpu_session_quota_rec *q = quotas ? session_quota(s->id) : NULL;
        if (quotas)
            snprintf(quota, sizeof quota, q ? " %llu MiB (%s)" : " -", q ? (unsigned long long)(q->limit >> 20) : 0ULL,
                     q ? field(q->quota, sizeof q->quota) : "");
        printf("%-6llu %-8u %-6d %-20s %-10s %-12s %6llu MiB %10llu%s\n", (unsigned long long)s->id, s->pid, (int)s->uid,
               field(s->process, sizeof s->process), field(s->backend, sizeof s->backend),
               field(s->status, sizeof s->status), (unsigned long long)(s->memory_used >> 20),
               (unsigned long long)s->launches, quota);
    }
    /* Protocol 1.4: each session's migrations, the backend it came from and what the moves cost. */
    static char log[1 << 20];
    size_t log_len = 0;
    if (vgpu_session()->minor >= 4 &&
        vgpu_call(VGPU_OP_MIGRATION_LOG, NULL, 0, NULL, 0, NULL, 0, log, sizeof log, &log_len) == CUDA_SUCCESS &&
        log_len >= sizeof(struct vgpu_migration_rec)) {
        printf("\nMIGRATIONS\n");
        for (size_t off = 0; off + sizeof(struct vgpu_migration_rec) <= log_len; off += sizeof(struct vgpu_migration_rec))
            print_migration((const struct vgpu_migration_rec *)(log + off), "  ");
    }
    if (!quotas)
        return 0;
    printf("\n%-32s %10s %10s %-14s %8s\n", "MEMORY QUOTA (per device)", "LIMIT", "USED", "DEVICE", "SESSIONS");
    for (uint32_t i = 0; i < quota_rep.quota_count && (i + 1) * sizeof(struct vgpu_quota_rec) <= quota_len; i++) {
        const struct vgpu_quota_rec *r = (const struct vgpu_quota_rec *)(quota_buf + i * sizeof(struct vgpu_quota_rec));
        char device[64] = "-";
        if (r->backend[0] != '\0')
            snprintf(device, sizeof device, "%s:%u", field(r->backend, sizeof r->backend), r->device);
        printf("%-32s %6llu MiB %6llu MiB %-14s %8u\n", field(r->name, sizeof r->name), (unsigned long long)(r->limit >> 20),
               (unsigned long long)(r->used >> 20), device, r->sessions);
    }
    return 0;
}

/*
 * The backends, the router's preference list first and in its order (a listed id nothing registers
 * under included), each with why it is unavailable; '*' marks where new sessions go, and a last
 * line names the listed backends it was chosen over.
 */
static int backends(char *tail, size_t cap)
{
    struct vgpu_service_status_rep st;
    static char message[4096];
    size_t got = 0;
    CUresult rc = vgpu_call(VGPU_OP_SERVICE_STATUS, NULL, 0, NULL, 0, &st, sizeof st, message, sizeof message, &got);
    if (rc != CUDA_SUCCESS)
        return fail(rc);
    char active[sizeof st.backend + 1];
    snprintf(active, sizeof active, "%s", field(st.backend, sizeof st.backend));
    rc = vgpu_call(VGPU_OP_BACKEND_LIST, NULL, 0, NULL, 0, NULL, 0, tail, cap, &got);
    if (rc != CUDA_SUCCESS)
        return fail(rc);
    const size_t n = got / sizeof(struct vgpu_backend_rec);
    const struct vgpu_backend_rec *recs = (const struct vgpu_backend_rec *)tail;
    int listed = 0;
    for (size_t i = 0; i < n; i++)
        listed += recs[i].preference > 0;
    char skipped[1024] = "";
    int reached = 0;
    for (size_t i = 0; i < n; i++) {
        const struct vgpu_backend_rec *b = &recs[i];
        const char *id = field(b->id, sizeof b->id);
        int is_active = strcmp(id, active) == 0;
        reached |= is_active;
        /* The list comes in preference order: those before the chosen one were passed over. */
        if (!reached && b->preference > 0 && strlen(skipped) + strlen(id) + 3 < sizeof skipped)
            snprintf(skipped + strlen(skipped), sizeof skipped - strlen(skipped), "%s%s", skipped[0] ? ", " : "", id);
        char rank[32] = "";
        if (listed > 1 && b->preference > 0)
            snprintf(rank, sizeof rank, "  [preference %u]", b->preference);
        printf("%s %-12s %-12s %s%s%s%s\n", is_active ? "*" : " ", id, b->available ? "available" : "unavailable",
               field(b->description, sizeof b->description), b->available ? "" : ": ",
               b->available ? "" : field(b->reason, sizeof b->reason), rank);
    }
    if (reached && skipped[0] != '\0')
        printf("new sessions go to %s; skipped: %s (reasons above)\n", active, skipped);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    vgpu_setup();
    vgpu_conn_lock();
    CUresult rc = vgpu_conn_open_control_locked();
    vgpu_conn_unlock();
    if (rc != CUDA_SUCCESS)
        return fail(rc);
    static char tail[1 << 20];
    size_t got = 0;
    if (strcmp(argv[1], "status") == 0) {
        struct vgpu_service_status_rep rep;
        rc = vgpu_call(VGPU_OP_SERVICE_STATUS, NULL, 0, NULL, 0, &rep, sizeof rep, tail, sizeof tail - 1, &got);
        if (rc != CUDA_SUCCESS)
            return fail(rc);
        tail[got] = '\0';
        printf("socket: %s\nbackend: %s (%s)\ndriver version: %u\nsessions: %u\n%s\n", vgpu_cfg.socket_path,
               field(rep.backend, sizeof rep.backend), rep.backend_present ? "available" : "not available",
               rep.driver_version, rep.sessions, tail);
        return rep.backend_present ? 0 : 3;
    }
    if (strcmp(argv[1], "sessions") == 0)
        return sessions(tail, sizeof tail);
    if (strcmp(argv[1], "backends") == 0)
        return backends(tail, sizeof tail);
    if (strcmp(argv[1], "launches") == 0) {
        long max = 20;
        if (argc > 2) {
            char *end;
            max = strtol(argv[2], &end, 10);
            if (*argv[2] == '\0' || *end != '\0' || max <= 0 || max > 4096) {
                fprintf(stderr, "vgpu-ctl: launches takes a count from 1 to 4096, not '%s'\n", argv[2]);
                return 2;
            }
        }
        struct vgpu_launch_log_req req = {.max = (uint32_t)max};
        rc = vgpu_call(VGPU_OP_LAUNCH_LOG, &req, sizeof req, NULL, 0, NULL, 0, tail, sizeof tail, &got);
        if (rc != CUDA_SUCCESS)
            return fail(rc);
        for (size_t off = 0; off + sizeof(struct vgpu_launch_record_rec) <= got; off += sizeof(struct vgpu_launch_record_rec)) {
            struct vgpu_launch_record_rec *r = (struct vgpu_launch_record_rec *)(tail + off);
            printf("#%llu %s grid(%u,%u,%u) block(%u,%u,%u) smem=%u params=%u %s result=%d\n",
                   (unsigned long long)r->sequence, field(r->kernel, sizeof r->kernel), r->grid_x, r->grid_y, r->grid_z,
                   r->block_x, r->block_y, r->block_z, r->shared_mem, r->param_bytes, r->executed ? "executed" : "recorded",
                   r->result);
        }
        return 0;
    }
    if (strcmp(argv[1], "migrate") == 0) {
        if (argc < 4 || argc > 5 || (argc == 5 && strcmp(argv[4], "--stop-and-copy") != 0))
            return usage();
        struct vgpu_session_migrate_req req = {0};
        if (strcmp(argv[2], "all") == 0) {
            req.flags |= 1;
        } else {
            char *end;
            unsigned long long id = strtoull(argv[2], &end, 10);
            if (*argv[2] == '\0' || *end != '\0' || id == 0) {
                fprintf(stderr, "vgpu-ctl: migrate takes a session id (see vgpu sessions) or 'all', not '%s'\n", argv[2]);
                return 2;
            }
            req.session = id;
        }
        if (argc == 5)
            req.flags |= 2;
        if (strlen(argv[3]) >= sizeof req.backend) {
            fprintf(stderr, "vgpu-ctl: backend id '%s' is too long\n", argv[3]);
            return 2;
        }
        memcpy(req.backend, argv[3], strlen(argv[3]));
        if (vgpu_session()->minor < 4) {
            fprintf(stderr, "vgpu-ctl: this service (protocol 1.%u) cannot migrate sessions\n", vgpu_session()->minor);
            return 1;
        }
        rc = vgpu_call(VGPU_OP_SESSION_MIGRATE, &req, sizeof req, NULL, 0, NULL, 0, tail, sizeof tail, &got);
        if (rc == CUDA_ERROR_NOT_PERMITTED) {
            fprintf(stderr, "vgpu-ctl: only root and the service's user may migrate sessions\n");
            return 1;
        }
        if (rc != CUDA_SUCCESS)
            return fail(rc);
        int failed = 0;
        for (size_t off = 0; off + sizeof(struct vgpu_migration_rec) <= got; off += sizeof(struct vgpu_migration_rec)) {
            const struct vgpu_migration_rec *m = (const struct vgpu_migration_rec *)(tail + off);
            print_migration(m, "");
            failed |= !m->ok;
        }
        if (got == 0)
            printf("no session to migrate\n");
        return failed ? 4 : 0;
    }
    if (strcmp(argv[1], "ping") == 0) {
        int count = argc > 2 ? atoi(argv[2]) : 1;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < count; i++)
            if ((rc = vgpu_call(VGPU_OP_PING, NULL, 0, NULL, 0, NULL, 0, NULL, 0, NULL)) != CUDA_SUCCESS)
                return fail(rc);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / count;
        printf("%d round trips, %.2f us each\n", count, us);
        return 0;
    }
    return usage();
}
