/* A minimal process-per-connection RESP server, the model's ceiling for the connections bench: N forked children
 * accept on one listening socket and serve one connection at a time with blocking read/write and fixed replies
 * (GET: a 3-byte value; CONFIG: an empty array; anything else: +OK). No parsing beyond that, no shared memory, no .NET.
 * usage: prefork PORT CHILDREN batch|other. SIGTERM ends the parent, which ends its children; a child also ends when
 * the parent dies (PR_SET_PDEATHSIG). */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void serve(int listener) {
    char buf[16384];
    int one = 1;
    for (;;) {
        int c = accept(listener, NULL, NULL);
        if (c < 0)
            continue;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        for (;;) {
            ssize_t r = read(c, buf, sizeof buf);
            if (r <= 0)
                break;
            const char *reply = "+OK\r\n";
            if (memmem(buf, (size_t)r, "GET", 3))
                reply = "$3\r\nxxx\r\n";
            else if (memmem(buf, (size_t)r, "CONFIG", 6))
                reply = "*0\r\n";
            size_t len = strlen(reply);
            if (write(c, reply, len) != (ssize_t)len)
                break;
        }
        close(c);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: prefork PORT CHILDREN batch|other\n");
        return 2;
    }
    int port = atoi(argv[1]), children = atoi(argv[2]), batch = strcmp(argv[3], "batch") == 0;
    int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port), .sin_addr.s_addr = htonl(0x7f000001)};
    if (bind(listener, (struct sockaddr *)&a, sizeof a) != 0 || listen(listener, 511) != 0) {
        perror("prefork: bind/listen");
        return 1;
    }
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
    pid_t *pids = calloc((size_t)children, sizeof *pids);
    for (int i = 0; i < children; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            sigprocmask(SIG_UNBLOCK, &term, NULL);
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() == 1)
                _exit(0);
            if (batch) {
                struct sched_param p = {0};
                sched_setscheduler(0, SCHED_BATCH, &p);
            }
            serve(listener);
        }
    }
    int sig;
    sigwait(&term, &sig);
    for (int i = 0; i < children; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGKILL);
    while (wait(NULL) > 0)
        ;
    return 0;
}
