/* Closed-loop keep-alive load that keeps every request's latency with its start time,
 * so that a run's first requests (one per new connection) and its steady state can be
 * told apart, which wrk's one distribution cannot (bench/PROFILE.md, round 6).
 *
 *   gcc -O2 -o /tmp/latency bench/latency.c
 *   taskset -c 1 /tmp/latency PORT CONNECTIONS SECONDS
 *
 * One thread and epoll, like wrk -t1: CONNECTIONS connections to 127.0.0.1:PORT, each
 * sending "GET /" as soon as it is connected and again as soon as its answer (read by
 * Content-Length) is whole. Prints the rate and the percentiles of all requests, of
 * each connection's first request, and of the requests sent after the first second.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    double sent; /* when the request in flight was sent; < 0: not connected yet */
    long answered;
    int len;
    char buf[4096];
} Conn;

typedef struct {
    float *ms;
    long n, cap;
} Series;

static const char REQUEST[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void add(Series *s, float ms) {
    if (s->n < s->cap) s->ms[s->n++] = ms;
}

static int by_value(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void report(const char *name, Series *s) {
    if (!s->n) {
        printf("%-7s none\n", name);
        return;
    }
    qsort(s->ms, s->n, sizeof(float), by_value);
    long n = s->n;
    printf("%-7s n=%7ld p50 %8.2f p90 %8.2f p99 %8.2f p99.9 %8.2f max %8.2f ms\n", name, n,
           s->ms[n / 2], s->ms[n * 9 / 10], s->ms[n * 99 / 100], s->ms[n * 999 / 1000],
           s->ms[n - 1]);
}

static void send_request(Conn *c) {
    c->sent = now();
    if (write(c->fd, REQUEST, sizeof REQUEST - 1) != (ssize_t)(sizeof REQUEST - 1)) {
        perror("write");
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT CONNECTIONS SECONDS\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]), count = atoi(argv[2]);
    double duration = atof(argv[3]);
    long cap = 50 * 1000 * 1000;
    Series all = {malloc(cap * sizeof(float)), 0, cap};
    Series first = {malloc(count * sizeof(float)), 0, count};
    Series steady = {malloc(cap * sizeof(float)), 0, cap};
    Conn *conns = calloc(count, sizeof(Conn));
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    int ep = epoll_create1(0);
    double start = now();
    for (int i = 0; i < count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        connect(fd, (struct sockaddr *)&to, sizeof to);
        conns[i].fd = fd;
        conns[i].sent = -1;
        struct epoll_event e = {.events = EPOLLOUT | EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    }
    struct epoll_event events[1024];
    long total = 0;
    while (now() - start < duration) {
        int k = epoll_wait(ep, events, 1024, 100);
        double t = now();
        for (int j = 0; j < k; j++) {
            Conn *c = &conns[events[j].data.u32];
            if (c->sent < 0 && (events[j].events & EPOLLOUT)) {
                struct epoll_event e = {.events = EPOLLIN, .data.u32 = events[j].data.u32};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
                send_request(c);
                continue;
            }
            if (!(events[j].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            int r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
            if (r < 0 && errno == EAGAIN) continue;
            if (r <= 0) {
                fprintf(stderr, "a connection was closed\n");
                return 1;
            }
            c->len += r;
            char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
            if (!end) continue;
            char *length = strcasestr(c->buf, "content-length:");
            int whole = (int)(end + 4 - c->buf) + (length ? atoi(length + 15) : 0);
            if (c->len < whole) continue;
            memmove(c->buf, c->buf + whole, c->len - whole);
            c->len -= whole;
            float ms = (float)((t - c->sent) * 1e3);
            add(&all, ms);
            if (c->answered++ == 0)
                add(&first, ms);
            else if (c->sent - start > 1.0)
                add(&steady, ms);
            total++;
            send_request(c);
        }
    }
    double elapsed = now() - start;
    printf("requests/s %.0f (%ld in %.2f s)\n", total / elapsed, total, elapsed);
    report("all", &all);
    report("first", &first);
    report("after1s", &steady);
    return 0;
}
